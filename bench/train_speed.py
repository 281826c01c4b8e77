"""Training speed: `genrec train` against the paper's code path, same run, same machine.

The reference is what GenRec's original script does (alpaca-lora): prompts rendered as
strings and tokenised, Hugging Face ``Trainer`` with ``DataCollatorForSeq2Seq`` (pads each
batch to its longest example, no length grouping), the full LM head on every position.
Both train one epoch over the same fixed slice of ml-latest-small training examples with
the same backbone, the same LoRA (r=8, alpha=16, q_proj/v_proj, no dropout), the same
batch (8) and learning rate, loss on the response only (alpaca-lora's
``train_on_inputs=False``). Each runs in its own subprocess so peak memory is its own.

Printed: tokens/s of each (non-padding tokens / wall time), the ratio, peak RSS, the
validation loss of both adapters on the same validation examples, and the share of this
machine's fp32 matmul peak reached (LoRA training ≈ 4 × parameters FLOPs per token).

    python bench/train_speed.py [--examples 128] [--backbone smollm2-135m]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMON = dict(r=8, alpha=16, targets=["q_proj", "v_proj"], lr=3e-4, batch=8, seed=0)


def matmul_peak(threads: int, n: int = 2048, reps: int = 10) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def slice_examples(data_dir: str, n: int, seed: int):
    """A fixed, seeded slice of training examples and of validation examples."""
    import numpy as np

    from genrec.data import Dataset

    ds = Dataset(data_dir)
    train = ds.examples("train")
    valid = ds.examples("valid")
    rng = np.random.default_rng(seed)
    tr = train[np.sort(rng.choice(train.height, n, replace=False)).tolist()]
    va = valid[np.sort(rng.choice(valid.height, 64, replace=False)).tolist()]
    return ds, tr, va


def run_genrec(args) -> dict:
    """genrec's loop on the slice (as `genrec train` runs it, with this slice as the data)."""
    import torch

    from genrec.training import loop
    from genrec.training.config import TrainConfig
    from genrec.training.examples import Example

    torch.set_num_threads(args.threads)
    ds, tr, _ = slice_examples(args.data, args.examples, COMMON["seed"])
    chosen = [Example(f"{u}:{p}", h, t) for u, h, t, p in tr.select("user_id", "history", "target", "position").iter_rows()]
    loop.build_examples = lambda ds, cfg, *_: chosen  # train on exactly the slice
    cfg = TrainConfig.build({
        "backbone": args.backbone, "template": "alpaca", "serialisation": "lines", "loss_on": "response",
        "lora": {"r": COMMON["r"], "alpha": COMMON["alpha"], "dropout": 0.0, "target_modules": COMMON["targets"]},
        "lr": COMMON["lr"], "schedule": "constant", "warmup_steps": 0, "epochs": 1,
        "batch_size": COMMON["batch"], "effective_batch": COMMON["batch"], "seed": COMMON["seed"],
        "save_every": None, "threads": args.threads, "log_every": 1,
    })
    out = Path(args.workdir) / "genrec-run"
    t = time.perf_counter()
    info = loop.train(args.data, out, cfg, overwrite=True)
    wall = time.perf_counter() - t
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    train_s = info["train_seconds"]
    return {"tokens": info["tokens_seen"], "seconds": train_s, "wall": wall, "adapter": str(out / "adapter"), "steps": len(log)}


def run_reference_plain(args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from genrec.model.backbone import load_backbone
    from genrec.model.encoding import Codec
    from genrec.prompts import PromptSpec

    torch.set_num_threads(args.threads)
    ds, tr, _ = slice_examples(args.data, args.examples, COMMON["seed"])
    bb = load_backbone(args.backbone)
    tok = bb.tokenizer
    spec = PromptSpec("alpaca", "lines", ds.domain)
    titles = ds.catalogue.titles
    codec = Codec(tok, titles)
    rows = []
    for u, h, t, p in tr.select("user_id", "history", "target", "position").iter_rows():
        # the original renders the prompt as one string and tokenises it whole
        prompt = spec.render(spec.prompt(h, f"{u}:{p}"), titles)
        full = prompt + titles[t] + tok.eos_token
        ids = tok(full, add_special_tokens=True).input_ids
        n_prompt = len(tok(prompt, add_special_tokens=True).input_ids)
        labels = [-100] * n_prompt + ids[n_prompt:]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    del codec
    model = get_peft_model(bb.model, LoraConfig(r=COMMON["r"], lora_alpha=COMMON["alpha"], lora_dropout=0.0,
                                                target_modules=COMMON["targets"], task_type="CAUSAL_LM"))
    out = Path(args.workdir) / "reference-run"
    targs = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=COMMON["batch"], num_train_epochs=1,
        learning_rate=COMMON["lr"], lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
        save_strategy="no", report_to=[], seed=COMMON["seed"], use_cpu=not torch.cuda.is_available(),
        dataloader_drop_last=True, disable_tqdm=True,  # no length grouping: the default
    )
    collator = DataCollatorForSeq2Seq(tok, pad_to_multiple_of=8, return_tensors="pt", padding=True)
    trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collator)
    t = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t
    model.save_pretrained(out / "adapter")
    n_batches = len(rows) // COMMON["batch"]
    tokens = sum(len(r["input_ids"]) for r in rows[: n_batches * COMMON["batch"]])
    return {"tokens": tokens, "seconds": seconds, "wall": seconds, "adapter": str(out / "adapter"), "steps": n_batches}


