"""The one decoding config: validation, derivation, and one decoder per config."""

import pytest
from pydantic import ValidationError

from genrec.decoding import Decoder, DecodingConfig
from genrec.errors import ConfigError, GenrecError


def test_defaults_and_changes_are_validated_together():
    c = DecodingConfig()
    assert (c.mode, c.beams, c.assist, c.fused_weight) == ("beam", 10, None, 0.0)
    d = DecodingConfig.of(c, beams=20, assist="sasrec", assist_weight=0.5, grounding=None)
    assert (d.beams, d.assist, d.fused_weight, d.grounding) == (20, "sasrec", 0.5, "exact")  # None keeps the value
    with pytest.raises(ConfigError) as e:
        DecodingConfig.of(c, beams=0, assist_weight=2.0, mode="greedy", colour="red")
    text = str(e.value)
    for field in ("beams", "assist_weight", "mode", "colour"):  # every problem at once
        assert field in text
    with pytest.raises(ConfigError, match="non-finite|finite"):
        DecodingConfig.of(c, assist="sasrec", assist_weight=float("nan"))


def test_the_assistant_is_for_beam_decoding_only():
    with pytest.raises(ConfigError, match="used in beam and rerank decoding"):
        DecodingConfig(mode="exact", assist="popularity")
    with pytest.raises(ConfigError, match="no assistant is"):
        DecodingConfig(assist_weight=0.3)
    assert DecodingConfig(assist_weight=0.0).fused_weight == 0.0
    assert DecodingConfig(assist="last-item", assist_weight=0.25).fused_weight == 0.25
    assisted = DecodingConfig(assist="sasrec", assist_weight=0.75)
    exact = assisted.with_mode("exact")  # switching mode drops what does not apply
    assert (exact.mode, exact.assist, exact.assist_weight, exact.beams) == ("exact", None, None, 10)
    with pytest.raises(GenrecError, match="unknown decoding mode"):
        assisted.with_mode("greedy")


def test_configs_are_frozen_hashable_and_describe_their_mode():
    a, b = DecodingConfig(beams=5), DecodingConfig.of(None, beams=5)
    assert a == b and hash(a) == hash(b) and len({a, b, DecodingConfig()}) == 2
    with pytest.raises(ValidationError, match="frozen"):
        a.beams = 6
    assert "grounding" not in a.describe() and "max_expansions" not in a.describe() and "assist_weight" not in a.describe()
    assert DecodingConfig(mode="free").describe()["grounding"] == "exact"
    assert DecodingConfig(mode="exact").describe()["max_expansions"] == 2000


def test_decoder_takes_a_config_or_its_fields(tiny, codec, trie):
    d = Decoder(tiny.model, codec, trie, DecodingConfig(beams=4, batch_size=2))
    assert (d.config.beams, d.config.batch_size, d.mode) == (4, 2, "beam")
    e = Decoder(tiny.model, codec, trie, d.config, mode="exact", max_expansions=7)
    assert (e.mode, e.config.max_expansions, e.config.beams) == ("exact", 7, 4)
    with pytest.raises(GenrecError, match="unknown decoding mode"):
        Decoder(tiny.model, codec, trie, mode="greedy")
