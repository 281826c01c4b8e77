"""Exact top-K (best-first over the trie) against brute-force scoring of every title."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genrec.decoding import ExactStats, Trie, _lm, beam_search, exact_topk, score_items
from genrec.model.encoding import Codec
from genrec.prompts import PromptSpec


def test_score_items_equals_one_full_forward(tiny, codec, prompts):
    # the cached, batched scorer against the plainest computation: prompt + response in one pass
    p = prompts[0][0]
    items = [0, 7, 20, 24]
    got = score_items(tiny.model, codec, p, items, batch_size=3)
    for i, g in zip(items, got, strict=True):
        ids = torch.tensor([p + codec.response_ids(i)])
        with torch.inference_mode():
            logits = tiny.model(input_ids=ids).logits[0].float()
        lp = torch.log_softmax(logits, -1)
        r = codec.response_ids(i)
        expect = sum(lp[len(p) - 1 + j, t].item() for j, t in enumerate(r))
        assert abs(g - expect) < 1e-3


def test_exact_matches_brute_force(tiny, codec, trie, prompts):
    ps, histories = prompts
    stats = ExactStats()
    out = exact_topk(tiny.model, trie, ps, k=6, exclude=histories, batch_size=2, expand=4, stats=stats)
    assert stats.exhausted == [False] * len(ps)
    for u, p in enumerate(ps):
        s = score_items(tiny.model, codec, p)
        s[histories[u]] = -np.inf
        best = np.sort(s)[::-1][:6]
        np.testing.assert_allclose(out.scores[u], best, atol=1e-3)
        np.testing.assert_allclose(s[out.items[u]], out.scores[u], atol=1e-3)


def test_budget_exhaustion_is_flagged(tiny, trie, prompts):
    ps, histories = prompts
    stats = ExactStats()
    out = exact_topk(tiny.model, trie, ps[:2], k=5, exclude=histories[:2], max_expansions=2, stats=stats)
    assert stats.exhausted == [True, True]
    for u in range(2):
        got = [i for i in out.items[u].tolist() if i >= 0]
        assert len(set(got)) == len(got) and not set(got) & set(histories[u])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(30, 200), k=st.integers(1, 8), history=st.integers(1, 6))
def test_exact_is_top_k_and_beam_never_beats_it(tiny, make_titles, seed, n, k, history):
    rng = np.random.default_rng(seed)
    titles = make_titles(rng, n)
    codec = Codec(tiny.tokenizer, titles)
    trie = Trie.build(codec)
    hist = rng.choice(n, size=history, replace=False).tolist()
    prompt = codec.encode(PromptSpec(template="compact", domain="movies").prompt(hist))[0]
    s = score_items(tiny.model, codec, prompt, batch_size=128)
    s[hist] = -np.inf
    brute = np.sort(s)[::-1][:k]

    exact = exact_topk(tiny.model, trie, [prompt], k=k, exclude=[hist], expand=32, max_expansions=100_000)
    np.testing.assert_allclose(exact.scores[0], brute, atol=1e-3)
    np.testing.assert_allclose(s[exact.items[0]], exact.scores[0], atol=1e-3)

    beam = beam_search(tiny.model, trie, [prompt], k=k, beams=max(k, 4), exclude=[hist])
    got = beam.items[0]
    assert len(set(got.tolist())) == k and not set(got.tolist()) & set(hist)
    # beam's list is a list of real items with their true scores, best first, never above exact's
    np.testing.assert_allclose(s[got], beam.scores[0], atol=1e-3)
    assert (np.diff(beam.scores[0]) <= 1e-9).all()
    assert beam.scores[0][-1] <= exact.scores[0][-1] + 1e-3
    assert (beam.scores[0] <= exact.scores[0] + 1e-3).all()


def test_batch_of_mixed_lengths_matches_single(tiny, trie, prompts):
    ps, histories = prompts
    one = exact_topk(tiny.model, trie, ps[2:3], k=4, exclude=histories[2:3])
    many = exact_topk(tiny.model, trie, ps, k=4, exclude=histories, batch_size=4)
    assert one.items[0].tolist() == many.items[2].tolist()
    np.testing.assert_allclose(one.scores[0], many.scores[2], atol=1e-4)
    assert _lm.cache_kwarg(tiny.model) in ("cache", "past_key_values")
