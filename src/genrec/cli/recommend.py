"""`genrec recommend`: the top-K next items for one history, from the command line;
with ``--candidates FILE``, the top K of those items (re-ranking), and with
``--score-only`` every candidate's score in the file's order."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..data.sources._text import not_utf8
from ..errors import GenrecError
from . import app, console, fail, out, status


def read_lines(file: str, what: str) -> list[str]:
    """Non-blank lines of `file` ('-' is stdin), stripped; `what` names it in errors."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise GenrecError(f"cannot read the {what} file {file}: {e.strerror or e}", "check the path") from e
    error = not_utf8(data, "standard input" if file == "-" else f"the {what} file {file}")
    if error is not None:
        raise GenrecError(error.problem, error.fix)
    return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]


def read_history(args: list[str], file: str | None) -> list[str]:
    """Entries from the arguments, then from `file` (one title or item id a line; '-' is stdin)."""
    entries = [a for a in args if a != "-"]
    if file is None and "-" in args:
        file = "-"
    if file is not None:
        entries += read_lines(file, "history")
    return entries


@app.command()
def recommend(
    history: Annotated[list[str] | None, typer.Argument(help="titles or item ids the user interacted with, oldest first ('-' reads stdin)")] = None,
    run: Annotated[Path, typer.Option("--run", help="a run folder from `genrec train` (or save_pretrained), or a Hugging Face Hub id owner/name (`genrec push`)")] = Path("runs/genrec"),
    k: Annotated[int, typer.Option("-k", "--k", help="how many items to recommend")] = 10,
    file: Annotated[str | None, typer.Option("--file", help="read the history from a file, one title or item id a line ('-' = stdin)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"items": [{"item_id", "title", "score"}], "unknown": [...], "shortfall": why fewer than k or null}')] = False,
    decode: Annotated[str, typer.Option(help="beam (default), exact (the model's true top-k), free (the paper's unconstrained beams) or rerank (the --assist's top items, each scored by the model)")] = "beam",
    beams: Annotated[int | None, typer.Option(help="beam width (default: 10, or k if larger)")] = None,
    assist: Annotated[str | None, typer.Option(help="beam decoding: fuse an assistant at every step (D3); rerank decoding: the assistant that proposes candidates; sasrec, popularity or last-item")] = None,
    assist_weight: Annotated[float | None, typer.Option(help="the assistant's weight in [0, 1] (default: the one chosen on validation, stored in RUN/assist.json)")] = None,
    rerank_depth: Annotated[int | None, typer.Option(help="rerank decoding: how many of the assistant's top items the model scores (default 20; k may not exceed it)")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="dataset folder (default: the one the run was trained on)")] = None,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="allow items of the history in the result")] = False,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="leave out entries that are not in the catalogue (listed on stderr) instead of failing")] = False,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    candidates: Annotated[str | None, typer.Option("--candidates", help="rank only the items in this file, one title or item id a line ('-' = stdin): the top K of them by score (re-ranking; the beam width does not limit K)")] = None,
    score_only: Annotated[bool, typer.Option("--score-only", help="with --candidates: print every candidate's score in the file's order instead of the top K")] = False,
) -> None:
    """Recommend the next K items for a history of titles or item ids, with the run's catalogue changes.

    An entry is tried as an item id, then as a title (exactly, then ignoring case). Unknown
    entries stop the command with exit status 2 and close matches, unless --skip-unknown.

    With --candidates FILE only those items are ranked: each is scored by the model's
    log-probability of writing it (with --assist, fused per item), no search; an unknown
    or removed candidate stops the command, --skip-unknown applies to the history only.
    --score-only prints every candidate's score in the file's order (-k and --keep-seen
    do not apply).
    """
    from ..api import Recommender

    try:
        if score_only and candidates is None:
            raise GenrecError("--score-only scores given candidates, but no --candidates file is given",
                              "add --candidates FILE (one title or item id a line), or drop --score-only")
        if candidates == "-" and (file == "-" or (file is None and "-" in (history or []))):
            raise GenrecError("the history and the candidates cannot both be read from stdin",
                              "give one of them with --file PATH or --candidates PATH")
        entries = read_history(history or [], file)
        if not entries:
            raise GenrecError("the history is empty", "give titles or item ids as arguments, with --file PATH, or on stdin with -")
        wanted = read_lines(candidates, "candidates") if candidates is not None else None
        if wanted is not None and not wanted:
            raise GenrecError(f"the candidates file {candidates} holds no title or item id", "write one title or item id a line")
        if beams is None:  # a beam of k is needed only when searching the catalogue
            beams = 10 if wanted is not None else max(10, k)
        with status(f"loading {run}"):
            rec = Recommender.from_pretrained(run, dataset=dataset, decode=decode, beams=beams,  # type: ignore[arg-type]
                                   threads=threads, assist=assist, assist_weight=assist_weight, rerank_depth=rerank_depth)
        on_unknown = "skip" if skip_unknown else "error"
        if score_only:
            result = rec.score(entries, wanted, decode=decode, on_unknown=on_unknown)  # type: ignore[arg-type]
        else:
            result = rec.recommend(entries, k=k, decode=decode, exclude_seen=not keep_seen,  # type: ignore[arg-type]
                                   on_unknown=on_unknown, candidates=wanted)
    except GenrecError as e:
        fail(e)
    if result.unknown:
        console.print(f"[yellow]left out (not in the catalogue):[/] {', '.join(repr(u) for u in result.unknown)}", highlight=False)
    if result.shortfall:
        console.print(f"[yellow]{escape(result.shortfall)}[/]", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    after = f"after {len(entries) - len(result.unknown)} items"
    title = (f"scores of {len(result)} candidates {after}" if score_only
             else f"top {k} of {len(wanted)} candidates {after}" if wanted is not None else f"top {k} {after}")
    table = Table("#", "title", "item id", "score", title=title)
    for rank, item in enumerate(result, 1):
        table.add_row(str(rank), item.title, item.item_id, f"{item.score:.3f}")
    out.print(table)
