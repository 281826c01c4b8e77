"""Which training settings learn within a CPU budget? Validation HR@10 against minutes.

Trains SmolLM2-135M with LoRA on the bundled ml-latest-small under several variants of
the settings, validating every `--eval-every` steps on the same seeded sample of
validation users (constrained 10-beam decoding, full catalogue, seen items excluded),
and prints each variant's curve next to popularity on the same users. This is the
measurement behind the ``cpu`` preset.

    python bench/cpu_preset.py --variants paper-lr,cpu --steps 90 --eval-every 30
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np

ALL_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

#: name -> (preset, overrides)
VARIANTS: dict[str, tuple[str, dict]] = {
    # the paper's LoRA on the paper's template, response loss, batch 8 (FINDINGS' probe)
    "paper-lr": ("recommended", {"effective_batch": 8, "warmup_steps": 10, "lr": 3e-4, "select_best": False, "early_stopping_patience": None}),
    # the shipped cpu preset
    "cpu": ("cpu", {}),
    "cpu-lr2e-3": ("cpu", {"lr": 2e-3}),
    "cpu-lr5e-4": ("cpu", {"lr": 5e-4}),
    "cpu-response": ("cpu", {"loss_on": "response", "windows": "all"}),
    "cpu-qv": ("cpu", {"lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}),
    "cpu-h5": ("cpu", {"max_history": 5}),
    "cpu-alpaca": ("cpu", {"template": "alpaca"}),
    "cpu-r64": ("cpu", {"lora": {"r": 64, "alpha": 64, "dropout": 0.0, "target_modules": ALL_MODULES}}),
    # LoRA on the (tied) output head too: a low-rank, directly learnable shift of every
    # token's logit, so the item prior does not have to be learned through attention/MLP
    "cpu-head": ("cpu", {"lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ALL_MODULES + ["lm_head"]}}),
    "cpu-head-lr2e-3": ("cpu", {"lr": 2e-3, "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ALL_MODULES + ["lm_head"]}}),
}


def popularity_on(validator, ds) -> dict:
    from genrec.recommenders.popularity import Popularity

    pop = Popularity().fit(ds)
    ranked = pop.recommend([s for *_, s in validator.items], k=10)
    hits, ndcg = [], []
    for row, (_, _, target, _) in zip(ranked.items, validator.items, strict=True):
        where = np.flatnonzero(row == target)
        hits.append(float(len(where) > 0))
        ndcg.append(1 / math.log2(where[0] + 2) if len(where) else 0.0)
    return {"hr@10": float(np.mean(hits)), "ndcg@10": float(np.mean(ndcg))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="cpu", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=90)
    p.add_argument("--eval-every", type=int, default=30)
    p.add_argument("--eval-users", type=int, default=200)
    p.add_argument("--backbone", default="smollm2-135m")
    p.add_argument("--data", help="prepared dataset (default: the bundled set, prepared into a temp folder)")
    p.add_argument("--out", default="bench/results/cpu_preset.json")
    p.add_argument("--keep", help="keep the run folders here (default: a temporary folder)")
    args = p.parse_args()

    from genrec.data import Dataset, prepare, read_source
    from genrec.model.backbone import load_backbone
    from genrec.model.encoding import Codec
    from genrec.prompts import PromptSpec
    from genrec.training.config import from_preset
    from genrec.training.loop import train
    from genrec.training.validation import Validator

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or str(Path(tmp) / "data")
        if not args.data:
            prepare(read_source("bundled", None), data)
        ds = Dataset(data)
        tok = load_backbone("tiny-random-llama").tokenizer
        v = Validator(ds, Codec(tok, ds.catalogue.titles), PromptSpec(), args.eval_users, 42, 10, False)
        pop = popularity_on(v, ds)
        print(f"popularity on the same {len(v)} validation users: HR@10 {pop['hr@10']:.4f} NDCG@10 {pop['ndcg@10']:.4f}")
        results = {"popularity": pop, "eval_users": len(v), "steps": args.steps, "variants": {}}
        for name in args.variants.split(","):
            preset, over = VARIANTS[name]
            flat = [f"{k}={json.dumps(val)}" for k, val in over.items()]
            cfg = from_preset(preset, args.backbone, args.steps, flat + [
                f"eval_every={args.eval_every}", f"eval_users={args.eval_users}", "seed=42", "save_every=null",
            ])
            run = Path(args.keep or tmp) / name
            print(f"training {name} for {args.steps} steps ...", flush=True)
            train(data, run, cfg, overwrite=True)
            log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
            train_at = {e["step"]: e["elapsed_s"] for e in log if e["kind"] == "train"}
            curve = [
                {"step": e["step"], "minutes": round(train_at[e["step"]] / 60, 2), "hr@10": e.get("valid_hr@10"),
                 "ndcg@10": e.get("valid_ndcg@10"), "loss": e["valid_loss"], "title_logprob": e["valid_title_logprob"]}
                for e in log if e["kind"] == "eval"
            ]
            results["variants"][name] = {"config": cfg.model_dump(mode="json"), "curve": curve}
            for c in curve:
                print(f"{name:<14} step {c['step']:>4} {c['minutes']:>6.1f} min  HR@10 {c['hr@10']:.4f}  NDCG@10 "
                      f"{c['ndcg@10']:.4f}  loss {c['loss']:.3f}  title logprob {c['title_logprob']:.1f}", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    best = max(((n, c) for n, r in results["variants"].items() for c in r["curve"]), key=lambda x: x[1]["hr@10"] or 0)
    print(f"RESULT popularity_hr10={pop['hr@10']:.4f} best_variant={best[0]} best_hr10={best[1]['hr@10']:.4f} "
          f"best_minutes={best[1]['minutes']}")


if __name__ == "__main__":
    main()
