"""Free decoding (the paper's): exact-match mapping, BM25, embedding and BIGRec grounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.decoding import Decoder, FreeDecoder
from genrec.decoding import free as free_mod
from genrec.errors import GenrecError
from genrec.recommenders.base import INVALID, NO_ITEM


@pytest.fixture
def fake_generate(codec, monkeypatch):
    """Beams that write: an exact title, a misspelt title, junk, an excluded title, a repeat."""
    texts = ["Blade Runner (1982)", "Blad Runer (1982)", "qwzx", "Heat (1995)", "Blade Runner (1982)"]

    def gen(model, prompt, beams, k, max_new_tokens, eos_id, pad_id, length_penalty, allowed_fn=None):
        seqs = [codec.encode_names([t])[0] + [eos_id] for t in texts][:k]
        return seqs, -np.arange(1.0, len(seqs) + 1)

    monkeypatch.setattr(free_mod, "_generate", gen)
    return texts


def test_exact_match_mode(tiny, codec, prompts, fake_generate):
    heat = codec.names.index("Heat (1995)")
    dec = FreeDecoder(tiny.model, codec, beams=5, grounding="exact")
    out = dec.topk(prompts[0][:1], 5, exclude=[[heat]])
    blade = codec.names.index("Blade Runner (1982)")
    assert out.items[0].tolist() == [blade, INVALID, INVALID, NO_ITEM, NO_ITEM]
    assert dec.last_stats == {"outputs": 5, "not_in_catalogue": 2, "invalid_share": 0.4}
    assert dec.last_texts[0][1] == "Blad Runer (1982)"


@pytest.mark.parametrize("grounding", ["bm25", "embedding"])
def test_grounding_fills_distinct_items(tiny, codec, prompts, fake_generate, grounding):
    heat = codec.names.index("Heat (1995)")
    blade = codec.names.index("Blade Runner (1982)")
    dec = FreeDecoder(tiny.model, codec, beams=5, grounding=grounding)
    out = dec.topk(prompts[0][:1], 5, exclude=[[heat]])
    row = [i for i in out.items[0].tolist() if i != NO_ITEM]
    assert row[0] == blade  # an exact title is its own nearest item
    assert len(set(row)) == len(row) and heat not in row and all(0 <= i < len(codec) for i in row)
    if grounding == "bm25":
        assert len(row) >= 2  # the misspelt title still shares a word ("1982") with catalogue titles
    else:
        assert len(row) == 5  # every output has a nearest embedding


def test_real_generation_and_facade(tiny, codec, prompts):
    ps, histories = prompts
    dec = Decoder(tiny.model, codec, mode="free", beams=3)
    out = dec.topk(ps[:1], 3, histories[:1])
    assert out.items.shape == (1, 3)
    assert 0.0 <= dec.last_stats["invalid_share"] <= 1.0
    assert all(i == INVALID or i == NO_ITEM or 0 <= i < len(codec) for i in out.items[0])
    with pytest.raises(GenrecError, match="beam width 3 must be at least k"):
        dec.topk(ps[:1], 4)


def test_generated_text_is_matched_as_the_catalogue_cleans_titles(tiny, codec, prompts, monkeypatch):
    """A title written with an HTML entity or stray whitespace is still that title (the
    catalogue's clean_title, not a bare strip)."""
    texts = ["Blade  Runner\t(1982) ", "Heat&#32;(1995)", "Heat (1995)"]

    def gen(model, prompt, beams, k, max_new_tokens, eos_id, pad_id, length_penalty, allowed_fn=None):
        seqs = [codec.encode_names([t])[0] + [eos_id] for t in texts][:k]
        return seqs, -np.arange(1.0, len(seqs) + 1)

    monkeypatch.setattr(free_mod, "_generate", gen)
    out = FreeDecoder(tiny.model, codec, beams=3, grounding="exact").topk(prompts[0][:1], 3)
    blade, heat = codec.names.index("Blade Runner (1982)"), codec.names.index("Heat (1995)")
    assert out.items[0].tolist() == [blade, heat, NO_ITEM]  # the third is the second again


def test_bigrec_ranks_the_catalogue_by_distance_to_the_best_output(tiny, codec, prompts, fake_generate):
    from genrec.decoding.free import bigrec_scores

    blade, heat = codec.names.index("Blade Runner (1982)"), codec.names.index("Heat (1995)")
    dec = FreeDecoder(tiny.model, codec, beams=2, grounding="bigrec")
    out = dec.topk(prompts[0][:1], 12, exclude=[[heat]])  # k beyond the beams: the whole catalogue is ranked
    d = dec.bigrec_distances([codec.encode_names(["Blade Runner (1982)"])[0]])[0]
    assert d.min() == 0 and d.max() == 1 and d[blade] == 0  # min-max normalised; the output is a title itself
    order = [int(i) for i in np.lexsort((np.arange(d.size), d)) if i != heat]
    assert out.items[0].tolist() == order[:12]
    np.testing.assert_allclose(out.scores[0], -d[order[:12]])
    assert dec.last_texts == [["Blade Runner (1982)"]] and dec.last_stats["invalid_share"] == 0.0
    # an assistant's probabilities tilt the distances: (1 + P)^-gamma * D, P min-max normalised
    assist = np.random.default_rng(0).dirichlet(np.full(len(codec), 0.5), size=1)
    assist[0, [blade, heat]] = 0.0
    favourite = int(np.argmax(assist[0]))
    tilted = dec.topk(prompts[0][:1], 12, exclude=[[heat]], assist=assist, ground_weight=3.0)
    p = (assist[0] - assist[0].min()) / (assist[0].max() - assist[0].min())
    s = (1 + p) ** -3.0 * d
    np.testing.assert_allclose(bigrec_scores(d[None], assist, 3.0)[0], s)
    assert tilted.items[0].tolist() == [int(i) for i in np.lexsort((np.arange(s.size), s)) if i != heat][:12]
    # a large gamma brings the assistant's favourite right after the output itself (D = 0 stays first)
    assert dec.topk(prompts[0][:1], 2, exclude=[[heat]], assist=assist, ground_weight=200.0).items[0].tolist() == [blade, favourite]
    with pytest.raises(GenrecError, match="none were given"):
        dec.topk(prompts[0][:1], 3, ground_weight=1.0)


def test_bigrec_settings_are_checked():
    from genrec.decoding import DecodingConfig
    from genrec.errors import ConfigError

    config = DecodingConfig(mode="free", grounding="bigrec", assist="popularity", ground_weight=2.0)
    assert config.uses_assistant and config.describe()["ground_weight"] == 2.0 and "assist_weight" not in config.describe()
    assert not DecodingConfig(mode="free", grounding="bigrec", assist="popularity", ground_weight=0.0).uses_assistant
    for bad, message in [
        (dict(mode="free", grounding="embedding", assist="popularity"), "bigrec grounding"),
        (dict(mode="free", grounding="bigrec", assist="popularity", assist_weight=0.5), "ground_weight"),
        (dict(ground_weight=1.0), "grounding=bigrec"),
        (dict(mode="free", grounding="bigrec", ground_weight=1.0), "assist=popularity"),
        (dict(mode="free", grounding="bigrec", assist="popularity", ground_weight=-1.0), "ground_weight"),
    ]:
        with pytest.raises(ConfigError, match=message):
            DecodingConfig(**bad)
    # switching modes leaves the assistant where bigrec grounding keeps it, and drops gamma elsewhere
    assert config.with_mode("beam").ground_weight is None and config.with_mode("beam").assist == "popularity"
    assert DecodingConfig(mode="beam", assist="popularity", grounding="bigrec").with_mode("free").assist == "popularity"


def test_embeddings_come_back_in_the_given_order(tiny, codec):
    # batched by length (little padding), returned in order: each row as if embedded alone
    dec = FreeDecoder(tiny.model, codec, grounding="embedding", embed_batch=3)
    lists = [codec.item_tokens[i] for i in (20, 2, 30, 11, 0, 28, 7)]
    together = dec._embed(lists)
    for row, tokens in zip(together, lists, strict=True):
        torch.testing.assert_close(row, dec._embed([tokens])[0], atol=1e-5, rtol=1e-5)
