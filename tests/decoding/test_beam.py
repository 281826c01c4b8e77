"""Batched constrained beam search on the tiny model: validity, exclusion, agreement."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.decoding import BeamStats, Decoder, Trie, beam_search, hf_beam_topk, score_items
from genrec.errors import GenrecError
from genrec.recommenders.base import NO_ITEM


def test_k_distinct_valid_items_never_excluded(tiny, codec, trie, prompts):
    ps, histories = prompts
    out = beam_search(tiny.model, trie, ps, k=8, beams=10, exclude=histories, batch_size=3)
    assert out.items.shape == (len(ps), 8)
    for u, h in enumerate(histories):
        row = out.items[u]
        assert (row >= 0).all() and (row < len(codec)).all()
        assert len(set(row.tolist())) == 8
        assert not set(row.tolist()) & set(h)
        assert (np.diff(out.scores[u]) <= 1e-9).all()  # best first


def test_scores_are_model_log_probabilities(tiny, codec, trie, prompts):
    ps, histories = prompts
    out = beam_search(tiny.model, trie, ps, k=5, beams=5, exclude=histories)
    for u, p in enumerate(ps):
        brute = score_items(tiny.model, codec, p, out.items[u])
        np.testing.assert_allclose(out.scores[u], brute, atol=1e-3)


def test_wide_beam_equals_brute_force(tiny, codec, trie, prompts):
    # with at least as many beams as items no live path is ever dropped: the search is exact
    ps, histories = prompts
    out = beam_search(tiny.model, trie, ps, k=10, beams=len(codec), exclude=histories, batch_size=4)
    for u, p in enumerate(ps):
        s = score_items(tiny.model, codec, p)
        s[histories[u]] = -np.inf
        best = np.argsort(-s, kind="stable")[:10]
        np.testing.assert_allclose(out.scores[u], s[best], atol=1e-3)
        assert set(out.items[u].tolist()) == set(best.tolist()) or np.isclose(s[best][-1], s[best][-2], atol=1e-3)


def test_same_result_alone_or_batched(tiny, trie, prompts):
    # left padding, masks and positions: a prompt decodes the same in any batch
    ps, histories = prompts
    alone = [beam_search(tiny.model, trie, [p], k=6, beams=8, exclude=[h]) for p, h in zip(ps, histories, strict=True)]
    together = beam_search(tiny.model, trie, ps, k=6, beams=8, exclude=histories, batch_size=len(ps))
    for u, a in enumerate(alone):
        assert a.items[0].tolist() == together.items[u].tolist()
        np.testing.assert_allclose(a.scores[0], together.scores[u], atol=1e-4)


def test_agrees_with_hugging_face_beam_search(tiny, trie, prompts):
    ps, histories = prompts[0][:2], prompts[1][:2]
    hf = hf_beam_topk(tiny.model, trie, ps, k=10, beams=10, exclude=histories)
    # with Hugging Face's selection rule the batched, prompt-shared search is the same search
    same = beam_search(tiny.model, trie, ps, k=10, beams=10, exclude=histories, hf_compatible=True)
    assert same.items.tolist() == hf.items.tolist()
    np.testing.assert_allclose(same.scores, hf.scores, atol=1e-3)
    # by default every finished item is kept: the list may be better than Hugging Face's, here it is not worse
    ours = beam_search(tiny.model, trie, ps, k=10, beams=10, exclude=histories)
    for u in range(len(ps)):
        assert ours.scores[u].sum() >= hf.scores[u].sum() - 1e-3
        if np.allclose(ours.scores[u], hf.scores[u], atol=1e-3):
            assert ours.items[u].tolist() == hf.items[u].tolist()


def test_shared_prefix_equals_plain_cache(tiny, trie, prompts):
    ps, histories = prompts
    shared = beam_search(tiny.model, trie, ps, k=6, beams=8, exclude=histories, batch_size=3, shared_prefix=True)
    plain = beam_search(tiny.model, trie, ps, k=6, beams=8, exclude=histories, batch_size=3, shared_prefix=False)
    assert shared.items.tolist() == plain.items.tolist()
    np.testing.assert_allclose(shared.scores, plain.scores, atol=1e-4)
    assert tiny.model.config._attn_implementation != "genrec_shared_prefix"  # restored after the search


def test_beam_width_below_k_is_an_error(tiny, trie, prompts):
    with pytest.raises(GenrecError, match="beam width 3 must be at least k"):
        beam_search(tiny.model, trie, prompts[0], k=5, beams=3)


def test_few_items_left_gives_no_item_slots(tiny, codec, prompts):
    t = Trie.build(codec)
    t.remove(list(range(3, len(codec))))  # three items left, one of them excluded
    out = beam_search(tiny.model, t, prompts[0][:1], k=4, beams=4, exclude=[[1]])
    assert sorted(out.items[0][:2].tolist()) == [0, 2]
    assert out.items[0][2:].tolist() == [NO_ITEM, NO_ITEM] and np.isneginf(out.scores[0][2:]).all()


def test_length_normalised_scores(tiny, codec, trie, prompts):
    ps, _ = prompts
    out = beam_search(tiny.model, trie, ps[:2], k=3, beams=6, length_normalise=True)
    for u in range(2):
        lengths = np.array([len(codec.response_ids(i)) for i in out.items[u]])
        brute = score_items(tiny.model, codec, ps[u], out.items[u]) / lengths
        np.testing.assert_allclose(out.scores[u], brute, atol=1e-3)


def test_stats_and_peft_model(tiny, trie, prompts):
    from peft import LoraConfig, get_peft_model

    ps, histories = prompts
    import copy

    model = get_peft_model(copy.deepcopy(tiny.model), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    st = BeamStats()
    out = beam_search(model, trie, ps, k=4, beams=4, exclude=histories, stats=st)
    base = beam_search(tiny.model, trie, ps, k=4, beams=4, exclude=histories)
    # LoRA's B starts at zero: the wrapped model decodes exactly as the base
    assert out.items.tolist() == base.items.tolist()
    assert st.users == len(ps) and st.steps > 0 and st.beam_tokens > 0


def test_decoder_facade(tiny, codec, prompts):
    ps, histories = prompts
    dec = Decoder(tiny.model, codec, mode="beam", beams=5)
    out = dec.topk(ps, 5, histories)
    assert out.items.shape == (len(ps), 5) and dec.last_stats["users"] == len(ps)
    with pytest.raises(GenrecError, match="unknown decoding mode"):
        Decoder(tiny.model, codec, mode="greedy")
