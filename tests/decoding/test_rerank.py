"""Rerank decoding (the assistant proposes, the model scores), checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.decoding import Decoder, DecodingConfig, RerankStats, Trie, rerank_topk, score_items
from genrec.errors import ConfigError, GenrecError


def assistant(n_users: int, n_items: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(n_items, 0.3), size=n_users)


def brute(tiny, codec, prompt, weights, exclude, depth, w, dead=()):
    """Every item scored by the model; the assistant's top `depth` allowed items with
    mass, ranked by the fused score (ties: lower index), as (items, scores)."""
    allowed = np.ones(len(codec), dtype=bool)
    allowed[list(exclude)] = False
    allowed[list(dead)] = False
    eligible = [i for i in np.lexsort((np.arange(len(codec)), -weights)) if allowed[i] and weights[i] > 0][:depth]
    lm = score_items(tiny.model, codec, prompt)
    fused = [(1 - w) * lm[i] + w * (np.log(weights[i]) - np.log(weights[allowed].sum())) for i in eligible]
    order = sorted(range(len(eligible)), key=lambda j: (-fused[j], eligible[j]))
    return [eligible[j] for j in order], [fused[j] for j in order]


@pytest.mark.parametrize("w", [0.0, 0.4, 1.0])
def test_rerank_equals_brute_force(tiny, codec, trie, prompts, w):
    ps, histories = prompts
    weights = assistant(len(ps), len(codec))
    st = RerankStats()
    out = rerank_topk(tiny.model, codec, trie, ps, k=6, assist=weights, depth=9, weight=w, exclude=histories, stats=st)
    for u, p in enumerate(ps):
        items, scores = brute(tiny, codec, p, weights[u], histories[u], 9, w)
        assert out.items[u].tolist() == items[:6]
        np.testing.assert_allclose(out.scores[u], scores[:6], atol=1e-6)
    # the model scores every candidate unless the assistant alone decides (w = 1)
    assert st.users == len(ps) and st.scored == (0 if w == 1.0 else 9 * len(ps)) and st.short == 0


def test_assistant_alone_is_the_assistants_own_order(tiny, codec, trie, prompts):
    ps, histories = prompts
    weights = assistant(len(ps), len(codec), seed=1)
    out = rerank_topk(tiny.model, codec, trie, ps, k=8, assist=weights, depth=20, weight=1.0, exclude=histories)
    for u in range(len(ps)):
        p = weights[u].copy()
        p[histories[u]] = -1
        assert out.items[u].tolist() == np.argsort(-p, kind="stable")[:8].tolist()


def test_removed_excluded_and_massless_items_are_never_candidates(tiny, codec, prompts):
    ps, histories = prompts
    trie = Trie.build(codec)
    weights = assistant(len(ps), len(codec), seed=2)
    top = int(np.argmax(np.where(np.isin(np.arange(len(codec)), histories[0]), -1, weights[0])))
    trie.remove([top])
    weights[0, :20] = 0.0  # no mass: the assistant does not propose these
    st = RerankStats()
    out = rerank_topk(tiny.model, codec, trie, ps[:1], k=5, assist=weights[:1], depth=30, weight=0.5,
                      exclude=histories[:1], stats=st)
    items, scores = brute(tiny, codec, ps[0], weights[0], histories[0], 30, 0.5, dead=[top])
    assert out.items[0].tolist() == items[:5]
    np.testing.assert_allclose(out.scores[0], scores[:5], atol=1e-6)
    assert top not in items and not set(items) & set(range(20)) and not set(items) & set(histories[0])
    assert st.short == 1  # fewer than 30 items are left to propose


def test_decoder_in_rerank_mode(tiny, codec, trie, prompts):
    ps, histories = prompts
    weights = assistant(len(ps), len(codec), seed=3)
    dec = Decoder(tiny.model, codec, trie, DecodingConfig(mode="rerank", assist="popularity", assist_weight=0.5, rerank_depth=12))
    out = dec.topk(ps, 10, histories, assist=weights)
    direct = rerank_topk(tiny.model, codec, trie, ps, 10, weights, depth=12, weight=0.5, exclude=histories)
    assert out.items.tolist() == direct.items.tolist() and dec.last_stats["scored"] == 12 * len(ps)
    with pytest.raises(GenrecError, match="no item distributions"):
        dec.topk(ps, 10, histories)
    with pytest.raises(GenrecError, match="rerank depth 12 must be at least k"):
        dec.topk(ps, 13, histories, assist=weights)


def test_rerank_settings_are_checked():
    with pytest.raises(ConfigError, match="no assistant is named"):
        DecodingConfig(mode="rerank")
    with pytest.raises(ConfigError, match="renormalise"):
        DecodingConfig(mode="rerank", assist="popularity", renormalise=True)
    with pytest.raises(ConfigError, match="rerank_depth"):
        DecodingConfig(mode="rerank", assist="popularity", rerank_depth=0)
    config = DecodingConfig(mode="rerank", assist="last-item", assist_weight=0.9, rerank_depth=20)
    assert config.describe()["rerank_depth"] == 20 and "rerank_depth" not in DecodingConfig().describe()
    # a weight is chosen per mode: switching between beam and rerank leaves it to the run's stored one
    assert config.with_mode("beam").assist_weight is None and config.with_mode("beam").assist == "last-item"
    assert config.with_mode("exact").assist is None
