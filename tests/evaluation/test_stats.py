"""The statistics behind intervals and paired tests: pinned values, and that they scale.

Scaling is checked by what the code does (no math.comb, no resamples × users matrix),
never by timing; bench/stats_speed.py measures the speed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genrec.evaluation._stats as stats
from genrec.errors import GenrecError
from genrec.evaluation.metrics import compute_metrics
from genrec.evaluation.metrics import holm as holm_from_metrics


def exact_sign_test_p(k: int, m: int) -> float:
    """The old definition, in exact integers: 2 · sum_{i ≤ min(k, m-k)} C(m, i) / 2^m, capped at 1."""
    if m == 0:
        return 1.0
    tail, c = 0, 1
    for i in range(min(k, m - k) + 1):
        tail += c
        c = c * (m - i) // (i + 1)  # C(m, i+1) from C(m, i), exactly
    return min(1.0, 2 * tail / 2**m)  # int / int is correctly rounded, even for huge ints


def test_mcnemar_by_hand():
    a = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    b = np.array([1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
    r = stats.mcnemar_exact(a, b)
    assert (r["only_first"], r["only_second"]) == (1, 6)
    assert r["p_value"] == pytest.approx(2 * (1 + 7) / 2**7, rel=1e-12)
    assert stats.mcnemar_exact(a, a)["p_value"] == 1.0  # no discordant users
    assert stats.sign_test_p(3, 6) == 1.0 and stats.sign_test_p(0, 1) == 1.0  # the tail reaches the middle


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400).flatmap(lambda m: st.tuples(st.integers(0, m), st.just(m))))
def test_sign_test_equals_the_exact_binomial_sum(case):
    k, m = case
    assert stats.sign_test_p(k, m) == pytest.approx(exact_sign_test_p(k, m), rel=1e-11, abs=1e-300)


def test_mcnemar_on_30000_discordant_users_does_not_sum_binomial_coefficients(monkeypatch):
    def no_comb(*_):
        raise AssertionError("math.comb called: the exact test must not sum binomial coefficients")

    monkeypatch.setattr(math, "comb", no_comb)
    only_a, only_b = 14_700, 15_300
    a = np.r_[np.ones(only_a, bool), np.zeros(only_b, bool), np.ones(500, bool)]
    b = np.r_[np.zeros(only_a, bool), np.ones(only_b, bool), np.ones(500, bool)]
    r = stats.mcnemar_exact(a, b)
    assert (r["only_first"], r["only_second"]) == (only_a, only_b)
    assert r["p_value"] == pytest.approx(exact_sign_test_p(only_a, only_a + only_b), rel=1e-10)
    assert 1e-4 < r["p_value"] < 1e-2  # a 2 % difference on 30,000 users: significant, not vanishing
    # far tails underflow to 0 as the exact value does, never to NaN
    assert stats.sign_test_p(0, 30_000) == 0.0


def test_mcnemar_equals_scipy_binomtest():
    import scipy.stats as scipy_stats
    for k, m in [(1, 7), (14_700, 30_000), (4_950, 10_000), (0, 40), (20, 40), (123, 1000)]:
        assert stats.sign_test_p(k, m) == pytest.approx(scipy_stats.binomtest(k, m, 0.5).pvalue, rel=1e-9)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> made monotone: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    out = stats.holm([0.01, float("nan"), 0.02])  # NaN is not a test: the family has 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert stats.holm([]) == [] and holm_from_metrics is stats.holm


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_is_between_the_raw_p_and_bonferroni(ps):
    adj = stats.holm(ps)
    for p, q in zip(ps, adj, strict=True):
        assert p - 1e-15 <= q <= min(1.0, p * len(ps)) + 1e-15
    # the order of the p-values is kept
    order = np.argsort(ps, kind="stable")
    assert (np.diff(np.asarray(adj)[order]) >= -1e-15).all()


def test_chunked_counts_are_the_rows_of_one_draw():
    n, r, seed = 37, 101, 5
    dense = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=r)
    chunks = list(stats.count_chunks(n, r, seed, max_cells=n * 8))
    assert [len(c) for c in chunks] == [8] * 12 + [5]
    assert np.array_equal(np.concatenate(chunks), dense)  # the same resamples for the same seed
    v = np.random.default_rng(0).random((n, 3))
    assert stats.resampled_sums(v, r, seed, max_cells=n * 8) == pytest.approx(dense @ v, rel=1e-12)
    # the chunk size changes only the summation order (BLAS blocking): equal to ~1e-15
    assert stats.resampled_sums(v, r, seed, max_cells=n * 3) == pytest.approx(dense @ v, rel=1e-12)


def test_chunk_size_keeps_memory_bounded():
    # ML-25M: 162k users, 1,000 resamples -> chunks of 25 rows (32 MB), not one 1.3 GB matrix
    rows = stats.chunk_rows(162_000, 1000)
    assert rows * 162_000 <= stats.CHUNK_CELLS and rows < 1000
    assert stats.chunk_rows(671, 1000) == 1000  # small evaluations draw every resample at once
    assert stats.chunk_rows(10**8, 1000) == 1  # at least one row


def test_compute_metrics_never_holds_a_resamples_by_users_matrix(monkeypatch):
    n, r = 3000, 200
    rng = np.random.default_rng(0)
    items = np.argsort(rng.random((n, 20)), axis=1)
    targets = rng.integers(0, 40, n)
    whole = compute_metrics(items, targets, n_items=40, n_resamples=r, seed=3)  # one chunk at this size
    shapes = []
    real = stats.count_chunks

    def spy(*args, **kwargs):
        for c in real(*args, **kwargs):
            shapes.append(c.shape)
            yield c

    monkeypatch.setattr(stats, "CHUNK_CELLS", n * 16)
    monkeypatch.setattr(stats, "count_chunks", spy)
    chunked = compute_metrics(items, targets, n_items=40, n_resamples=r, seed=3)
    assert shapes and all(rows * users <= n * 16 for rows, users in shapes) and sum(s[0] for s in shapes) == r
    for name, (lo, hi) in whole["ci"].items():
        assert chunked["ci"][name] == pytest.approx([lo, hi], rel=1e-12, abs=1e-15), name


def test_paired_comparisons_share_resamples_with_single_calls():
    rng = np.random.default_rng(2)
    a = {"hr@10": (rng.random(500) < 0.3).astype(float), "mrr@10": rng.random(500) * (rng.random(500) < 0.3)}
    b = {"hr@10": (rng.random(500) < 0.4).astype(float), "mrr@10": rng.random(500) * (rng.random(500) < 0.4)}
    together = stats.paired_comparisons(a, b, 300, seed=4, binary=["hr@10"])
    for name in a:
        alone = stats.paired_comparison(a[name], b[name], 300, seed=4, binary=name == "hr@10")
        assert together[name]["diff"] == pytest.approx(alone["diff"], rel=1e-12)
        assert together[name]["ci"] == pytest.approx(alone["ci"], rel=1e-12)
        assert together[name]["p_value"] == alone["p_value"]
    assert "mcnemar" in together["hr@10"] and "mcnemar" not in together["mrr@10"]
    with pytest.raises(GenrecError, match="equal-length"):
        stats.paired_comparisons({"x": np.zeros(3)}, {"x": np.zeros(4)})


def test_the_speed_bench_compares_like_with_like():
    """bench/stats_speed.py's old-way references give the library's values (at toy sizes)."""
    import importlib.util

    from tests._util import REPO

    spec = importlib.util.spec_from_file_location("bench_stats_speed", REPO / "bench" / "stats_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for k, m in [(1, 7), (0, 0), (5, 10), (40, 100)]:
        assert bench.old_mcnemar_p(k, m) == pytest.approx(stats.sign_test_p(k, m), rel=1e-11)
    v = np.random.default_rng(0).random((300, 4))
    assert bench.old_bootstrap_ci(v, 100, 3) == pytest.approx(stats.bootstrap_ci(v, 100, seed=3), rel=1e-12)
