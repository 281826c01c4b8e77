"""`genrec serve`: the HTTP service (``genrec.serving.app``) under uvicorn."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from ..errors import GenrecError
from . import app, console, fail


@app.command()
def serve(
    run: Annotated[Path, typer.Option("--run", help="a run folder from `genrec train`")],
    dataset: Annotated[Path | None, typer.Option("--dataset", help="dataset folder (default: the one the run was trained on)")] = None,
    host: Annotated[str, typer.Option(help="address to bind; the default answers this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    decode: Annotated[str, typer.Option(help="default decoding: beam, exact or free (a request may choose another)")] = "beam",
    beams: Annotated[int, typer.Option(help="beam width; requests may ask for at most this many items in beam/free mode")] = 10,
    max_batch: Annotated[int, typer.Option(help="most requests decoded together (1 = one at a time)")] = 16,
    max_wait_ms: Annotated[float, typer.Option(help="how long the worker waits to fill a batch")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="requests waiting beyond this are refused with 503")] = 1024,
    max_body_bytes: Annotated[int, typer.Option(help="larger request bodies are refused with 413")] = 1 << 20,
    token: Annotated[str | None, typer.Option(envvar="GENREC_API_TOKEN", show_envvar=True,
                                              help="API token required (as `Authorization: Bearer ...`) to add or remove items")] = None,
    persist: Annotated[bool, typer.Option(help="keep catalogue changes in RUN/catalogue_changes.json (else in memory only)")] = True,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    device: Annotated[str | None, typer.Option(help="torch device (cpu, cuda; default: cuda if available)")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level (warning hides the access log)")] = "info",
) -> None:
    """Serve recommendations over HTTP: POST /recommend, /recommend/batch, /items; DELETE and GET /items/ID; GET /health, /info, /docs.

    Requests arriving together are decoded in one batch by a single worker (--max-batch,
    --max-wait-ms). Catalogue changes need the token when one is set (--token or
    GENREC_API_TOKEN) and are persisted next to the run (--no-persist keeps them in memory).
    """
    import uvicorn

    from ..api import Recommender
    from ..serving.app import create_app

    try:
        if max_batch < 1 or max_wait_ms < 0:
            raise GenrecError(f"--max-batch {max_batch} / --max-wait-ms {max_wait_ms}", "use --max-batch >= 1 and --max-wait-ms >= 0")
        if not _is_loopback(host) and token is None:
            console.print(f"[yellow]warning:[/] {host} is reachable from other machines and no --token is set: "
                          "anyone there can add and remove items")
        with console.status(f"loading {run}"):
            rec = Recommender.load(run, dataset, decode=decode, beams=beams, batch_size=max_batch,  # type: ignore[arg-type]
                                   threads=threads, device=device, persist=persist)
        application = create_app(rec, token=token, max_batch=max_batch, max_wait_ms=max_wait_ms,
                                 max_queue=max_queue, max_body_bytes=max_body_bytes)
    except GenrecError as e:
        fail(e)
    console.print(f"serving {run} ({len(rec):,} items, {decode} decoding) on http://{host}:{port}  (API docs: /docs)",
                  highlight=False)
    # one process: the model and its catalogue live in this process's memory
    uvicorn.run(application, host=host, port=port, log_level=log_level, workers=1)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
