"""Trie: allowed tokens, steps, leaves, updates, errors and size, against a naive dict trie."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.decoding import Trie
from genrec.errors import GenrecError

EOS = 0
V = 12


def naive_allowed(seqs: dict[int, list[int]], prefix: tuple[int, ...]) -> set[int]:
    n = len(prefix)
    return {s[n] for s in seqs.values() if len(s) > n and tuple(s[:n]) == prefix}


SEQS = [[5, 6, EOS], [5, 7, EOS], [5, 6, 8, EOS], [9, EOS], [EOS]]


def test_allowed_step_and_leaves():
    t = Trie.build(SEQS, vocab_size=V, eos_id=EOS)
    assert len(t) == 5 and t.max_depth == 4
    row, tok, child = t.allowed([0])
    assert row.tolist() == [0, 0, 0] and tok.tolist() == [EOS, 5, 9]
    n5 = t.step([0], [5])[0]
    n56 = t.step([n5], [6])[0]
    assert set(t.allowed([n56])[1].tolist()) == {EOS, 8}
    assert t.step([0, n5, n5], [7, 7, 9]).tolist()[2] == -1  # absent edge
    leaves = [t.walk(s) for s in SEQS]
    assert t.item_at(leaves).tolist() == [0, 1, 2, 3, 4]
    assert t.item_at([0, n5]).tolist() == [-1, -1]  # internal nodes are not items
    assert all(t.contains(s) for s in SEQS)
    assert not t.contains([5, EOS]) and not t.contains([5, 6]) and not t.contains([3, EOS])
    assert [t.item_tokens(i) for i in range(5)] == SEQS


def test_batch_of_nodes_and_mask():
    t = Trie.build(SEQS, vocab_size=V, eos_id=EOS)
    n5 = int(t.step([0], [5])[0])
    row, tok, _ = t.allowed([n5, 0, n5])
    assert row.tolist() == [0, 0, 1, 1, 1, 2, 2]
    mask = t.allowed_mask(torch.tensor([n5, 0]))
    assert mask.shape == (2, V) and mask.dtype == torch.bool
    assert mask[0].nonzero().flatten().tolist() == [6, 7]
    assert mask[1].nonzero().flatten().tolist() == [EOS, 5, 9]


def test_remove_and_add():
    t = Trie.build(SEQS, vocab_size=V, eos_id=EOS)
    n5 = int(t.step([0], [5])[0])
    t.remove([1])  # [5, 7, EOS]
    assert len(t) == 4 and not t.contains(SEQS[1])
    assert t.allowed([n5])[1].tolist() == [6]
    assert t.step([n5], [7])[0] == -1  # a dead edge is never offered nor followed
    t.remove([3, 4])
    assert t.allowed([0])[1].tolist() == [5]
    t.remove([3])  # removing twice is harmless
    assert len(t) == 2
    new = t.add([[3, 3, EOS], [5, 7, EOS]])
    assert new.tolist() == [5, 6] and len(t) == 4
    assert t.contains([3, 3, EOS]) and t.contains([5, 7, EOS])
    assert t.item_at([t.walk([5, 7, EOS])]).tolist() == [6]  # a revived leaf maps to its new item
    assert t.allowed([0])[1].tolist() == [3, 5]  # the pending buffer is ordered with the main arrays
    t.compact()
    assert t.allowed([0])[1].tolist() == [3, 5] and t.contains([3, 3, EOS])
    with pytest.raises(GenrecError, match="equal live items"):
        t.add([[3, 3, EOS]])
    with pytest.raises(GenrecError, match="already in the trie"):
        t.add([[4, EOS]], items=[0])


def test_errors():
    with pytest.raises(GenrecError, match="identical token ids"):
        Trie.build([[1, 2, EOS], [3, EOS], [1, 2, EOS]], vocab_size=V, eos_id=EOS)
    with pytest.raises(GenrecError, match="does not end with EOS"):
        Trie.build([[1, 2]], vocab_size=V, eos_id=EOS)
    with pytest.raises(GenrecError, match="contains EOS before its end"):
        Trie.build([[1, EOS, 2, EOS]], vocab_size=V, eos_id=EOS)
    with pytest.raises(GenrecError, match="token ids must lie"):
        Trie.build([[99, EOS]], vocab_size=V, eos_id=EOS)


def test_codec_duplicates_rejected(tiny):
    from genrec.model.encoding import Codec

    codec = Codec(tiny.tokenizer, ["Heat (1995)", "Fargo (1996)", "Heat (1995)"])
    with pytest.raises(GenrecError, match=r"items \[\(0, 2\)\]"):
        Trie.build(codec)


def test_codec_trie_matches_response_ids(codec, trie):
    assert len(trie) == len(codec)
    for i in range(len(codec)):
        ids = codec.response_ids(i)
        assert trie.contains(ids)
        assert trie.item_at([trie.walk(ids)]).tolist() == [i]


def test_bytes_per_title():
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 1000, int(rng.integers(3, 15)))) + [EOS] for _ in range(20000)]
    t = Trie.build(seqs, vocab_size=1000, eos_id=EOS)
    assert t.nbytes > 0
    # about 20 bytes per node plus ~20 per item; random sequences share little
    assert t.bytes_per_item() == pytest.approx(t.nbytes / 20000)
    assert t.bytes_per_item() < 30 * (t.n_nodes / 20000) + 40


seq_strategy = st.lists(st.integers(1, V - 1), min_size=0, max_size=5).map(lambda s: tuple(s) + (EOS,))


@settings(max_examples=60, deadline=None)
@given(
    initial=st.lists(seq_strategy, min_size=1, max_size=25, unique=True),
    extra=st.lists(seq_strategy, min_size=0, max_size=10, unique=True),
    drop=st.lists(st.integers(0, 24), max_size=10),
)
def test_matches_naive_trie_under_updates(initial, extra, drop):
    t = Trie.build([list(s) for s in initial], vocab_size=V, eos_id=EOS)
    live = {i: list(s) for i, s in enumerate(initial)}
    t.remove([d for d in drop if d < len(initial)])
    for d in drop:
        live.pop(d, None)
    fresh = [s for s in extra if list(s) not in live.values()]
    ids = t.add([list(s) for s in fresh])
    live.update({int(i): list(s) for i, s in zip(ids, fresh, strict=True)})
    assert len(t) == len(live)
    prefixes = {tuple(s[:n]) for s in list(initial) + list(extra) for n in range(len(s) + 1)}
    for p in prefixes:
        node = t.walk(p)
        expect = naive_allowed(live, p)
        if node < 0:
            assert not expect
            continue
        assert set(t.allowed([node])[1].tolist()) == expect
    for i, s in live.items():
        assert t.item_at([t.walk(s)]).tolist() == [i]


def test_exclusion_overlay():
    t = Trie.build(SEQS, vocab_size=V, eos_id=EOS)  # items: 56, 57, 568, 9, (empty)
    overlay = t.exclusion([[0, 2], [3], []])
    n5, n9 = int(t.step([0], [5])[0]), int(t.step([0], [9])[0])
    n56 = int(t.step([n5], [6])[0])
    # group 0 excluded 5-6 and 5-6-8: the whole 5-6 subtree is blocked, 5 (still holds 5-7) is not
    assert t.blocked([0, 0, 0], [n56, n5, n9], overlay).tolist() == [True, False, False]
    # group 1 excluded 9: its subtree is blocked for group 1 only
    assert t.blocked([1, 2], [n9, n9], overlay).tolist() == [True, False]
    t.remove([1])  # 5-7 gone: for group 0 nothing live is left under 5
    assert t.blocked([0], [n5], t.exclusion([[0, 2]])).tolist() == [True]


def test_identical_tokens_suggest_the_id_suffix_not_the_year():
    # "Heat (1995)" twice in different spellings the tokenizer merges: both have the year already
    with pytest.raises(GenrecError) as e:
        Trie.build([[1, 2, EOS], [1, 2, EOS]], vocab_size=V, eos_id=EOS)
    assert "[id]" in e.value.fix and "year" not in e.value.fix
