"""One prompt rule (genrec.model.prompting): training, validation and inference send the
model the same token ids for the same history, capped and cut to ``cutoff_len`` alike."""

from __future__ import annotations

import json

import numpy as np

from genrec.model.backbone import load_backbone
from genrec.model.encoding import Codec
from genrec.model.prompting import PromptBuilder, history_cap
from genrec.prompts import INSTRUCTIONS, PromptSpec
from genrec.recommenders.genrec import GenRec
from genrec.training.config import TrainConfig
from genrec.training.examples import Encoder, Example, build_examples
from genrec.training.loop import train
from genrec.training.validation import Validator
from tests._util import requires_packaged

pytestmark = requires_packaged

CAP = 3


def test_training_validation_and_inference_build_identical_prompts(tiny_dataset, tmp_path):
    ds = tiny_dataset
    codec = Codec(load_backbone("tiny-random-llama").tokenizer, ds.catalogue.titles)
    spec = PromptSpec("alpaca", "lines", ds.domain, vary_instruction=False)
    shortest = int(np.argmin([len(ids) for ids in codec.item_tokens]))
    stored = Validator(ds, codec, spec, 20, 0, 10, False).items  # every validation user, histories as stored
    assert any(len(h) > CAP for _, h, _, _ in stored)
    # a cutoff that the longest capped histories overrun: their oldest items must go
    full = [codec.length(spec.prompt(h[-CAP:]) + spec.response(shortest)) for _, h, _, _ in stored]
    cutoff = int(np.median(full))
    assert min(full) <= cutoff < max(full)

    cfg = TrainConfig.build({
        "backbone": "tiny-random-llama", "template": "alpaca", "vary_instruction": False, "max_history": CAP,
        "cutoff_len": cutoff, "max_steps": 1, "batch_size": 4, "effective_batch": 4, "max_users": 4, "warmup_steps": 0,
    })
    run = tmp_path / "run"
    train(ds.path, run, cfg)
    rec = GenRec.load(run, ds, beams=10)
    # what the training loop builds (loop.train): one builder for its encoder and validator
    prompts = PromptBuilder.for_run(rec.codec, ds, cfg)
    encoder = Encoder(prompts, "response")
    validator = Validator(ds, rec.codec, prompts.spec, 20, 0, 10, False, prompts=prompts)
    assert validator.items == stored

    kept = []
    for (key, history, target, _), loss_example, decode_prompt in zip(
        validator.items, validator.examples(), validator.prompt_ids(), strict=True
    ):
        served = rec.prompt_ids(history)
        # validation's loss is taken on the example training builds for the same history
        assert encoder(Example(key, history, target)) == loss_example
        # validation decodes from the prompt inference sends
        assert decode_prompt == served
        # training's prompt for a target with the shortest response is the served one
        ids, _ = encoder(Example(key, history, shortest))
        assert ids[: -len(codec.response_ids(shortest))] == served
        # the served prompt is the most recent items that fit, never more than the cap
        n = next(n for n in range(1, CAP + 1) if codec.encode(spec.prompt(history[-n:]))[0] == served)
        assert len(served) + len(codec.response_ids(shortest)) <= cutoff or n == 1
        kept.append((len(history), n))
    assert any(length > CAP and n == CAP for length, n in kept), "no capped history kept whole"
    assert any(n < min(length, CAP) for length, n in kept), "no history was cut to fit cutoff_len"
    assert all(len(e.history) <= CAP for e in build_examples(ds, cfg))


def test_inference_asks_with_the_first_paraphrase():
    spec = PromptSpec(domain="movies")  # vary_instruction on
    assert spec.instruction(None) == INSTRUCTIONS["movies"][0]
    assert {spec.instruction(f"u{n}:3") for n in range(50)} == set(INSTRUCTIONS["movies"])
    # what inference sent before the key was decided ("") is the same paraphrase
    assert spec.instruction("") == spec.instruction(None)


def test_the_cap_is_the_runs_never_above_the_datasets():
    assert history_cap(None, 10) == 10
    assert history_cap(3, 10) == 3
    assert history_cap(50, 10) == 10


def test_sequences_are_packed_up_to_the_cutoff_and_train_every_item(tiny_dataset, tmp_path):
    """windows=sequences: each run is as long as ``cutoff_len`` allows, no item of a run is
    cut off, every item of it is labelled, and the loop trains on them."""
    ds = tiny_dataset
    cutoff = 96
    cfg = TrainConfig.build({
        "backbone": "tiny-random-llama", "template": "compact", "windows": "sequences", "loss_on": "items",
        "cutoff_len": cutoff, "max_steps": 2, "batch_size": 2, "effective_batch": 4, "warmup_steps": 0,
        "save_every": None, "eval_decode": False,
    })
    codec = Codec(load_backbone("tiny-random-llama").tokenizer, ds.catalogue.titles)
    prompts = PromptBuilder.for_run(codec, ds, cfg)
    encoder = Encoder(prompts, cfg.loss_on)
    runs = build_examples(ds, cfg, encoder.length)
    chunks = build_examples(ds, TrainConfig.build({**cfg.model_dump(), "windows": "chunks"}))
    def dropped(e) -> int:  # items of an example the cutoff leaves out of the loss
        return len(e.history) + 1 - sum(1 for t in encoder(e)[1] if t == codec.eos_id)

    assert any(dropped(e) for e in chunks)  # this cutoff cuts some chunks (targets included)
    assert not any(dropped(e) for e in runs if len(e.history) > 1)
    for e in runs:
        ids, labels = encoder(e)
        assert len(ids) == encoder.length(e) <= cutoff or len(e.history) == 1
        # every item of the run (and its EOS) is labelled: nothing was dropped to fit
        learnt = [t for t in labels if t != -100]
        assert learnt == [t for i in e.history + [e.target] for t in codec.response_ids(i)]
    grown = [e for e in runs if len(e.history) >= 2]
    longer = Example(grown[0].key, [grown[0].history[0]] + grown[0].history, grown[0].target)
    assert encoder.length(longer) > cutoff or len(grown[0].history) + 1 == prompts.max_history + 1
    run = tmp_path / "run"
    train(ds.path, run, cfg)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][-1] == 2
