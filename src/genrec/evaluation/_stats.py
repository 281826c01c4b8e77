"""Resampling and significance tests over users, sized for millions of users.

- **Percentile bootstrap over users** (Efron & Tibshirani 1993, *An Introduction to the
  Bootstrap*, ch. 13). A resample is a multinomial count vector (how often each user is
  drawn), so every metric of one call shares the same resamples. The counts are drawn in
  chunks of rows from the one seeded Generator stream: numpy draws a ``size=(R,)``
  multinomial row by row, so the chunks hold exactly the rows of the single
  (resamples × users) draw this replaced, while memory stays O(chunk × users) — the dense
  matrix was 1.3 GB per call at 1,000 resamples × 162k users (ML-25M).
- **Exact McNemar test** (McNemar 1947): the two-sided binomial sign test with p = 1/2 on
  the discordant users, by ``scipy.stats.binomtest`` rather than as a sum of exact
  big-integer binomial coefficients, which took 6 s at 10,000 discordant users and
  minutes at 30,000.
- **Holm–Bonferroni** (Holm 1979, "A simple sequentially rejective multiple test
  procedure") for several paired tests at once. scipy.stats has no Holm correction and
  statsmodels (which has one) is not a dependency; the step-down rule is five lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..errors import GenrecError

#: cells (resamples × users) in one chunk of bootstrap counts: 4M float64 = 32 MB
CHUNK_CELLS = 1 << 22


def chunk_rows(n: int, n_resamples: int, max_cells: int | None = None) -> int:
    """Resamples drawn at once so that one chunk of counts holds at most `max_cells` (default
    :data:`CHUNK_CELLS`) cells; at least one row, so a single row may exceed it."""
    return max(1, min(n_resamples, (max_cells or CHUNK_CELLS) // max(n, 1)))


def count_chunks(n: int, n_resamples: int = 1000, seed: int = 0, max_cells: int | None = None) -> Iterator[np.ndarray]:
    """Bootstrap counts in (rows, n) float chunks; together, the rows of one (n_resamples, n) draw."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    rows = chunk_rows(n, n_resamples, max_cells)
    for start in range(0, n_resamples, rows):
        yield rng.multinomial(n, p, size=min(rows, n_resamples - start)).astype(np.float64)


def resampled_sums(values: np.ndarray, n_resamples: int = 1000, seed: int = 0, max_cells: int | None = None) -> np.ndarray:
    """(n_resamples, m): each column of `values` (n,) or (n, m) summed over the users of each resample."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    n = v.shape[0]
    if n == 0:
        return np.zeros((n_resamples, v.shape[1]))
    out = np.empty((n_resamples, v.shape[1]))
    start = 0
    for counts in count_chunks(n, n_resamples, seed, max_cells):
        out[start : start + len(counts)] = counts @ v
        start += len(counts)
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """(m, 2) percentile intervals of the columns of `samples` (resamples × m)."""
    alpha = (1.0 - level) / 2.0
    return np.quantile(samples, [alpha, 1.0 - alpha], axis=0).T


def bootstrap_ci(values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> np.ndarray:
    """Percentile intervals for the mean of each column of `values` (n,) or (n, m) → (m, 2)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    if v.shape[0] == 0:
        return np.full((v.shape[1], 2), np.nan)
    return percentile_ci(resampled_sums(v, n_resamples, seed) / v.shape[0], level)


def ratio_ci(num_sums: np.ndarray, den_sums: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a pooled ratio sum(num)/sum(den) from its resampled sums."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.asarray(num_sums, dtype=np.float64) / np.asarray(den_sums, dtype=np.float64)
    r = r[np.isfinite(r)]
    if not len(r):
        return (float("nan"), float("nan"))
    lo, hi = percentile_ci(r[:, None], level)[0]
    return (float(lo), float(hi))


def sign_test_p(k: int, m: int) -> float:
    """Two-sided exact binomial p-value of `k` successes in `m` trials at p = 1/2
    (``scipy.stats.binomtest``, which finds the other tail by binary search: constant
    work per test where the former exact integer sum grew with m²)."""
    if m == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(int(k), int(m), 0.5).pvalue)


def mcnemar_exact(a_hit: np.ndarray, b_hit: np.ndarray) -> dict:
    """Exact two-sided McNemar test (binomial sign test on the discordant users)."""
    a = np.asarray(a_hit, dtype=bool)
    b = np.asarray(b_hit, dtype=bool)
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    return {"only_first": only_a, "only_second": only_b, "p_value": sign_test_p(only_a, only_a + only_b)}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN, not counted).

    The i-th smallest of m p-values is multiplied by m - i + 1 (i from 1), made monotone,
    capped at 1; it controls the family-wise error rate under any dependence between the
    tests (HR@5 and HR@10 of one method are strongly dependent).
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    out[order] = np.minimum(1.0, np.maximum.accumulate((len(order) - np.arange(len(order))) * p[order]))
    return out.tolist()


def paired_comparisons(
    first: Mapping[str, np.ndarray],
    second: Mapping[str, np.ndarray],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    binary: Sequence[str] = (),
) -> dict[str, dict]:
    """:func:`paired_comparison` for several metrics of the same users in one bootstrap pass.

    Every metric sees the same resamples (as separate calls with one seed would), but the
    counts are drawn once. Names in `binary` (hit metrics) also get McNemar's test.
    """
    names = list(first)
    a = [np.asarray(first[k], dtype=np.float64) for k in names]
    b = [np.asarray(second[k], dtype=np.float64) for k in names]
    for name, x, y in zip(names, a, b, strict=True):
        if x.shape != y.shape or x.ndim != 1 or x.shape != a[0].shape:
            raise GenrecError(f"paired values of {name} must be equal-length 1-D arrays, got {x.shape} and {y.shape}")
    n = len(a[0]) if names else 0
    if n == 0:
        return {k: {"diff": float("nan"), "ci": [float("nan")] * 2, "p_value": float("nan"), "n_users": 0} for k in names}
    d = np.stack(b, axis=1) - np.stack(a, axis=1)
    obs = d.mean(axis=0)
    boot = resampled_sums(d, n_resamples, seed) / n
    ci = percentile_ci(boot, level)
    # two-sided: share of null-centred resampled differences at least as far from 0 as the
    # observed one, with the +1 correction (a bootstrap p never reaches 0)
    extreme = (np.abs(boot - obs) >= np.abs(obs) - 1e-12).sum(axis=0)
    out = {}
    for j, name in enumerate(names):
        p = float((1 + extreme[j]) / (n_resamples + 1))
        out[name] = {"diff": float(obs[j]), "ci": [float(ci[j, 0]), float(ci[j, 1])], "p_value": min(1.0, p), "n_users": n}
        if name in binary:
            out[name]["mcnemar"] = mcnemar_exact(a[j] > 0, b[j] > 0)
    return out


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
    return paired_comparisons({"x": a}, {"x": b}, n_resamples, seed, level, ("x",) if binary else ())["x"]
