"""Free decoding (the paper's): exact-match mapping, BM25 and embedding grounding."""

from __future__ import annotations

import numpy as np
import pytest

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
