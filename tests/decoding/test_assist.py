"""A text-free assistant fused into the batched beam search (D3), checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.decoding import Decoder, Trie, beam_search, score_items
from genrec.errors import GenrecError


def assistant(n_users: int, n_items: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n_items, 0.3), size=n_users)
    return p


def brute(tiny, codec, prompt, weights, exclude, w):
    lm = score_items(tiny.model, codec, prompt)
    p = weights.copy()
    p[exclude] = 0.0
    with np.errstate(divide="ignore"):
        s = (1 - w) * lm + w * (np.log(p) - np.log(p.sum()))
    s[exclude] = -np.inf
    return s


@pytest.mark.parametrize("w", [0.3, 0.7, 1.0])
def test_wide_assisted_search_equals_brute_force(tiny, codec, trie, prompts, w):
    ps, histories = prompts
    weights = assistant(len(ps), len(codec))
    out = beam_search(tiny.model, trie, ps, k=10, beams=len(codec), exclude=histories, batch_size=3,
                      assist=weights, assist_weight=w)
    for u, p in enumerate(ps):
        s = brute(tiny, codec, p, weights[u], histories[u], w)
        best = np.argsort(-s, kind="stable")[:10]
        np.testing.assert_allclose(out.scores[u], s[best], atol=1e-3)
        assert set(out.items[u].tolist()) == set(best.tolist())


def test_assistant_alone_ranks_as_the_assistant(tiny, codec, trie, prompts):
    ps, histories = prompts
    weights = assistant(len(ps), len(codec), seed=1)
    wide = beam_search(tiny.model, trie, ps, k=8, beams=len(codec), exclude=histories, assist=weights, assist_weight=1.0)
    narrow = beam_search(tiny.model, trie, ps, k=8, beams=8, exclude=histories, assist=weights, assist_weight=1.0)
    for u in range(len(ps)):
        p = weights[u].copy()
        p[histories[u]] = 0
        assert wide.items[u].tolist() == np.argsort(-p, kind="stable")[:8].tolist()
        # a narrow beam may miss an item whose prefix holds little mass, but every score it
        # returns is the assistant's renormalised log-probability of that item
        np.testing.assert_allclose(narrow.scores[u], np.log(p[narrow.items[u]] / p.sum()), atol=1e-9)


def test_weight_zero_is_the_plain_search(tiny, codec, trie, prompts):
    ps, histories = prompts
    plain = beam_search(tiny.model, trie, ps, k=6, beams=8, exclude=histories)
    fused = beam_search(tiny.model, trie, ps, k=6, beams=8, exclude=histories, assist=assistant(len(ps), len(codec)), assist_weight=0.0)
    assert plain.items.tolist() == fused.items.tolist()
    np.testing.assert_allclose(plain.scores, fused.scores)


def test_removed_items_carry_no_assistant_mass(tiny, codec, prompts):
    ps, histories = prompts
    trie = Trie.build(codec)
    weights = assistant(len(ps), len(codec), seed=2)
    top = int(np.argmax(weights[0] * ~np.isin(np.arange(len(codec)), histories[0])))
    trie.remove([top])
    out = beam_search(tiny.model, trie, ps[:1], k=5, beams=len(codec), exclude=histories[:1], assist=weights[:1], assist_weight=1.0)
    assert top not in out.items[0].tolist()
    mass = trie.node_mass(weights[:1])
    live = weights[0].copy()
    live[top] = 0
    np.testing.assert_allclose(mass[0, 0], live.sum())  # the root holds every live item's weight


def test_bad_assistant_input_is_refused(tiny, codec, trie, prompts):
    ps, histories = prompts
    with pytest.raises(GenrecError, match="shape"):
        beam_search(tiny.model, trie, ps, k=5, beams=5, assist=np.ones((1, 3)), assist_weight=0.5)
    with pytest.raises(GenrecError, match="outside"):
        beam_search(tiny.model, trie, ps, k=5, beams=5, assist=assistant(len(ps), len(codec)), assist_weight=1.5)
    with pytest.raises(GenrecError, match="used in beam and rerank decoding"):
        Decoder(tiny.model, codec, trie, mode="exact", assist="popularity", assist_weight=0.5)
    with pytest.raises(GenrecError, match="no assistant is"):
        Decoder(tiny.model, codec, trie, assist_weight=0.5)
    with pytest.raises(GenrecError, match="no item distributions"):
        Decoder(tiny.model, codec, trie, assist="popularity", assist_weight=0.5).topk(ps, 5, histories)
