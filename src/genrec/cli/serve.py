"""`genrec serve`: the HTTP service (``genrec.serving.app``) under uvicorn."""

from __future__ import annotations

import errno
import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from ..errors import GenrecError
from . import app, console, fail, status


@app.command()
def serve(
    run: Annotated[Path, typer.Option("--run", help="a run folder from `genrec train` (or save_pretrained), or a Hugging Face Hub id owner/name (`genrec push`)")],
    dataset: Annotated[Path | None, typer.Option("--dataset", help="dataset folder (default: the one the run was trained on)")] = None,
    host: Annotated[str, typer.Option(help="address to bind; the default answers this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    decode: Annotated[str, typer.Option(help="default decoding: beam, exact, free or rerank (with --assist; a request may choose another)")] = "beam",
    beams: Annotated[int, typer.Option(help="beam width; requests may ask for at most this many items in beam/free mode")] = 10,
    assist: Annotated[str | None, typer.Option(help="beam decoding: fuse an assistant at every step (D3); rerank decoding: the assistant that proposes candidates; sasrec, popularity or last-item")] = None,
    assist_weight: Annotated[float | None, typer.Option(help="the assistant's weight in [0, 1] (default: the one chosen on validation, stored in RUN/assist.json)")] = None,
    rerank_depth: Annotated[int | None, typer.Option(help="rerank decoding: how many of the assistant's top items the model scores (default 20); requests may ask for at most this many items")] = None,
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
    from ..api import Recommender

    try:
        uvicorn, create_app = _serving()
        if max_batch < 1 or not max_wait_ms >= 0 or max_wait_ms == float("inf"):
            raise GenrecError(f"--max-batch {max_batch} / --max-wait-ms {max_wait_ms}", "use --max-batch >= 1 and a finite --max-wait-ms >= 0")
        # before the model is loaded: a busy port fails at once, and never after "serving on"
        _check_port(host, port)
        if not _is_loopback(host) and token is None:
            console.print(f"[yellow]warning:[/] {host} is reachable from other machines and no --token is set: "
                          "anyone there can add and remove items")
        with status(f"loading {run}"):
            rec = Recommender.from_pretrained(run, dataset=dataset, decode=decode, beams=beams, batch_size=max_batch,  # type: ignore[arg-type]
                                   threads=threads, device=device, persist=persist, assist=assist, assist_weight=assist_weight,
                                   rerank_depth=rerank_depth)
        application = create_app(rec, token=token, max_batch=max_batch, max_wait_ms=max_wait_ms,
                                 max_queue=max_queue, max_body_bytes=max_body_bytes)
    except GenrecError as e:
        fail(e)
    assisted = f", {rec.decoding.assist} assistant at weight {rec.decoding.fused_weight:g}" if rec.decoding.assist else ""
    console.print(f"serving {run} ({len(rec):,} items, {decode} decoding{assisted}) on http://{host}:{port}  (API docs: /docs)",
                  highlight=False)
    # one process: the model and its catalogue live in this process's memory
    uvicorn.run(application, host=host, port=port, log_level=log_level, workers=1)


def _serving():
    """uvicorn and the FastAPI app factory, from the optional extra ``[serve]``."""
    try:
        import uvicorn

        from ..serving.app import create_app
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] == "genrec":
            raise
        raise GenrecError(f"`genrec serve` needs fastapi and uvicorn ({e.name} is not installed)",
                          "pip install 'genrec[serve]'") from None
    return uvicorn, create_app


def _check_port(host: str, port: int) -> None:
    """Raise a GenrecError if uvicorn could not listen on host:port (tried with a probe
    socket, closed again at once)."""
    import socket

    if not 1 <= port <= 65535:
        raise GenrecError(f"--port {port} is not a TCP port", "use a port from 1 to 65535, e.g. --port 8000")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise GenrecError(f"--host {host} cannot be resolved: {e.strerror}", "use an address such as 127.0.0.1 or 0.0.0.0") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise GenrecError(f"port {port} on {host} is already in use", "stop the other server or choose another --port") from None
        raise GenrecError(f"cannot listen on {host}:{port}: {e.strerror}",
                          "choose another --port (ports below 1024 need administrator rights) or --host") from None
    finally:
        sock.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
