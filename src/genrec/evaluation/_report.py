"""Evaluation outputs: ``metrics.json``, ``rankings.parquet``, ``report.md``, ``plot.png``,
and the side-by-side comparison of several evaluation folders.

Every folder is written to a temporary sibling and renamed into place (``_io.atomic_dir``),
so a failed run never leaves a half-written or clobbered result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from .._io import atomic_dir, check_out, json_safe, read_json, write_json
from ..errors import GenrecError
from .metrics import REPORTED_K, paired_comparison, per_user

if TYPE_CHECKING:
    from .evaluate import EvalResult

_STOPS = {"epochs": "the epoch limit", "patience": "early stopping (patience)", "max_minutes": "the time budget"}
#: metrics tested pairwise in `compare` (hit metrics also get McNemar's test)
PAIRED = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr")


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _rankings_frame(result: EvalResult) -> pl.DataFrame:
    ids = np.asarray(result.item_ids, dtype=object)
    titles = np.asarray(result.titles, dtype=object)
    items = result.items
    valid = items >= 0
    safe = np.where(valid, items, 0)
    id_lists = np.where(valid, ids[safe], None).tolist()
    title_lists = np.where(valid, titles[safe], None).tolist()
    return pl.DataFrame(
        {
            "user_id": result.user_ids,
            "position": result.positions,
            "target": result.targets,
            "target_id": ids[result.targets].tolist(),
            "target_title": titles[result.targets].tolist(),
            "items": items.tolist(),
            "item_ids": id_lists,
            "titles": title_lists,
            "scores": result.scores.tolist(),
        },
        schema={
            "user_id": pl.Utf8,
            "position": pl.Int64,
            "target": pl.Int64,
            "target_id": pl.Utf8,
            "target_title": pl.Utf8,
            "items": pl.List(pl.Int64),
            "item_ids": pl.List(pl.Utf8),
            "titles": pl.List(pl.Utf8),
            "scores": pl.List(pl.Float64),
        },
    )


def _plot(curves: list[tuple[str, list[int], list[float], list[float]]], path: Path, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        # a side output: the metrics, rankings and report are what the evaluation is for
        warnings.warn(f"{path.name} not drawn: plots need matplotlib: pip install 'genrec[plot]'", stacklevel=3)
        return

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, ks, hr, ndcg in curves:
        axes[0].plot(ks, hr, marker="o", markersize=3, label=label)
        axes[1].plot(ks, ndcg, marker="o", markersize=3, label=label)
    k_max = max((max(ks) for _, ks, _, _ in curves), default=1)
    ticks = [1, *range(5, k_max + 1, 5)] if k_max >= 5 else list(range(1, k_max + 1))
    for ax, name in zip(axes, ("HR@K", "NDCG@K"), strict=True):
        ax.set_xticks(ticks)
        ax.set_xlabel("K")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _report(summary: dict) -> str:
    s = summary["settings"]
    ci = summary["ci"]
    lines = [
        f"# {summary['method']} on {summary['dataset']} ({summary['split']} split)",
        "",
        f"- users: {summary['n_users']:,} ({s['subset']}); examples: {summary['n_examples']:,}",
        f"- ranking: {s['ranking']} of {s['n_items']:,} items; "
        f"seen items {'excluded' if s['exclude_seen'] else 'kept'}; histories: {s['history']}; "
        f"dataset split: {s['dataset_split']}",
        f"- throughput: {summary['users_per_second']:,.2f} users/s ({summary['seconds']:.1f} s, {s['world_size']} process(es))",
        f"- intervals: {summary['ci_settings']['level']:.0%} {summary['ci_settings']['method']}, "
        f"{summary['ci_settings']['resamples']} resamples, seed {summary['ci_settings']['seed']}",
        "",
        "| metric | value | 95% CI |",
        "| --- | ---: | --- |",
    ]
    for k in REPORTED_K:
        for name in (f"hr@{k}", f"ndcg@{k}"):
            if name in summary:
                lo, hi = ci.get(name, [None, None])
                lines.append(f"| {name.upper()} | {_fmt(summary[name])} | [{_fmt(lo)}, {_fmt(hi)}] |")
    lo, hi = ci["mrr"]
    lines.append(f"| MRR@{s['k_max']} | {_fmt(summary['mrr'])} | [{_fmt(lo)}, {_fmt(hi)}] |")
    lo, hi = ci["valid_rate"]
    lines.append(f"| valid rate | {_fmt(summary['valid_rate'])} | [{_fmt(lo)}, {_fmt(hi)}] |")
    for key in sorted(k for k in summary if k.startswith(("coverage@", "arp@", "pop_percentile@"))):
        lines.append(f"| {key} | {_fmt(summary[key])} | |")
    cold = summary.get("cold_start")
    if cold:
        lines += ["", f"Cold start: {cold['cold_items']:,} of {cold['catalogue_size']:,} items occur in no training part.", "",
                  "| targets | users | HR@10 | NDCG@10 | MRR |", "| --- | ---: | ---: | ---: | ---: |"]
        for group in ("cold", "warm"):
            g = cold[group]
            lines.append(f"| {group} | {g['n_users']:,} | {_fmt(g.get('hr@10'))} | {_fmt(g.get('ndcg@10'))} | {_fmt(g.get('mrr'))} |")
    lines += ["", "![HR@K and NDCG@K](plot.png)", ""]
    fit = s.get("fit") or {}
    if fit:
        lines += [
            f"Training: {fit.get('epochs_run')} epochs in {fit.get('seconds', 0) / 60:.1f} min, "
            f"kept epoch {fit.get('best_epoch')} (validation NDCG@10 {_fmt(fit.get('best_valid_ndcg@10'))}); "
            f"stopped by {_STOPS.get(fit.get('stopped'), fit.get('stopped'))}.",
            "",
        ]
    if s.get("method_config"):
        lines += ["Method settings:", "", "```", *(f"{k}: {v}" for k, v in s["method_config"].items()), "```", ""]
    return "\n".join(lines)


def write_eval(result: EvalResult, out_dir: str | Path, overwrite: bool = True,
               inputs: Sequence[str | Path | None] = ()) -> Path:
    """Write metrics.json, rankings.parquet, report.md and plot.png to `out_dir` atomically.

    `out_dir` must pass ``_io.check_out`` (`inputs`: the dataset and model folders read);
    an earlier evaluation there is replaced only with `overwrite`.
    """
    summary = json_safe(result.summary())
    with atomic_dir(out_dir, overwrite, kind="evaluation", inputs=inputs) as tmp:
        write_json(tmp / "metrics.json", summary)
        _rankings_frame(result).write_parquet(tmp / "rankings.parquet")
        (tmp / "report.md").write_text(_report(summary), encoding="utf-8")
        _plot(
            [(result.method, summary["k"], summary["hr@k"], summary["ndcg@k"])],
            tmp / "plot.png",
            f"{result.method} on {result.dataset} ({result.split}, {summary['n_users']:,} users)",
        )
    return Path(out_dir)


def _load(eval_dir: Path) -> tuple[dict, pl.DataFrame]:
    if not (eval_dir / "metrics.json").is_file() or not (eval_dir / "rankings.parquet").is_file():
        raise GenrecError(
            f"{eval_dir} is not an evaluation folder (needs metrics.json and rankings.parquet)",
            "pass folders written by `genrec evaluate --out`",
        )
    return read_json(eval_dir / "metrics.json"), pl.read_parquet(eval_dir / "rankings.parquet")


def compare(eval_dirs: list[str | Path], out: str | Path, n_resamples: int = 1000, seed: int = 0,
            overwrite: bool = True) -> dict:
    """Side-by-side table, one plot with a line per method, and paired tests against the first.

    Paired tests use the users present in every folder (matched on user and target
    position); the count is reported. Folders must come from the same dataset and split.
    `out` may not be one of them (``_io.check_out``); an earlier comparison there is
    replaced only with `overwrite`.
    """
    dirs = [Path(d) for d in eval_dirs]
    check_out(out, "comparison", dirs, overwrite)
    if len(dirs) < 2:
        raise GenrecError("compare needs at least two evaluation folders", "pass two or more EVAL_DIRs")
    loaded = [_load(d) for d in dirs]
    first = loaded[0][0]
    problems = [
        f"{d}: {m['dataset']}/{m['split']} (the first is {first['dataset']}/{first['split']})"
        for d, (m, _) in zip(dirs, loaded, strict=True)
        if (m["dataset"], m["split"]) != (first["dataset"], first["split"])
    ]
    if problems:
        raise GenrecError("the folders evaluate different data: " + "; ".join(problems), "compare evaluations of the same dataset and split")
    methods = [m["method"] for m, _ in loaded]
    labels = [f"{m} ({d.name})" if methods.count(m) > 1 else m for m, d in zip(methods, dirs, strict=True)]

    keys = None
    for _, r in loaded:
        ks = set(zip(r["user_id"].to_list(), r["position"].to_list(), strict=True))
        keys = ks if keys is None else keys & ks
    common = pl.DataFrame(sorted(keys), schema={"user_id": pl.Utf8, "position": pl.Int64}, orient="row")
    k_max = min(len(m["k"]) for m, _ in loaded)
    per_method = []
    for _, r in loaded:
        rows = common.join(r, on=["user_id", "position"], how="left", maintain_order="left")
        items = np.array([row[:k_max] for row in rows["items"].to_list()], dtype=np.int64).reshape(len(rows), k_max)
        pu = per_user(items, rows["target"].to_numpy())
        per_method.append(
            {f"hr@{k}": pu.hits(k_max)[:, k - 1] for k in (5, 10) if k <= k_max}
            | {f"ndcg@{k}": pu.ndcgs(k_max)[:, k - 1] for k in (5, 10) if k <= k_max}
            | {"mrr": pu.reciprocal_rank()}
        )
    paired = {}
    for label, values in zip(labels[1:], per_method[1:], strict=True):
        paired[label] = {
            name: paired_comparison(per_method[0][name], values[name], n_resamples, seed, binary=name.startswith("hr@"))
            for name in PAIRED
            if name in values
        }
    table_keys = ["n_users", "hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr", "valid_rate", "coverage", "users_per_second"]
    result = {
        "dataset": first["dataset"],
        "split": first["split"],
        "methods": [
            {"label": lab, "dir": str(d), **{k: m.get(k) for k in table_keys}, "ci": m.get("ci", {})}
            for lab, d, (m, _) in zip(labels, dirs, loaded, strict=True)
        ],
        "paired_against": labels[0],
        "paired_users": len(common),
        "paired": paired,
        "paired_settings": {"method": "paired percentile bootstrap over users; McNemar exact test for HR", "resamples": n_resamples, "seed": seed},
    }

    lines = [f"# Comparison on {first['dataset']} ({first['split']} split)", "", "| method | " + " | ".join(table_keys) + " |", "|---" * (len(table_keys) + 1) + "|"]
    for row in result["methods"]:
        cells = []
        for k in table_keys:
            v = row[k]
            lo_hi = row["ci"].get(k)
            cell = f"{v:,}" if k == "n_users" else f"{v:,.1f}" if k == "users_per_second" and v is not None else _fmt(v)
            if lo_hi and None not in lo_hi:
                cell += f" [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]"
            cells.append(cell)
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired differences against **{labels[0]}** on {len(common):,} common users (other − first, 95% CI, two-sided p):", ""]
    lines += ["| method | metric | difference | 95% CI | p (bootstrap) | p (McNemar) |", "|---|---|---:|---|---:|---:|"]
    for label, tests in paired.items():
        for name, t in tests.items():
            mc = t.get("mcnemar", {}).get("p_value")
            lines.append(
                f"| {label} | {name} | {t['diff']:+.4f} | [{t['ci'][0]:+.4f}, {t['ci'][1]:+.4f}] | {_fmt_p(t['p_value'])} | {_fmt_p(mc)} |"
            )
    lines += ["", f"A bootstrap p-value cannot fall below 1/(resamples + 1) = {1 / (n_resamples + 1):.4f}."]
    lines += ["", "![HR@K and NDCG@K](plot.png)", ""]
    with atomic_dir(out, overwrite, kind="comparison", inputs=dirs) as tmp:
        write_json(tmp / "comparison.json", result)  # write_json writes non-finite numbers as null
        (tmp / "comparison.md").write_text("\n".join(lines), encoding="utf-8")
        _plot(
            [(lab, m["k"], m["hr@k"], m["ndcg@k"]) for lab, (m, _) in zip(labels, loaded, strict=True)],
            tmp / "plot.png",
            f"{first['dataset']} ({first['split']})",
        )
    return result
