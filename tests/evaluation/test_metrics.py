"""Metrics pinned against hand-computed cases, and their general invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.errors import GenrecError
from genrec.evaluation.metrics import (
    DuplicateItemsError,
    bootstrap_ci,
    compute_metrics,
    coverage,
    drop_duplicates,
    mcnemar_exact,
    paired_comparison,
    per_user,
    popularity_bias,
    popularity_percentile,
    rename_legacy_mrr,
)
from genrec.recommenders.base import INVALID, NO_ITEM

# user 0: hit at rank 1; user 1: hit at rank 3; user 2: empty list; user 3: INVALID, hit at 2
ITEMS = np.array([[5, 3, 9], [1, 2, 3], [NO_ITEM, NO_ITEM, NO_ITEM], [INVALID, 4, NO_ITEM]])
TARGETS = np.array([5, 3, 7, 4])


def test_hand_computed_case():
    m = compute_metrics(ITEMS, TARGETS, n_items=10, popularity=np.arange(10), k_max=5, coverage_k=3)
    assert m["n_users"] == 4
    assert m["hr@1"] == pytest.approx(1 / 4)
    assert m["ndcg@1"] == pytest.approx(1 / 4)
    assert m["hr@5"] == pytest.approx(3 / 4)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4) + 0 + 1 / math.log2(3)) / 4)
    assert m["curves"]["hr"] == pytest.approx([1 / 4, 2 / 4, 3 / 4, 3 / 4, 3 / 4])
    assert m["curves"]["ndcg"][1] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    # MRR carries its cut-off: lists ranked to 5 report mrr@5, and no mrr@10
    assert m["mrr@5"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert "mrr" not in m and "mrr@10" not in m
    # 7 catalogue slots, 1 INVALID; NO_ITEM slots do not count
    assert m["valid_rate"] == pytest.approx(7 / 8)
    assert m["coverage@3"] == pytest.approx(6 / 10)
    # ARP: per-user mean count of filled slots, users with no item left out
    assert m["arp@3"] == pytest.approx((17 / 3 + 2 + 4) / 3)
    assert "hr@10" not in m  # K beyond k_max is not reported
    for name in ("hr@1", "hr@5", "ndcg@5", "mrr@5", "valid_rate"):
        lo, hi = m["ci"][name]
        assert lo <= m[name] <= hi


def test_no_hit_and_empty_lists_score_zero():
    m = compute_metrics(np.array([[1, 2], [NO_ITEM, NO_ITEM]]), np.array([0, 0]), n_items=3, k_max=2)
    assert m["hr@1"] == m["ndcg@1"] == m["mrr@2"] == 0.0
    assert m["valid_rate"] == 1.0
    only_empty = compute_metrics(np.full((2, 3), NO_ITEM), np.array([0, 1]), n_items=3, k_max=3)
    assert math.isnan(only_empty["valid_rate"])  # nothing returned: undefined, not 1
    assert only_empty["coverage@10"] == 0.0


def test_mrr_is_reported_at_10_and_at_the_list_length():
    # targets at ranks 1, 3, 12 and absent from 20-long lists
    items = np.tile(np.arange(20), (4, 1))
    m = compute_metrics(items, np.array([0, 2, 11, 25]), n_items=30, k_max=20, n_resamples=50)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 3 + 1 / 12 + 0) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 4)  # rank 12 is beyond the first 10
    assert {"mrr@10", "mrr@20"} <= set(m["ci"]) and "mrr" not in m
    # a 10-long list has one MRR, named by its cut-off
    ten = compute_metrics(items[:, :10], np.array([0, 2, 11, 25]), n_items=30, k_max=10, n_resamples=50)
    assert ten["mrr@10"] == m["mrr@10"] and "mrr@20" not in ten


def test_legacy_mrr_is_read_as_mrr_at_its_k_max():
    old = {"mrr": 0.2, "ci": {"mrr": [0.1, 0.3], "hr@10": [0, 1]}, "settings": {"k_max": 20},
           "cold_start": {"cold": {"n_users": 2, "mrr": 0.5, "ci": {"mrr": [0.4, 0.6]}}, "cold_items": 3}}
    new = rename_legacy_mrr(old)
    assert new["mrr@20"] == 0.2 and "mrr" not in new and new["ci"] == {"mrr@20": [0.1, 0.3], "hr@10": [0, 1]}
    assert new["cold_start"]["cold"]["mrr@20"] == 0.5 and new["cold_start"]["cold"]["ci"] == {"mrr@20": [0.4, 0.6]}
    assert old["mrr"] == 0.2  # the input is left alone
    # k_max from the curves when settings do not say; nothing to go on: left as it is
    assert rename_legacy_mrr({"mrr": 0.1, "k": [1, 2, 3]}) == {"mrr@3": 0.1, "k": [1, 2, 3]}
    assert rename_legacy_mrr({"mrr": 0.1}) == {"mrr": 0.1}


def test_all_invalid_gives_zero_valid_rate():
    m = compute_metrics(np.full((2, 3), INVALID), np.array([0, 1]), n_items=3, k_max=3)
    assert m["valid_rate"] == 0.0 and m["hr@1"] == 0.0


def test_duplicates_are_rejected_and_can_be_dropped():
    with pytest.raises(DuplicateItemsError, match="item 1 more than once"):
        per_user(np.array([[0, 2], [1, 1]]), np.array([0, 1]))
    # repeated markers are fine
    per_user(np.array([[INVALID, INVALID, NO_ITEM, NO_ITEM]]), np.array([0]))
    items, scores = drop_duplicates(np.array([[1, 1, 2, 1]]), np.array([[3.0, 2.0, 1.0, 0.5]]))
    assert items.tolist() == [[1, NO_ITEM, 2, NO_ITEM]]
    assert scores[0, 1] == -np.inf and scores[0, 2] == 1.0


def test_out_of_catalogue_indices_are_rejected():
    with pytest.raises(GenrecError, match="neither a catalogue index"):
        per_user(np.array([[0, 10]]), np.array([0]), n_items=10)
    with pytest.raises(GenrecError, match="neither a catalogue index"):
        per_user(np.array([[-3]]), np.array([0]))


def test_popularity_percentile_uses_mid_ranks():
    assert popularity_percentile(np.array([0, 5, 5, 10])).tolist() == [0.0, 0.5, 0.5, 1.0]
    bias = popularity_bias(np.array([[3, 0], [1, NO_ITEM]]), np.array([0, 5, 5, 10]), k=2)
    assert bias["pop_percentile@2"] == pytest.approx(((1.0 + 0.0) / 2 + 0.5) / 2)
    assert bias["arp@2"] == pytest.approx((5 + 5) / 2)


def test_coverage_counts_distinct_items_in_top_k():
    assert coverage(np.array([[0, 1, 5], [1, 0, 6], [2, NO_ITEM, 7]]), n_items=10, k=2) == pytest.approx(3 / 10)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    v = np.random.default_rng(1).random(200)
    a = bootstrap_ci(v, 500, seed=7)[0]
    b = bootstrap_ci(v, 500, seed=7)[0]
    c = bootstrap_ci(v, 500, seed=8)[0]
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert a[0] < v.mean() < a[1]
    # about mean ± 1.96 standard errors
    se = v.std() / math.sqrt(200)
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert bootstrap_ci(np.full(50, 0.3), 100)[0] == pytest.approx([0.3, 0.3])


def test_paired_comparison():
    same = paired_comparison(np.array([1, 0, 1, 0.0]), np.array([1, 0, 1, 0.0]))
    assert same["diff"] == 0 and same["p_value"] == 1.0
    better = paired_comparison(np.zeros(50), np.ones(50), n_resamples=1000)
    assert better["diff"] == 1 and better["ci"] == [1.0, 1.0]
    assert better["p_value"] == pytest.approx(1 / 1001)
    rng = np.random.default_rng(0)
    a = (rng.random(300) < 0.3).astype(float)
    noise = paired_comparison(a, a[::-1].copy(), binary=True)
    assert noise["ci"][0] < 0 < noise["ci"][1] and noise["p_value"] > 0.05
    assert set(noise["mcnemar"]) == {"only_first", "only_second", "p_value"}


def test_mcnemar_exact_by_hand():
    a = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    b = np.array([1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
    r = mcnemar_exact(a, b)
    assert (r["only_first"], r["only_second"]) == (1, 6)
    assert r["p_value"] == pytest.approx(2 * (1 + 7) / 2**7)
    assert mcnemar_exact(a, a)["p_value"] == 1.0


@st.composite
def ranked_lists(draw):
    n_items = draw(st.integers(1, 30))
    n_users = draw(st.integers(1, 8))
    k = draw(st.integers(1, 12))
    rows, targets = [], []
    for _ in range(n_users):
        real = draw(st.lists(st.integers(0, n_items - 1), unique=True, max_size=k))
        markers = [draw(st.sampled_from([NO_ITEM, INVALID])) for _ in range(k - len(real))]
        row = real + markers
        rows.append(draw(st.permutations(row)))
        targets.append(draw(st.integers(0, n_items - 1)))
    return np.array(rows, dtype=np.int64).reshape(n_users, k), np.array(targets), n_items, k


@settings(max_examples=150, deadline=None)
@given(ranked_lists())
def test_metric_invariants(case):
    items, targets, n_items, k = case
    m = compute_metrics(items, targets, n_items=n_items, k_max=k, n_resamples=20)
    hr, ndcg = np.array(m["curves"]["hr"]), np.array(m["curves"]["ndcg"])
    assert (np.diff(hr) >= 0).all()  # HR@K never falls as K grows
    assert (np.diff(ndcg) >= -1e-12).all()
    assert ((ndcg >= 0) & (ndcg <= hr + 1e-12)).all()  # 0 <= NDCG <= HR
    assert ndcg[0] == pytest.approx(hr[0])  # at K = 1 they coincide
    # every hit is at rank <= k, so 1/rank lies in [1/k, 1]
    assert hr[-1] / k - 1e-12 <= m[f"mrr@{k}"] <= hr[-1] + 1e-12
    if k >= 10:  # MRR never falls as the cut-off grows
        assert m["mrr@10"] <= m[f"mrr@{k}"] + 1e-12
    assert 0 <= m["coverage@10"] <= 1
    vr = m["valid_rate"]
    assert math.isnan(vr) or 0 <= vr <= 1
