"""The prompt builder: the paper's template, per-domain instructions, unambiguous
serialisations, and the compact template."""

from __future__ import annotations

import pytest

from genrec.prompts import EOS, INSTRUCTIONS, Item, PromptSpec

NAMES = ["Toy Story (1995)", "Matrix, The (1999)", "Heat (1995)"]


def render(spec: PromptSpec, history, target=None, key="u1") -> str:
    segs = spec.prompt(history, key) + (spec.response(target) if target is not None else [])
    return spec.render(segs, NAMES)


def test_alpaca_template_with_one_title_per_line():
    text = render(PromptSpec(domain="movies"), [0, 1], target=2)
    assert text.startswith("Below is an instruction")
    assert "### Instruction:\n" in text and "\n\n### Input:\nToy Story (1995)\nMatrix, The (1999)\n\n### Response:\n" in text
    assert text.endswith("Heat (1995)</s>")


@pytest.mark.parametrize("serialisation, joined", [
    ("lines", "Toy Story (1995)\nMatrix, The (1999)"),
    ("quoted", '["Toy Story (1995)", "Matrix, The (1999)"]'),
    ("comma", "Toy Story (1995),Matrix, The (1999)"),  # the paper's, ambiguous: kept for reproduction
])
def test_serialisations(serialisation, joined):
    assert f"### Input:\n{joined}\n\n### Response:\n" in render(PromptSpec(serialisation=serialisation), [0, 1])


@pytest.mark.parametrize("domain", ["movies", "products", "games", "items"])
def test_instructions_name_only_their_own_domain(domain):
    words = {"movies": ("movie", "film", "watch"), "products": ("product", "bought", "buy", "purchase"),
             "games": ("game", "play")}
    spec = PromptSpec(domain=domain)
    seen = {spec.instruction(f"user{n}") for n in range(200)}
    assert seen == set(INSTRUCTIONS[domain])  # several paraphrases are used
    for other, vocabulary in words.items():
        if other != domain:
            assert not any(w in i.lower() for i in seen for w in vocabulary), (domain, other)
    assert spec.instruction("same key") == spec.instruction("same key")  # deterministic per example


def test_instruction_is_fixed_when_not_varied():
    spec = PromptSpec(domain="games", vary_instruction=False)
    assert {spec.instruction(str(n)) for n in range(20)} == {INSTRUCTIONS["games"][0]}


def test_compact_template_ends_every_title_like_the_response():
    spec = PromptSpec(template="compact", domain="movies")
    segs = spec.prompt([0, 2])
    assert segs == ["Watched:\n", Item(0), EOS, "\n", Item(2), EOS, "\n"]
    assert spec.response(1) == [Item(1), EOS]
    assert render(spec, [0, 2], target=1) == "Watched:\nToy Story (1995)</s>\nHeat (1995)</s>\nMatrix, The (1999)</s>"
