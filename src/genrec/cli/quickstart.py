"""`genrec quickstart`: the whole pipeline on the bundled data, in about 15 minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import GenrecError
from . import app, console, fail, out
from ._progress import CountProgress
from .train import TrainProgress


@app.command()
def quickstart(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the dataset, run and evaluations")] = Path("quickstart"),
    users: Annotated[int, typer.Option(help="evaluate every method on this many test users (seeded subset; 671 = all)")] = 671,
    train_steps: Annotated[int, typer.Option(help="GenRec optimizer steps (cpu preset: 64 chunks of 11 items each, about 4.5 s on 2 cores)")] = 131,
    sasrec_minutes: Annotated[float, typer.Option(help="SASRec training budget in minutes")] = 1.5,
    backbone: Annotated[str, typer.Option(help="backbone to fine-tune")] = "smollm2-135m",
    preset: Annotated[str, typer.Option(help="training preset")] = "cpu",
    seed: Annotated[int, typer.Option(help="seed of the user subset and of SASRec")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace an earlier quickstart in --out")] = False,
) -> None:
    """Prepare the bundled ml-latest-small, fine-tune GenRec (SmolLM2-135M; the cpu preset: item
    tokens, first 10 layers, every weight trained), evaluate it against popularity and SASRec
    on the same users, and print the table with 95% intervals.

    Everything is written under --out: data/, run/ (the fine-tuned model), eval-*/ and comparison/.
    """
    from ..quickstart import QuickstartPlan, run_quickstart

    t0 = time.perf_counter()
    bars: list[CountProgress] = []

    def eval_progress(name):
        # a bar on a terminal, plain lines in a log (cli/_progress.py)
        bar = CountProgress(f"evaluate {name}", console, "users")
        bars.append(bar)

        def update(done, total):
            bar(done, total)
            if done >= total:
                bar.stop()
        return update

    train_bar = TrainProgress()
    try:
        result = run_quickstart(
            QuickstartPlan(out=out_dir, users=users, train_steps=train_steps, sasrec_minutes=sasrec_minutes,
                           backbone=backbone, preset=preset, seed=seed, overwrite=overwrite),
            say=lambda msg: console.print(f"[bold cyan]{msg}[/]", highlight=False),
            eval_progress=eval_progress, train_progress=train_bar,
        )
    except GenrecError as e:
        fail(e)
    finally:
        train_bar.stop()
        for b in bars:
            b.stop()
    n_test = result["users"]["test_users"]
    subset = "all" if users == n_test else f"a seeded subset of {n_test:,}"
    table = Table(title=f"ml-latest-small, {users} test users ({subset}), full-catalogue ranking, seen items excluded")
    for col in ("method", "HR@10 [95% CI]", "NDCG@10 [95% CI]", "HR@5", "MRR@10", "valid", "users/s"):
        table.add_column(col)
    for m in result["methods"]:
        ci = m["ci"]
        table.add_row(
            m["label"], f"{m['hr@10']:.3f} [{ci['hr@10'][0]:.3f}, {ci['hr@10'][1]:.3f}]",
            f"{m['ndcg@10']:.3f} [{ci['ndcg@10'][0]:.3f}, {ci['ndcg@10'][1]:.3f}]", f"{m['hr@5']:.3f}",
            f"{m['mrr@10']:.3f}", f"{m['valid_rate']:.0%}", f"{m['users_per_second']:.1f}",
        )
    out.print(table)
    g = result["genrec_training"]
    out.print(
        f"GenRec: {g['backbone']} ({g['method']}; {g['preset']} preset), {g['steps']} steps on {g['examples']:,} training "
        f"examples ({g['train_seconds'] / 60:.1f} min of training); evaluated on {users} of {n_test:,} test users. "
        f"Total {(time.perf_counter() - t0) / 60:.1f} min. Files: {out_dir}/",
        highlight=False,
    )