def valid_loss(args, adapter: str) -> float:
    """Response-only loss of an adapter on the fixed validation slice (same code for both)."""
    import torch

    from genrec.model.backbone import load_backbone
    from genrec.model.encoding import Codec
    from genrec.model.lora import load_adapter
    from genrec.prompts import PromptSpec
    from genrec.training.losses import pad_batch, token_losses

    torch.set_num_threads(args.threads)
    ds, _, va = slice_examples(args.data, args.examples, COMMON["seed"])
    bb = load_backbone(args.backbone)
    model = load_adapter(bb.model, adapter).eval()
    codec = Codec(bb.tokenizer, ds.catalogue.titles)
    spec = PromptSpec("alpaca", "lines", ds.domain)
    total, n = 0.0, 0
    rows = list(va.select("user_id", "history", "target", "position").iter_rows())
    with torch.inference_mode():
        for s in range(0, len(rows), 8):
            enc = [codec.encode(spec.prompt(h, f"{u}:{p}"), spec.response(t), "response") for u, h, t, p in rows[s : s + 8]]
            ids, mask, labels = pad_batch(enc, codec.pad_id, "cpu")
            losses = token_losses(model, ids, mask, labels)
            total += losses.sum().item()
            n += losses.numel()
    return total / n


def child(args) -> None:
    fn = {"genrec": run_genrec, "reference": run_reference_plain}[args.child]
    res = fn(args)
    res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("CHILD " + json.dumps(res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="prepared dataset folder (default: prepare the bundled set into a temp folder)")
    p.add_argument("--examples", type=int, default=128, help="training examples in the fixed slice")
    p.add_argument("--backbone", default="smollm2-135m")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--child", choices=["genrec", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = tmp
        if not args.data:
            from genrec.data import prepare, read_source

            args.data = str(Path(tmp) / "data")
            prepare(read_source("bundled", None), args.data)
        results = {}
        for name in ("reference", "genrec"):
            cmd = [sys.executable, __file__, "--child", name, "--data", args.data, "--examples", str(args.examples),
                   "--backbone", args.backbone, "--threads", str(args.threads), "--workdir", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("CHILD ")]
            if proc.returncode or not line:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"{name} run failed")
            results[name] = json.loads(line[-1][6:])
            results[name]["valid_loss"] = valid_loss(args, results[name]["adapter"])
        peak = matmul_peak(args.threads)
        from genrec.model.backbone import load_backbone

        params = sum(p.numel() for p in load_backbone(args.backbone).model.parameters())
    rows = []
    for name, r in results.items():
        r["tokens_per_second"] = r["tokens"] / r["seconds"]
        r["share_of_peak"] = 4 * params * r["tokens_per_second"] / peak
        rows.append((name, r))
    print(f"backbone {args.backbone} ({params / 1e6:.1f}M parameters), {args.examples} examples, batch {COMMON['batch']}, "
          f"{args.threads} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'method':<10} {'tokens':>8} {'seconds':>8} {'tokens/s':>9} {'peak MB':>8} {'valid loss':>10} {'share of peak':>13}")
    for name, r in rows:
        print(f"{name:<10} {r['tokens']:>8} {r['seconds']:>8.1f} {r['tokens_per_second']:>9.1f} {r['peak_mb']:>8.0f} "
              f"{r['valid_loss']:>10.4f} {r['share_of_peak']:>13.1%}")
    g, ref = results["genrec"], results["reference"]
    ratio = g["tokens_per_second"] / ref["tokens_per_second"]
    print(f"ratio (genrec / reference tokens/s): {ratio:.2f}")
    print(
        f"RESULT ratio={ratio:.3f} tokens_per_second={g['tokens_per_second']:.1f} "
        f"reference_tokens_per_second={ref['tokens_per_second']:.1f} peak_mb={g['peak_mb']:.0f} "
        f"share_of_peak={g['share_of_peak']:.3f} valid_loss={g['valid_loss']:.4f} reference_valid_loss={ref['valid_loss']:.4f}"
    )


if __name__ == "__main__":
    main()
