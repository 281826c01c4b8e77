"""`genrec recommend`: the top-K next items for one history, from the command line."""

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
from . import app, console, fail, out


def read_history(args: list[str], file: str | None) -> list[str]:
    """Entries from the arguments, then from `file` (one title or item id a line; '-' is stdin)."""
    entries = [a for a in args if a != "-"]
    if file is None and "-" in args:
        file = "-"
    if file is not None:
        try:
            data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as e:
            raise GenrecError(f"cannot read the history file {file}: {e.strerror or e}", "check the path") from e
        error = not_utf8(data, "standard input" if file == "-" else f"the history file {file}")
        if error is not None:
            raise GenrecError(error.problem, error.fix)
        text = data.decode("utf-8")
        entries += [line.strip() for line in text.splitlines() if line.strip()]
    return entries


@app.command()
def recommend(
    history: Annotated[list[str] | None, typer.Argument(help="titles or item ids the user interacted with, oldest first ('-' reads stdin)")] = None,
    run: Annotated[Path, typer.Option("--run", help="a run folder from `genrec train`")] = Path("runs/genrec"),
    k: Annotated[int, typer.Option("-k", "--k", help="how many items to recommend")] = 10,
    file: Annotated[str | None, typer.Option("--file", help="read the history from a file, one title or item id a line ('-' = stdin)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"items": [{"item_id", "title", "score"}], "unknown": [...], "shortfall": why fewer than k or null}')] = False,
    decode: Annotated[str, typer.Option(help="beam (default), exact (the model's true top-k) or free (the paper's unconstrained beams)")] = "beam",
    beams: Annotated[int | None, typer.Option(help="beam width (default: 10, or k if larger)")] = None,
    assist: Annotated[str | None, typer.Option(help="beam decoding: fuse a text-free assistant at every step (D3), sasrec or popularity")] = None,
    assist_weight: Annotated[float | None, typer.Option(help="the assistant's weight in [0, 1] (default: the one chosen on validation, stored in RUN/assist.json)")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="dataset folder (default: the one the run was trained on)")] = None,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="allow items of the history in the result")] = False,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="leave out entries that are not in the catalogue (listed on stderr) instead of failing")] = False,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
) -> None:
    """Recommend the next K items for a history of titles or item ids, with the run's catalogue changes.

    An entry is tried as an item id, then as a title (exactly, then ignoring case). Unknown
    entries stop the command with exit status 2 and close matches, unless --skip-unknown.
    """
    from ..api import Recommender

    try:
        entries = read_history(history or [], file)
        if not entries:
            raise GenrecError("the history is empty", "give titles or item ids as arguments, with --file PATH, or on stdin with -")
        with console.status(f"loading {run}"):
            rec = Recommender.load(run, dataset, decode=decode, beams=max(10, k) if beams is None else beams,  # type: ignore[arg-type]
                                   threads=threads, assist=assist, assist_weight=assist_weight)
        result = rec.recommend(entries, k=k, decode=decode, exclude_seen=not keep_seen,  # type: ignore[arg-type]
                               on_unknown="skip" if skip_unknown else "error")
    except GenrecError as e:
        fail(e)
    if result.unknown:
        console.print(f"[yellow]left out (not in the catalogue):[/] {', '.join(repr(u) for u in result.unknown)}", highlight=False)
    if result.shortfall:
        console.print(f"[yellow]{escape(result.shortfall)}[/]", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    table = Table("#", "title", "item id", "score", title=f"top {k} after {len(entries) - len(result.unknown)} items")
    for rank, item in enumerate(result, 1):
        table.add_row(str(rank), item.title, item.item_id, f"{item.score:.3f}")
    out.print(table)
