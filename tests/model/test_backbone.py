"""Backbones, tokenizer handling, token encoding and LoRA validation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genrec.data.catalogue import clean_title
from genrec.errors import ConfigError, GenrecError
from genrec.model.backbone import load_backbone, load_tokenizer, resolve_backbone, tiny_path
from genrec.model.encoding import IGNORE, Codec
from genrec.model.lora import attach_lora
from genrec.prompts import EOS, Item
from genrec.training.config import LoraSettings
from tests._util import requires_packaged

pytestmark = requires_packaged

TITLES = ["Toy Story (1995)", "Matrix, The (1999)", "Amélie (2001)", "Heat (1995)", "Se7en (a.k.a. Seven) (1995)",
          'Lego "Duplo" Train, 3 Cars', "Star Wars: Episode IV - A New Hope (1977)"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(tiny_path()))


def test_the_packaged_tokenizer_ends_responses_with_the_real_eos(tokenizer):
    # SmolLM2-Instruct ends a turn with <|im_end|> (id 2); the original GenRec code stopped
    # generation on a wrong id, and transformers 4.x built this tokenizer with EOS <|im_start|>
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 2)
    codec = Codec(tokenizer, TITLES)
    for i in range(len(TITLES)):
        ids = codec.response_ids(i)
        assert ids[-1] == 2 and 2 not in ids[:-1]
    assert codec.pad_id == tokenizer.pad_token_id is not None


def test_titles_round_trip_through_the_tokenizer(tokenizer):
    codec = Codec(tokenizer, TITLES)
    for title, ids in zip(TITLES, codec.item_tokens, strict=True):
        assert tokenizer.decode(ids) == title


@settings(max_examples=60, deadline=None)
# assigned characters only: the byte-level tokenizer does not bring back unassigned code
# points (U+40000 decodes as replacement characters); constrained decoding works on token
# ids and is unaffected, free decoding's text matching would be
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cn", "Co")), min_size=1, max_size=40))
def test_any_clean_title_round_trips(tokenizer, raw):
    title = clean_title(raw)  # what catalogue hygiene makes of it
    assume(title)
    codec = Codec(tokenizer, [title])
    assert tokenizer.decode(codec.item_tokens[0]) == title


def test_items_are_tokenised_as_in_the_prompt(tokenizer):
    # an item in a prompt follows a newline; the trie and the labels must use those very tokens
    codec = Codec(tokenizer, TITLES)
    ids, labels = codec.encode(["History:\n", Item(1), "\nNext:\n"], [Item(3), EOS], loss_on="response")
    whole = tokenizer("History:\n" + TITLES[1] + "\nNext:\n" + TITLES[3], add_special_tokens=False).input_ids
    assert ids[:-1] == whole and ids[-1] == codec.eos_id
    learned = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    assert learned == codec.response_ids(3)


def test_unknown_backbones_are_refused_with_the_choices(tmp_path):
    with pytest.raises(GenrecError, match="unknown backbone") as e:
        resolve_backbone("no-such-model")
    assert "smollm2-135m" in e.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenrecError, match="not a Hugging Face model folder"):
        resolve_backbone(str(tmp_path / "empty"))


def test_lora_target_modules_are_checked_against_the_backbone():
    model = load_backbone("tiny-random-llama").model
    with pytest.raises(ConfigError) as e:
        attach_lora(model, LoraSettings(target_modules=["q_proj", "query"]))
    assert "['query'] not in this backbone" in str(e.value) and "v_proj" in str(e.value)
    peft_model = attach_lora(model, LoraSettings(target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_the_packaged_smollm2_loads_and_learns():
    """The real default backbone: converted from its GGUF file once, LLaMA architecture,
    and a few LoRA steps on one batch lower its loss."""
    bb = load_backbone("smollm2-135m", device="cpu")
    cfg = bb.model.config
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 30 and cfg.hidden_size == 576
    assert bb.tokenizer.eos_token_id == 2
    codec = Codec(bb.tokenizer, TITLES)
    ids, labels = codec.encode(["Watched:\n", Item(0), "\n", Item(3), "\nNext:\n"], [Item(2), EOS])
    model = attach_lora(bb.model, LoraSettings(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    x, y = torch.tensor([ids]), torch.tensor([labels])
    losses = []
    for _ in range(4):
        loss = model(input_ids=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
