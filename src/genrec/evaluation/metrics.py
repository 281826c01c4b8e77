"""Full-catalogue ranking metrics on item indices, with bootstrap confidence intervals.

Definitions (one relevant item per user, the held-out target; Kang & McAuley 2018, the
leave-one-out protocol of SASRec, P5 and GenRec, but ranked against the whole
catalogue, never sampled negatives — Krichene & Rendle 2020, "On Sampled Metrics for
Item Recommendation"):

- ``HR@K``: 1 if the target is among the first K slots, else 0.
- ``NDCG@K``: ``1 / log2(rank + 1)`` for the target's 1-based rank ≤ K, else 0 (the ideal
  DCG of one relevant item is 1).
- ``MRR@K``: ``1 / rank`` for the target's rank ≤ K, else 0. Reported at K = 10 and at
  K = k_max (the list length ranked): ``mrr@10`` compares methods ranked to different
  depths, ``mrr@20`` of a 20-long list does not compare with ``mrr@10`` of a 10-long one.
- ``valid_rate``: share of filled slots that hold a catalogue item: slots ``>= 0`` over
  slots ``>= 0`` plus ``INVALID``; ``NO_ITEM`` slots are not counted (pooled over users).
- ``coverage@K``: distinct items in all top-K lists / catalogue size.
- popularity bias: ``arp@K`` (average recommendation popularity, Abdollahpouri et al.
  2019: mean training count of the recommended items, per user then averaged) and
  ``pop_percentile@K`` (the same with each item's popularity percentile in the catalogue,
  0 = least, 1 = most popular; ties share their mid-rank).

Each user's outcome (the target's rank, valid and invalid slots) comes from the per-user
kernels of :mod:`genrec.ranking` (:func:`~genrec.ranking.per_user`), which also reject a
list that holds the same catalogue item twice (:class:`~genrec.ranking.DuplicateItemsError`;
:func:`~genrec.ranking.drop_duplicates` removes legitimate repeats before evaluation).

Confidence intervals are percentile bootstraps over users (Efron & Tibshirani 1993):
resamples are drawn as multinomial counts so every metric shares the same resamples.
:func:`paired_comparison` is a paired bootstrap of the per-user difference with a
two-sided p-value from the null-centred bootstrap distribution, plus an exact McNemar
test for hit metrics; :func:`holm` corrects several of them. The statistics live in
:mod:`genrec.evaluation._stats` (chunked, so they scale to millions of users).
"""

from __future__ import annotations

import math

import numpy as np

# the per-user kernels live on the ground floor (validation during training and SASRec's
# early stopping use them too); they are re-exported here for the callers of this module
from ..ranking import INVALID, NO_ITEM, DuplicateItemsError, PerUser, check_lists, drop_duplicates, per_user  # noqa: F401

# the statistics are re-exported here for the callers of this module
from ._stats import (  # noqa: F401
    bootstrap_ci,
    holm,
    mcnemar_exact,
    paired_comparison,
    paired_comparisons,
    percentile_ci,
    ratio_ci,
    resampled_sums,
)

#: the cut-offs written as top-level metrics (every K up to k_max goes in the curves)
REPORTED_K = (1, 5, 10, 20)
#: MRR's common cut-off: ``mrr@10`` compares methods that ranked to different depths
MRR_K = 10


def valid_rate(pu: PerUser) -> float:
    denom = int(pu.n_valid.sum() + pu.n_invalid.sum())
    return float(pu.n_valid.sum() / denom) if denom else float("nan")


def coverage(items: np.ndarray, n_items: int, k: int = 10) -> float:
    """Distinct catalogue items in the top-k lists over the catalogue size."""
    top = np.asarray(items)[:, :k]
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else float("nan")


def popularity_percentile(counts: np.ndarray) -> np.ndarray:
    """Each item's mid-rank percentile of training popularity in [0, 1]."""
    counts = np.asarray(counts)
    n = len(counts)
    if n <= 1:
        return np.full(n, 0.5)
    srt = np.sort(counts)
    below = np.searchsorted(srt, counts, side="left")
    upto = np.searchsorted(srt, counts, side="right")
    # mid-rank (0-based) of the tie group, scaled so the least popular is 0 and the most 1
    return ((below + upto - 1) / 2.0) / (n - 1)


def popularity_bias(items: np.ndarray, counts: np.ndarray, k: int = 10) -> dict[str, float]:
    """``arp@k`` and ``pop_percentile@k``: per-user means over filled slots, then over users."""
    top = np.asarray(items)[:, :k]
    mask = top >= 0
    safe = np.where(mask, top, 0)
    n = mask.sum(axis=1)
    out = {}
    for name, per_item in (("arp", np.asarray(counts, dtype=np.float64)), ("pop_percentile", popularity_percentile(counts))):
        vals = np.where(mask, per_item[safe], 0.0).sum(axis=1)
        users = n > 0
        out[f"{name}@{k}"] = float((vals[users] / n[users]).mean()) if users.any() else float("nan")
    return out


