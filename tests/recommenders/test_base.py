from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.recommenders.base import NO_ITEM, Ranked, top_k_from_scores


def test_ties_at_the_cut_are_broken_by_index():
    # items 3..7 tie at the cut; argpartition alone may pick any of them
    scores = np.array([[5, 9, 1, 4, 4, 4, 4, 4, 0, 2]], dtype=float)
    ranked = top_k_from_scores(scores, 4)
    assert ranked.items.tolist() == [[1, 0, 3, 4]]
    assert ranked.scores.tolist() == [[9, 5, 4, 4]]


def test_excluded_items_never_appear_and_short_lists_are_padded():
    ranked = top_k_from_scores(np.array([[3.0, 2.0, 1.0]]), 5, exclude=[[0]])
    assert ranked.items.tolist() == [[1, 2, NO_ITEM, NO_ITEM, NO_ITEM]]
    assert np.isneginf(ranked.scores[0, 2:]).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 4), min_size=12, max_size=12), min_size=1, max_size=5),
    st.integers(1, 14),
)
def test_top_k_equals_a_full_stable_sort(rows, k):
    # few distinct values, so ties are everywhere
    scores = np.array(rows, dtype=float)
    ranked = top_k_from_scores(scores, k)
    for u, row in enumerate(scores):
        expected = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        assert ranked.items[u, : len(expected)].tolist() == expected


def test_concat_pads_to_the_longest():
    a = Ranked(np.array([[1, 2]]), np.array([[2.0, 1.0]]))
    b = Ranked(np.array([[3]]), np.array([[1.0]]))
    c = Ranked.concat([a, b])
    assert c.items.tolist() == [[1, 2], [3, NO_ITEM]]
