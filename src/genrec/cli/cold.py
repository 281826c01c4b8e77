"""`genrec cold-start`: accuracy on cold targets (items absent from all training data) vs warm ones."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import GenrecError
from . import app, fail, out


@app.command("cold-start")
def cold_start(
    eval_dir: Annotated[Path, typer.Argument(help="a folder written by `genrec evaluate`")],
    data: Annotated[Path | None, typer.Option("--data", help="the dataset folder (default: the one recorded in metrics.json)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples for the 95% intervals")] = 1000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
) -> None:
    """Split an evaluation's users by whether the target occurs in any training part; HR/NDCG/MRR per group.

    Title-based generation can name an item no training sequence held; ID-based methods
    cannot. This shows how often the test targets are such cold items and how each
    method does on them.
    """
    from ..evaluation.cold import KEYS, cold_start_from_eval

    try:
        result = cold_start_from_eval(eval_dir, data, n_resamples=resamples, seed=seed)
    except GenrecError as e:
        fail(e)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=lambda x: None))
        return
    share = result["cold_share_of_targets"]
    groups = ("all", "cold", "warm")
    table = Table("metric", *[f"{g} ({result[g]['n_users']:,} users)" for g in groups],
                  title=f"{result['method']} on {result['dataset']} ({result['split']}): "
                        f"{result['cold_items']:,} of {result['catalogue_size']:,} items never in training; "
                        f"{(share or 0):.1%} of targets are cold")
    for k in (k for k in KEYS if k in result["all"]):
        cells = []
        for g in groups:
            ci = result[g].get("ci", {}).get(k)
            cells.append(_fmt(result[g].get(k)) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
        table.add_row(k, *cells)
    out.print(table)


def _fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"