def compute_metrics(
    items: np.ndarray,
    targets: np.ndarray,
    n_items: int,
    popularity: np.ndarray | None = None,
    k_max: int = 20,
    coverage_k: int = 10,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Every metric for one method's ranked lists (items: (n_users, k) indices/markers).

    Returns a dict with the scalar metrics (``hr@K``/``ndcg@K`` for K in
    :data:`REPORTED_K` up to k_max, ``mrr@10`` and ``mrr@<k_max>`` (:func:`mrr_cutoffs`), ``valid_rate``, ``coverage@K``, ``arp@K``,
    ``pop_percentile@K``), ``curves`` (``hr``/``ndcg`` lists for K = 1..k_max) and ``ci``
    (metric → [lo, hi]). Lists shorter than k_max count as misses beyond their end.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.shape[1] < k_max:
        items = np.pad(items, ((0, 0), (0, k_max - items.shape[1])), constant_values=NO_ITEM)
    pu = per_user(items, targets, n_items)
    n = len(pu)
    hits, ndcgs = pu.hits(k_max), pu.ndcgs(k_max)
    rrs = {f"mrr@{k}": pu.reciprocal_rank(k) for k in mrr_cutoffs(k_max)}
    out: dict = {"n_users": n}
    mean = (lambda a: a.mean(axis=0)) if n else (lambda a: np.full(a.shape[1:], np.nan))
    hr_curve, ndcg_curve = mean(hits), mean(ndcgs)
    for k in REPORTED_K:
        if k <= k_max:
            out[f"hr@{k}"] = float(hr_curve[k - 1])
            out[f"ndcg@{k}"] = float(ndcg_curve[k - 1])
    for name, rr in rrs.items():
        out[name] = float(rr.mean()) if n else float("nan")
    out["valid_rate"] = valid_rate(pu)
    out[f"coverage@{coverage_k}"] = coverage(items, n_items, coverage_k)
    if popularity is not None:
        out.update(popularity_bias(items, popularity, coverage_k))
    out["curves"] = {"k": list(range(1, k_max + 1)), "hr": hr_curve.tolist(), "ndcg": ndcg_curve.tolist()}

    cols, names = [], []
    for k in REPORTED_K:
        if k <= k_max:
            cols += [hits[:, k - 1], ndcgs[:, k - 1]]
            names += [f"hr@{k}", f"ndcg@{k}"]
    cols += list(rrs.values())
    names += list(rrs)
    out["ci"] = {name: [math.nan, math.nan] for name in [*names, "valid_rate"]}
    if n:
        # one pass over the resamples for every metric and both sides of the valid rate
        sums = resampled_sums(np.stack([*cols, pu.n_valid, pu.n_valid + pu.n_invalid], axis=1), n_resamples, seed)
        ci = percentile_ci(sums[:, : len(cols)] / n, level)
        out["ci"] = {name: [float(lo), float(hi)] for name, (lo, hi) in zip(names, ci, strict=True)}
        out["ci"]["valid_rate"] = list(ratio_ci(sums[:, -2], sums[:, -1], level))
    out["ci_settings"] = {"method": "percentile bootstrap over users", "level": level, "resamples": n_resamples, "seed": seed}
    return out


def mrr_cutoffs(k_max: int) -> list[int]:
    """The cut-offs MRR is reported at: :data:`MRR_K` (when the lists reach it) and k_max."""
    return sorted({MRR_K, k_max}) if k_max >= MRR_K else [k_max]


def k_max_of(summary: dict) -> int | None:
    """The list length an evaluation ranked to, from its ``metrics.json`` (None if unrecorded)."""
    k = (summary.get("settings") or {}).get("k_max")
    if k is None and summary.get("k"):
        k = len(summary["k"])  # the curves run K = 1..k_max
    return int(k) if k is not None else None


def rename_legacy_mrr(summary: dict) -> dict:
    """A copy of a ``metrics.json`` summary with plain ``mrr`` (before cut-off names) as ``mrr@<k_max>``.

    Before issue 14, ``mrr`` was the reciprocal rank over the whole list, so its cut-off
    is the k_max the evaluation recorded (also for its cold-start groups); without one
    the key is left as it is.
    """
    k = k_max_of(summary)
    if k is None:
        return summary

    def rename(d: dict) -> dict:
        name = f"mrr@{k}"
        d = {(name if key == "mrr" else key): v for key, v in d.items() if not (key == "mrr" and name in d)}
        if isinstance(d.get("ci"), dict):
            d["ci"] = rename(d["ci"])
        return d

    out = rename(summary)
    if isinstance(out.get("cold_start"), dict):
        out = {**out, "cold_start": {g: rename(v) if isinstance(v, dict) else v for g, v in out["cold_start"].items()}}
    return out
