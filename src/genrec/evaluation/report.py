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
from .metrics import (
    MRR_K,
    NO_ITEM,
    REPORTED_K,
    k_max_of,
    mrr_cutoffs,
    paired_comparisons,
    per_user,
    rename_legacy_mrr,
)
from .metrics import holm as _holm

if TYPE_CHECKING:
    from .evaluate import EvalResult

_STOPS = {"epochs": "the epoch limit", "patience": "early stopping (patience)", "max_minutes": "the time budget"}
#: cut-offs tested pairwise in `compare` (hit metrics also get McNemar's test), with MRR at
#: MRR_K and at the common list length (see `_paired_names`)
PAIRED_K = (5, 10)


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


def _plot(curves: list[tuple[str, list[int], list[float], list[float]]], path: Path, title: str) -> bool:
    """Draw the HR@K / NDCG@K curves; False (with a warning) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        # a side output: the metrics, rankings and report are what the evaluation is for
        warnings.warn(f"{path.name} not drawn: plots need matplotlib: pip install 'genrec[plot]'", stacklevel=3)
        return False

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
    return True


def _report(summary: dict, plot: bool = True) -> str:
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
    for name in _mrr_keys(summary):
        lo, hi = ci.get(name, [None, None])
        lines.append(f"| {name.upper()} | {_fmt(summary[name])} | [{_fmt(lo)}, {_fmt(hi)}] |")
    lo, hi = ci["valid_rate"]
    lines.append(f"| valid rate | {_fmt(summary['valid_rate'])} | [{_fmt(lo)}, {_fmt(hi)}] |")
    for key in sorted(k for k in summary if k.startswith(("coverage@", "arp@", "pop_percentile@"))):
        lines.append(f"| {key} | {_fmt(summary[key])} | |")
    cold = summary.get("cold_start")
    if cold:
        lines += ["", f"Cold start: {cold['cold_items']:,} of {cold['catalogue_size']:,} items occur in no training part.", "",
                  "| targets | users | HR@10 | NDCG@10 | MRR@10 |", "| --- | ---: | ---: | ---: | ---: |"]
        for group in ("cold", "warm"):
            g = cold[group]
            lines.append(f"| {group} | {g['n_users']:,} | {_fmt(g.get('hr@10'))} | {_fmt(g.get('ndcg@10'))} | {_fmt(g.get('mrr@10'))} |")
    if plot:
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
        drawn = _plot(
            [(result.method, summary["k"], summary["hr@k"], summary["ndcg@k"])],
            tmp / "plot.png",
            f"{result.method} on {result.dataset} ({result.split}, {summary['n_users']:,} users)",
        )
        (tmp / "report.md").write_text(_report(summary, plot=drawn), encoding="utf-8")
    return Path(out_dir)


def _mrr_keys(summary: dict) -> list[str]:
    """The ``mrr@K`` keys of a summary, by K."""
    return sorted((k for k in summary if k.startswith("mrr@")), key=lambda k: int(k[4:]))


def _paired_names(k_max: int) -> list[str]:
    """Metrics tested pairwise on lists cut to `k_max` (hit metrics also get McNemar's test)."""
    return [f"{m}@{k}" for k in PAIRED_K if k <= k_max for m in ("hr", "ndcg")] + [f"mrr@{k}" for k in mrr_cutoffs(k_max)]


def _items(rankings: pl.DataFrame, k: int) -> np.ndarray:
    """(rows, k) ranked catalogue indices of a rankings frame, cut or padded (NO_ITEM) to k slots."""
    return np.array([(row + [NO_ITEM] * k)[:k] for row in rankings["items"].to_list()], dtype=np.int64).reshape(len(rankings), k)


def _per_user_values(pu, names: list[str]) -> dict[str, np.ndarray]:
    """Each named metric (``hr@K``, ``ndcg@K``, ``mrr@K``) per user."""
    out = {}
    for name in names:
        metric, k = name.split("@")
        k = int(k)
        out[name] = pu.hits(k)[:, k - 1] if metric == "hr" else pu.ndcgs(k)[:, k - 1] if metric == "ndcg" else pu.reciprocal_rank(k)
    return out


def _load(eval_dir: Path) -> tuple[dict, pl.DataFrame]:
    if not (eval_dir / "metrics.json").is_file() or not (eval_dir / "rankings.parquet").is_file():
        raise GenrecError(
            f"{eval_dir} is not an evaluation folder (needs metrics.json and rankings.parquet)",
            "pass folders written by `genrec evaluate --out`",
        )
    m, r = rename_legacy_mrr(read_json(eval_dir / "metrics.json")), pl.read_parquet(eval_dir / "rankings.parquet")
    k_max = k_max_of(m) or 0
    if f"mrr@{MRR_K}" not in m and k_max >= MRR_K:
        # written before cut-off names: mrr@10 from its rankings (no interval)
        m[f"mrr@{MRR_K}"] = float(per_user(_items(r, MRR_K), r["target"].to_numpy()).reciprocal_rank(MRR_K).mean()) if len(r) else None
    return m, r


def compare(eval_dirs: list[str | Path], out: str | Path, n_resamples: int = 1000, seed: int = 0,
            overwrite: bool = True, holm: bool = False) -> dict:
    """Side-by-side table, one plot with a line per method, and paired tests against the first.

    Paired tests use the users present in every folder (matched on user and target
    position); the count is reported. Folders must come from the same dataset and split.
    Lists are cut to the shortest list length (k_max) of the folders, and a warning is
    given when the depths differ (``warnings``): then only metrics with one cut-off
    (``mrr@10``, ``hr@10``) compare, not ``mrr@<k_max>``. With `holm`, each p-value also
    gets its Holm–Bonferroni adjusted value (``p_holm``) over all the comparison's tests
    of its kind (bootstrap, McNemar). `out` may not be one of the folders
    (``_io.check_out``); an earlier comparison there is replaced only with `overwrite`.
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
    depths = [k_max_of(m) or len(m["k"]) for m, _ in loaded]
    k_max = min(depths)
    warnings = []
    if len(set(depths)) > 1:
        warnings.append(
            "the evaluations ranked to different depths ("
            + ", ".join(f"{lab}: k_max {k}" for lab, k in zip(labels, depths, strict=True))
            + f"); paired tests cut every list to its first {k_max} items; read the table at a shared cut-off "
            "(hr@10, ndcg@10, mrr@10), not mrr@<k_max>, or evaluate with the same --k-max"
        )
    names = _paired_names(k_max)
    per_method = []
    for _, r in loaded:
        rows = common.join(r, on=["user_id", "position"], how="left", maintain_order="left")
        per_method.append(_per_user_values(per_user(_items(rows, k_max), rows["target"].to_numpy()), names))
    binary = [name for name in names if name.startswith("hr@")]
    # one bootstrap pass per method: every metric shares the resamples (same seed)
    paired = {
        label: paired_comparisons(per_method[0], values, n_resamples, seed, binary=binary)
        for label, values in zip(labels[1:], per_method[1:], strict=True)
    }
    if holm:
        tests = [t for by_metric in paired.values() for t in by_metric.values()]
        for family in (tests, [t["mcnemar"] for t in tests if "mcnemar" in t]):
            for t, p in zip(family, _holm([t["p_value"] for t in family]), strict=True):
                t["p_holm"] = p
    mrr_keys = sorted({k for m, _ in loaded for k in _mrr_keys(m)}, key=lambda k: int(k[4:]))
    table_keys = ["n_users", "k_max", "hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", *mrr_keys,
                  "valid_rate", "coverage", "users_per_second"]
    result = {
        "dataset": first["dataset"],
        "split": first["split"],
        "methods": [
            {"label": lab, "dir": str(d), **{k: m.get(k) for k in table_keys}, "k_max": depth, "ci": m.get("ci", {})}
            for lab, d, depth, (m, _) in zip(labels, dirs, depths, loaded, strict=True)
        ],
        "paired_against": labels[0],
        "paired_users": len(common),
        "paired_k_max": k_max,
        "paired": paired,
        "paired_settings": {
            "method": "paired percentile bootstrap over users; McNemar exact test for HR", "resamples": n_resamples, "seed": seed,
            "holm": "Holm-Bonferroni over all bootstrap p-values, and separately all McNemar p-values, of this comparison" if holm else None,
        },
        "warnings": warnings,
    }

    lines = [f"# Comparison on {first['dataset']} ({first['split']} split)", ""]
    lines += [f"> **Warning:** {w}" for w in warnings] + ([""] if warnings else [])
    lines += ["| method | " + " | ".join(table_keys) + " |", "|---" * (len(table_keys) + 1) + "|"]
    for row in result["methods"]:
        cells = []
        for k in table_keys:
            v = row[k]
            lo_hi = row["ci"].get(k)
            cell = f"{v:,}" if k in ("n_users", "k_max") else f"{v:,.1f}" if k == "users_per_second" and v is not None else _fmt(v)
            if lo_hi and None not in lo_hi:
                cell += f" [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]"
            cells.append(cell)
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired differences against **{labels[0]}** on {len(common):,} common users, lists cut to {k_max} "
              "(other − first, 95% CI, two-sided p):", ""]
    holm_cols = " p (bootstrap, Holm) | p (McNemar, Holm) |" if holm else ""
    lines += ["| method | metric | difference | 95% CI | p (bootstrap) | p (McNemar) |" + holm_cols,
              "|---|---|---:|---|---:|---:|" + ("---:|---:|" if holm else "")]
    for label, tests in paired.items():
        for name, t in tests.items():
            mc = t.get("mcnemar", {})
            line = (f"| {label} | {name} | {t['diff']:+.4f} | [{t['ci'][0]:+.4f}, {t['ci'][1]:+.4f}] | "
                    f"{_fmt_p(t['p_value'])} | {_fmt_p(mc.get('p_value'))} |")
            lines.append(line + (f" {_fmt_p(t['p_holm'])} | {_fmt_p(mc.get('p_holm'))} |" if holm else ""))
    lines += ["", f"A bootstrap p-value cannot fall below 1/(resamples + 1) = {1 / (n_resamples + 1):.4f}."]
    if holm:
        lines += ["Holm: each adjusted p-value is corrected over all the bootstrap (or all the McNemar) tests in this table."]
    with atomic_dir(out, overwrite, kind="comparison", inputs=dirs) as tmp:
        write_json(tmp / "comparison.json", result)  # write_json writes non-finite numbers as null
        if _plot(
            [(lab, m["k"], m["hr@k"], m["ndcg@k"]) for lab, (m, _) in zip(labels, loaded, strict=True)],
            tmp / "plot.png",
            f"{first['dataset']} ({first['split']})",
        ):
            lines += ["", "![HR@K and NDCG@K](plot.png)", ""]
        (tmp / "comparison.md").write_text("\n".join(lines), encoding="utf-8")
    return result
