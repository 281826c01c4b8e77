"""Full fine-tuning, item tokens and validation at training minutes (tiny random LLaMA)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genrec.errors import ConfigError
from genrec.model.backbone import load_backbone
from genrec.model.encoding import Codec
from genrec.model.finetune import add_item_tokens
from genrec.recommenders.genrec import GenRec
from genrec.training.config import TrainConfig
from genrec.training.loop import train
from tests._util import requires_packaged

pytestmark = requires_packaged

BASE = {
    "backbone": "tiny-random-llama", "windows": "chunks", "loss_on": "items", "template": "compact",
    "batch_size": 4, "effective_batch": 8, "warmup_steps": 0, "save_every": 2, "threads": 2, "schedule": "constant",
}


def cfg(**kw) -> TrainConfig:
    return TrainConfig.build({**BASE, **kw})


def read_log(run) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_full_finetune_trains_every_weight_and_loads_back(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    info = train(tiny_dataset.path, run, cfg(finetune="full", max_steps=4, lr=1e-2))
    assert info["status"] == "finished"
    assert info["trainable_parameters"] == sum(p.numel() for p in load_backbone("tiny-random-llama").model.parameters())
    saved = load_file(run / "adapter" / "model.safetensors")
    base = load_backbone("tiny-random-llama").model.state_dict()
    # every layer moved, the embeddings too (LoRA would leave them untouched)
    assert not torch.equal(saved["model.embed_tokens.weight"], base["model.embed_tokens.weight"])
    assert not torch.equal(saved["model.layers.1.mlp.down_proj.weight"], base["model.layers.1.mlp.down_proj.weight"])
    rec = GenRec.load(run, tiny_dataset, beams=5)
    ranked = rec.recommend([[0, 1, 2]], k=5)
    assert ranked.items.shape == (1, 5) and (ranked.items >= 0).all() and len(set(ranked.items[0])) == 5
    assert torch.equal(rec.model.get_input_embeddings().weight, saved["model.embed_tokens.weight"])


def test_full_finetune_resume_equals_uninterrupted(tiny_dataset, tmp_path):
    c = cfg(finetune="full", max_steps=4, lr=1e-2)
    train(tiny_dataset.path, tmp_path / "whole", c)

    def interrupt(step):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_dataset.path, tmp_path / "cut", c, on_step=interrupt)
    train(tiny_dataset.path, tmp_path / "cut", c, resume=True)
    a = load_file(tmp_path / "whole" / "adapter" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "adapter" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_item_tokens_start_from_their_titles():
    bb = load_backbone("tiny-random-llama")
    codec = Codec(bb.tokenizer, ["Heat (1995)", "Up (2009)"])
    emb = bb.model.get_input_embeddings().weight.detach().clone()
    first = add_item_tokens(bb.model, codec.item_tokens)
    assert first == emb.shape[0]
    new = bb.model.get_input_embeddings().weight
    assert new.shape[0] == first + 2
    torch.testing.assert_close(new[first], emb[codec.item_tokens[0]].mean(0))
    torch.testing.assert_close(new[first + 1], emb[codec.item_tokens[1]].mean(0))
    torch.testing.assert_close(new[:first], emb)  # the text vocabulary is untouched
    # tied head: the output row of an item token is its input row
    assert torch.equal(bb.model.get_output_embeddings().weight[first], new[first])
    tokens = Codec(bb.tokenizer, ["Heat (1995)", "Up (2009)"], item_token_start=first)
    assert tokens.item_tokens == [[first], [first + 1]] and tokens.vocab_size == first + 2
    tokens.add_names(["New (2030)"])
    assert tokens.item_tokens[-1] == [first + 2]


def test_item_token_run_ranks_by_one_forward_pass(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    info = train(tiny_dataset.path, run, cfg(finetune="full", item_repr="item-token", template="tokens", max_steps=6, lr=1e-2))
    n_items = len(tiny_dataset.catalogue)
    start = info["item_token_start"]
    assert start is not None
    # the prompt is the header and one token per item, nothing else
    rec = GenRec.load(run, tiny_dataset, beams=10)
    prompt = rec.prompt_ids([3, 4, 5])
    assert prompt[-3:] == [start + 3, start + 4, start + 5]
    assert all(t < start for t in prompt[:-3])
    ranked = rec.recommend([[3, 4, 5]], k=10)
    assert (ranked.items >= 0).all() and not set(ranked.items[0]) & {3, 4, 5}
    # brute force: each item's score is log p(item token | prompt) + log p(EOS | prompt, item)
    model = rec.model
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1], -1)
        scores = []
        for i in range(n_items):
            nxt = torch.log_softmax(model(torch.tensor([prompt + [start + i]])).logits[0, -1], -1)
            scores.append(float(logp[start + i] + nxt[rec.codec.eos_id]))
    scores = np.array(scores)
    scores[[3, 4, 5]] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:10]
    assert set(ranked.items[0]) == set(expected)
    np.testing.assert_allclose(np.sort(ranked.scores[0])[::-1], scores[expected], rtol=1e-4, atol=1e-4)
    exact = GenRec.load(run, tiny_dataset, decode="exact").recommend([[3, 4, 5]], k=10)
    assert set(exact.items[0]) == set(expected)
    with pytest.raises(Exception, match="item tokens"):
        GenRec.load(run, tiny_dataset, decode="free")


def test_validation_at_training_minutes(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    # a mark of 1e-6 minutes is passed by the first step; the last step validates too
    train(tiny_dataset.path, run, cfg(max_steps=3, eval_minutes=[1e-6], eval_users=4, lr=1e-3))
    evals = [e["step"] for e in read_log(run) if e["kind"] == "eval"]
    assert evals == [1, 3]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"item_repr": "item-token"}, "needs finetune=full"),
    ({"template": "tokens"}, "needs item_repr=item-token"),
    ({"eval_minutes": [0]}, "positive minutes"),
])
def test_inconsistent_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.build(overrides)


def test_fewer_layers_train_and_load_with_the_same_depth(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_dataset.path, run, cfg(num_layers=1, max_steps=2))  # LoRA on a 1-layer cut of the 2-layer model
    rec = GenRec.load(run, tiny_dataset, beams=5)
    assert len(rec.model.base_model.model.model.layers) == 1
    assert rec.recommend([[0, 1]], k=5).items.shape == (1, 5)
    # a depth beyond the backbone's keeps it whole (a preset's depth suits any backbone)
    train(tiny_dataset.path, tmp_path / "deep", cfg(num_layers=3, max_steps=1))
    assert len(GenRec.load(tmp_path / "deep", tiny_dataset, beams=5).model.base_model.model.model.layers) == 2
