"""`genrec export recbole` and `genrec export run`: files other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import GenrecError
from . import app, console, fail

export_app = typer.Typer(
    help="Write genrec's data or results in formats other tools read (RecBole, trec_eval, ranx).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

_IDS_HELP = "source (the dataset's ids) or index (genrec's dense indices, for ids that hold spaces)"


def _positional(e: GenrecError) -> GenrecError:
    # the shared output check speaks of --out; here the folder is the argument OUT
    def fix(text: str | None) -> str | None:
        return None if text is None else text.replace("--out ", "OUT ").replace("another --out", "another OUT")

    return GenrecError(fix(e.problem) or e.problem, fix(e.fix))


@export_app.command("recbole")
def recbole(
    data_dir: Annotated[Path, typer.Argument(help="a dataset folder written by `genrec prepare`")],
    out: Annotated[Path, typer.Argument(help="folder to write, named after the data set (its files are OUT/NAME.*): new, empty, or an earlier export with --overwrite")],
    max_history: Annotated[int | None, typer.Option(help="at most this many items in an item_id_list (default: the dataset's max_history, so the rows are genrec's examples)")] = None,
    ids: Annotated[str, typer.Option(help=_IDS_HELP)] = "source",
    overwrite: Annotated[bool, typer.Option(help="replace the export already in OUT (atomically, once the new one is complete)")] = False,
) -> None:
    """Write a dataset as RecBole atomic files with genrec's exact split.

    Writes OUT/NAME.train.inter, NAME.valid.inter and NAME.test.inter (RecBole's benchmark_filename layout: user_id, item_id_list, item_id; one row per genrec example), NAME.item (titles), NAME.inter (every event) and recbole.yaml (the settings that load them).

    Read back with `genrec prepare recbole OUT/NAME.test.inter --split given`.
    """
    from ..data.export import export_recbole

    try:
        summary = export_recbole(data_dir, out, max_history=max_history, ids=ids, overwrite=overwrite)  # type: ignore[arg-type]
    except GenrecError as e:
        fail(_positional(e))
    rows = summary["rows"]
    console.print(
        f"[green]wrote[/] {out}: {summary['name']}.train/valid/test.inter ({rows['train']:,} / {rows['valid']:,} / "
        f"{rows['test']:,} rows, {summary['users']:,} users), {summary['name']}.item ({summary['items']:,} items), "
        f"{summary['name']}.inter, recbole.yaml",
        highlight=False, soft_wrap=True,
    )
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@export_app.command("run")
def run(
    eval_dir: Annotated[Path, typer.Argument(help="an evaluation folder written by `genrec evaluate --out`")],
    out: Annotated[Path, typer.Argument(help="folder to write: new, empty, or an earlier export with --overwrite")],
    run_name: Annotated[str | None, typer.Option(help="the run's name in the last column (default: the method)")] = None,
    ids: Annotated[str, typer.Option(help="source (user and item ids) or index (row numbers and catalogue indices, for ids that hold spaces)")] = "source",
    overwrite: Annotated[bool, typer.Option(help="replace the export already in OUT (atomically, once the new one is complete)")] = False,
) -> None:
    """Write an evaluation's rankings as a TREC run (run.trec) and its targets as qrels (qrels.trec).

    trec_eval and ranx recompute genrec's HR/NDCG/MRR from them, e.g. `trec_eval -c -m ndcg_cut.10 -m recall.10 OUT/qrels.trec OUT/run.trec` (recall@10 is HR@10 with one relevant item; -c counts a user with an empty list as a miss).
    """
    from ..evaluation.export import export_trec

    try:
        summary = export_trec(eval_dir, out, run_name=run_name, ids=ids, overwrite=overwrite)  # type: ignore[arg-type]
    except GenrecError as e:
        fail(_positional(e))
    console.print(
        f"[green]wrote[/] {out}: run.trec ({summary['run_lines']:,} lines, {summary['queries']:,} queries, "
        f"run {summary['run_name']}) and qrels.trec; check with: {summary['check']}",
        highlight=False, soft_wrap=True,
    )
    if summary["placeholders"]:
        console.print(
            f"[yellow]note:[/] {summary['placeholders']:,} slot(s) held no catalogue item before a real one; "
            "written as genrec:invalid:RANK / genrec:no-item:RANK so the ranks stay genrec's",
            highlight=False, soft_wrap=True,
        )
