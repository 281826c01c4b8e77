"""Full-catalogue ranking metrics on item indices, with bootstrap confidence intervals.

Definitions (one relevant item per user, the held-out target; Kang & McAuley 2018, the
leave-one-out protocol of SASRec, P5 and GenRec, but ranked against the whole
catalogue, never sampled negatives — Krichene & Rendle 2020, "On Sampled Metrics for
Item Recommendation"):

- ``HR@K``: 1 if the target is among the first K slots, else 0.
- ``NDCG@K``: ``1 / log2(rank + 1)`` for the target's 1-based rank ≤ K, else 0 (the ideal
  DCG of one relevant item is 1).
- ``MRR``: ``1 / rank`` over the returned list; 0 when the target is absent.
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
test for hit metrics.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import GenrecError

# the per-user kernels live on the ground floor (validation during training and SASRec's
# early stopping use them too); they are re-exported here for the callers of this module
from ..ranking import INVALID, NO_ITEM, DuplicateItemsError, PerUser, check_lists, drop_duplicates, per_user  # noqa: F401

#: the cut-offs written as top-level metrics (every K up to k_max goes in the curves)
REPORTED_K = (1, 5, 10, 20)


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


def bootstrap_counts(n: int, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) multinomial counts: how often each user is drawn in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.float64) if n else np.zeros((n_resamples, 0))


def bootstrap_ci(values: np.ndarray, counts: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile intervals for the mean of each column of `values` (n,) or (n, m) → (m, 2)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    n = v.shape[0]
    if n == 0:
        return np.full((v.shape[1], 2), np.nan)
    means = counts @ v / n
    alpha = (1.0 - level) / 2.0
    return np.quantile(means, [alpha, 1.0 - alpha], axis=0).T


def ratio_ci(num: np.ndarray, den: np.ndarray, counts: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a pooled ratio sum(num)/sum(den) under resampling users."""
    n_s = counts @ np.asarray(num, dtype=np.float64)
    d_s = counts @ np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = n_s / d_s
    r = r[np.isfinite(r)]
    if not len(r):
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


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
    :data:`REPORTED_K` up to k_max, ``mrr``, ``valid_rate``, ``coverage@K``, ``arp@K``,
    ``pop_percentile@K``), ``curves`` (``hr``/``ndcg`` lists for K = 1..k_max) and ``ci``
    (metric → [lo, hi]). Lists shorter than k_max count as misses beyond their end.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.shape[1] < k_max:
        items = np.pad(items, ((0, 0), (0, k_max - items.shape[1])), constant_values=NO_ITEM)
    pu = per_user(items, targets, n_items)
    n = len(pu)
    hits, ndcgs, rr = pu.hits(k_max), pu.ndcgs(k_max), pu.reciprocal_rank()
    out: dict = {"n_users": n}
    mean = (lambda a: a.mean(axis=0)) if n else (lambda a: np.full(a.shape[1:], np.nan))
    hr_curve, ndcg_curve = mean(hits), mean(ndcgs)
    for k in REPORTED_K:
        if k <= k_max:
            out[f"hr@{k}"] = float(hr_curve[k - 1])
            out[f"ndcg@{k}"] = float(ndcg_curve[k - 1])
    out["mrr"] = float(rr.mean()) if n else float("nan")
    out["valid_rate"] = valid_rate(pu)
    out[f"coverage@{coverage_k}"] = coverage(items, n_items, coverage_k)
    if popularity is not None:
        out.update(popularity_bias(items, popularity, coverage_k))
    out["curves"] = {"k": list(range(1, k_max + 1)), "hr": hr_curve.tolist(), "ndcg": ndcg_curve.tolist()}

    counts = bootstrap_counts(n, n_resamples, seed)
    cols, names = [], []
    for k in REPORTED_K:
        if k <= k_max:
            cols += [hits[:, k - 1], ndcgs[:, k - 1]]
            names += [f"hr@{k}", f"ndcg@{k}"]
    cols.append(rr)
    names.append("mrr")
    ci = bootstrap_ci(np.stack(cols, axis=1), counts, level) if n else np.full((len(cols), 2), np.nan)
    out["ci"] = {name: [float(lo), float(hi)] for name, (lo, hi) in zip(names, ci, strict=True)}
    out["ci"]["valid_rate"] = list(ratio_ci(pu.n_valid, pu.n_valid + pu.n_invalid, counts, level)) if n else [math.nan] * 2
    out["ci_settings"] = {"method": "percentile bootstrap over users", "level": level, "resamples": n_resamples, "seed": seed}
    return out


def mcnemar_exact(a_hit: np.ndarray, b_hit: np.ndarray) -> dict:
    """Exact two-sided McNemar (binomial sign test on discordant users)."""
    a = np.asarray(a_hit, dtype=bool)
    b = np.asarray(b_hit, dtype=bool)
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    m = only_a + only_b
    if m == 0:
        p = 1.0
    else:
        tail = sum(math.comb(m, i) for i in range(min(only_a, only_b) + 1))
        p = min(1.0, 2 * tail / 2**m)
    return {"only_first": only_a, "only_second": only_b, "p_value": p}


def paired_comparison(
    first: np.ndarray,
    second: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    binary: bool = False,
) -> dict:
    """Compare per-user values of two methods on the same users (second minus first).

    ``diff`` is the mean difference, ``ci`` its percentile paired-bootstrap interval and
    ``p_value`` the two-sided bootstrap p-value (share of null-centred resampled
    differences at least as far from 0 as the observed one, with the +1 correction).
    With ``binary=True`` (hit metrics) the exact McNemar test is added.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise GenrecError(f"paired values must be equal-length 1-D arrays, got {a.shape} and {b.shape}")
    n = len(a)
    d = b - a
    if n == 0:
        return {"diff": float("nan"), "ci": [float("nan")] * 2, "p_value": float("nan"), "n_users": 0}
    obs = float(d.mean())
    counts = bootstrap_counts(n, n_resamples, seed)
    boot = counts @ d / n
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    extreme = np.abs(boot - obs) >= abs(obs) - 1e-12
    p = float((1 + extreme.sum()) / (n_resamples + 1))
    out = {"diff": obs, "ci": [float(lo), float(hi)], "p_value": min(1.0, p), "n_users": n}
    if binary:
        out["mcnemar"] = mcnemar_exact(a > 0, b > 0)
    return out
