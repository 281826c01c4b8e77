"""Learning curves: validation HR@10 / NDCG@10 of GenRec variants against training minutes.

    python bench/learning_curve.py ml-latest-small --variants item-token,full,lora --minutes 5,10,20,30

Each variant (a preset plus overrides, table ``VARIANTS``) is trained with ``genrec``'s one
training loop and validated when its *training* time (optimizer steps only, validation
excluded) first reaches each of ``--minutes``, on the same seeded ``--eval-users``
validation users for every variant (constrained 10-beam decoding, full catalogue, seen
items excluded). Popularity and SASRec (trained within ``--sasrec-minutes``; note that
SASRec picks its best epoch on the validation split, so its line is an optimistic
reference) are ranked for the same users and drawn as horizontal lines.

Settings are chosen here, on validation; test figures come once, afterwards, from
``bench/quality.py --genrec-run`` with the chosen run. Run folders stay under
``--work``: a rerun with the same settings reuses a finished run, and an interrupted one
resumes from its last checkpoint (so a curve longer than one session can be finished
in the next).

Writes ``OUT/learning-curve-<dataset>.{json,md,png}``; the last line is ``RESULT`` with
each variant's best validation HR@10 and the minute it was reached.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, REPO, prepared  # noqa: E402

#: name -> (preset, overrides[, histories of the prepared data, default 10 items]). Every
#: variant uses a constant learning rate after warm-up, so a point of the curve does not
#: depend on how long the run was planned to be.
VARIANTS: dict[str, tuple] = {
    # the shipped cpu preset: LoRA r=16 on every projection, titles, loss on every title
    "lora": ("cpu-titles", {"schedule": "constant"}),
    # the same data, every weight trained (BIGRec/D3 fine-tune fully)
    "full": ("cpu-titles", {"finetune": "full", "lr": 1e-4, "schedule": "constant"}),
    # every item one new token initialised from its title, every weight trained; an item is
    # one token, so a step takes more chunks (64) to fill the matrix products
    "item-token": ("cpu-titles", {"finetune": "full", "item_repr": "item-token", "template": "tokens", "lr": 3e-4,
                           "schedule": "constant", "batch_size": 64, "effective_batch": 64}),
    # the same on the first 10 of SmolLM2's 30 layers (about 3x the tokens per second)
    "item-token-l10": ("cpu-titles", {"finetune": "full", "item_repr": "item-token", "template": "tokens", "lr": 3e-4,
                               "schedule": "constant", "batch_size": 64, "effective_batch": 64, "num_layers": 10}),
    # titles again, every weight of the first 10 layers trained (as item-token-l10, but an item
    # is its title's tokens, which a large catalogue with few purchases per item needs)
    "titles-l10": ("cpu-titles", {"finetune": "full", "lr": 3e-4, "schedule": "constant", "batch_size": 16,
                                  "effective_batch": 16, "num_layers": 10}),
    # the same with histories of up to 50 items (chunks of 51 items in training, as SASRec
    # reads long histories), 16 chunks a step
    "item-token-l10-h50": ("cpu-titles", {"finetune": "full", "item_repr": "item-token", "template": "tokens", "lr": 3e-4,
                                   "schedule": "constant", "batch_size": 16, "effective_batch": 16, "num_layers": 10}, 50),
    # item-token-l10 on whole training sequences: each user's training part packed into runs
    # of up to cutoff_len (256) tokens, every item a target, histories of up to 250 items at
    # validation and inference too; 8 runs a step (about as many tokens as 64 chunks)
    "item-token-l10-seq": ("cpu-titles", {"finetune": "full", "item_repr": "item-token", "template": "tokens", "lr": 3e-4,
                                   "schedule": "constant", "windows": "sequences", "batch_size": 8, "effective_batch": 8,
                                   "num_layers": 10}, 250),
}


def data_for(name: str, a: argparse.Namespace):
    """The prepared data a variant trains and validates on (histories of its length)."""
    spec = VARIANTS[name]
    return prepared(a.dataset, a.work, spec[2] if len(spec) > 2 else None)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--variants", default="item-token,full,lora", help="comma-separated, from: " + ", ".join(VARIANTS))
    p.add_argument("--minutes", default="5,10,20,30", help="training minutes at which to validate (the run stops at the last)")
    p.add_argument("--eval-users", type=int, default=300)
    p.add_argument("--sasrec-minutes", type=float, default=2.0)
    p.add_argument("--backbone", default="smollm2-135m")
    p.add_argument("--train-users", type=int, default=None, help="train on a seeded subset of this many users")
    p.add_argument("--seed", type=int, default=42, help="training seed and the seed of the validation users")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every variant")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "genrec-quality")
    a = p.parse_args(argv)
    a.variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown or not a.variants:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    try:
        a.minutes = sorted(float(m) for m in a.minutes.split(","))
    except ValueError:
        p.error(f"--minutes {a.minutes!r}: write minutes as numbers separated by commas, e.g. 5,10,20")
    if not a.minutes or a.minutes[0] <= 0:
        p.error("--minutes must be positive")
    return a


def variant_config(name: str, a: argparse.Namespace):
    from genrec.config import load_preset
    from genrec.training.config import TrainConfig

    preset, over = VARIANTS[name][:2]
    data = {**load_preset("train", preset), **over, "backbone": a.backbone, "seed": a.seed,
            "eval_minutes": a.minutes, "max_minutes": a.minutes[-1], "eval_users": a.eval_users,
            "epochs": 1000.0, "save_every": 25, "keep_checkpoints": 1}
    if a.train_users:
        data["max_users"] = a.train_users
    return TrainConfig.build(data, a.set)


def train_variant(name: str, a: argparse.Namespace) -> Path:
    from genrec.training.loop import train
    from genrec.training.rundir import RunDir

    cfg = variant_config(name, a)
    ds = data_for(name, a)
    if len(VARIANTS[name]) > 2:  # data with other history lengths: the same validation users?
        if [k for k, *_ in validation_users(ds, a, keys=True)] != [k for k, *_ in validation_users(prepared(a.dataset, a.work), a, keys=True)]:
            raise SystemExit(f"error: {name} would validate on other users than the references")
    run = a.work / a.dataset / f"curve-{name}"
    status = None
    if (run / "run.json").is_file():
        rd = RunDir(run)
        same = rd.config().model_dump() == cfg.model_dump()
        status = rd.info().get("status") if same else None
        if status in ("finished", "stopped early"):
            print(f"{name}: reusing the finished run in {run}", flush=True)
            return run
    resume = status in ("running", "interrupted")
    print(f"{name}: {'resuming' if resume else 'training'} → {run} (validating at {a.minutes} training minutes)", flush=True)

    def progress(e):
        if e["kind"] == "train" and (e["step"] % 20 == 0 or e["step"] == 1):
            print(f"  {name} step {e['step']}  {e['elapsed_s'] / 60:.1f} min  loss {e['loss']:.3f}  "
                  f"{e['tokens_per_second']:.0f} tok/s", flush=True)
        elif e["kind"] == "eval":
            print(f"  {name} step {e['step']}  valid HR@10 {e.get('valid_hr@10', float('nan')):.4f}  "
                  f"NDCG@10 {e.get('valid_ndcg@10', float('nan')):.4f}  ({e['seconds']} s)", flush=True)

    train(ds.path, run, cfg, resume=resume, overwrite=not resume, progress=progress)
    return run


def curve_of(run: Path) -> dict:
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines() if x.strip()]
    train = [e for e in log if e["kind"] == "train"]
    at = {e["step"]: e for e in train}
    points = [{"step": e["step"], "minutes": round(at[e["step"]]["elapsed_s"] / 60, 2),
               "hr@10": e.get("valid_hr@10"), "ndcg@10": e.get("valid_ndcg@10"),
               "loss": e.get("valid_loss"), "title_logprob": e.get("valid_title_logprob")}
              for e in log if e["kind"] == "eval" and e["step"] in at]
    info = json.loads((run / "run.json").read_text())
    seconds = train[-1]["elapsed_s"] if train else 0.0
    return {"run": str(run), "points": points, "tokens_per_second": round(train[-1]["tokens_seen"] / seconds, 1) if seconds else None,
            "steps": info.get("steps_done"), "examples_seen": info.get("examples_seen"),
            "trainable_parameters": info.get("trainable_parameters"), "status": info.get("status")}


def validation_users(ds, a: argparse.Namespace, keys: bool = False) -> list[tuple]:
    """(full history, target) of the seeded validation users the training loop validates on
    (with `keys`, (key, full history, target))."""
    from genrec.model.backbone import load_backbone
    from genrec.model.encoding import Codec
    from genrec.prompts import PromptSpec
    from genrec.training.validation import Validator

    tok = load_backbone("tiny-random-llama").tokenizer  # only the sample is wanted, not the model
    v = Validator(ds, Codec(tok, []), PromptSpec(), a.eval_users, a.seed, 10, False)
    seqs = ds.sequences
    index = {u: i for i, u in enumerate(seqs.user_ids)}
    out = []
    for key, _, target, _ in v.items:
        user, position = key.rsplit(":", 1)
        start = seqs.offsets[index[user]]
        full = seqs.items[start : start + int(position)].tolist()
        out.append((key, full, int(target)) if keys else (full, int(target)))
    return out


def hr_ndcg(items: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    hit = items == targets[:, None]
    rank = np.where(hit.any(1), hit.argmax(1), -1)
    ndcg = np.where(rank >= 0, 1 / np.log2(np.maximum(rank, 0) + 2), 0.0)
    return float((rank >= 0).mean()), float(ndcg.mean())


def references(ds, a: argparse.Namespace) -> tuple[dict, int]:
    """Popularity and SASRec on the validation users the training loop validates on."""
    import torch

    from genrec.recommenders import build_method

    users = validation_users(ds, a)
    histories = [h for h, _ in users]
    targets = np.array([t for _, t in users])
    out = {}
    for method, options in (("popularity", {}), ("sasrec", {"max_minutes": a.sasrec_minutes, "seed": 0,
                                                           "threads": torch.get_num_threads()})):
        t0 = time.perf_counter()
        rec = build_method(method, ds, options)
        hr, ndcg = hr_ndcg(rec.recommend(histories, k=10).items, targets)
        out[method] = {"hr@10": hr, "ndcg@10": ndcg, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{method}: valid HR@10 {hr:.4f}  NDCG@10 {ndcg:.4f}", flush=True)
    return out, len(users)


def earlier_variants(path: Path, settings: dict) -> dict:
    """Variants of an earlier call on the same validation users (same data, seed, users, backbone),
    so variants run in separate calls (or sessions) end up in one table and plot."""
    if not path.is_file():
        return {}
    before = json.loads(path.read_text())
    same = ("dataset", "seed", "eval_users", "backbone", "train_users")
    if any(before["settings"].get(k) != settings.get(k) for k in same):
        return {}
    return {name: {**v, "command": v.get("command", before["settings"]["command"])} for name, v in before["variants"].items()}


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [f"# Learning curves on {s['dataset']} ({s['eval_users']} validation users, seed {s['seed']})", "",
             f"`{s['command']}`", "",
             "| variant | training minutes | step | HR@10 | NDCG@10 | valid loss |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in result["references"].items():
        lines.append(f"| {name} (reference) | | | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | |")
    for name, v in result["variants"].items():
        for p in v["points"]:
            lines.append(f"| {name} | {p['minutes']:.1f} | {p['step']} | {p['hr@10']:.4f} | {p['ndcg@10']:.4f} | {p['loss']:.3f} |")
    lines += ["", "| variant | tokens/s | steps | examples | trainable parameters | first minute above popularity |",
              "|---|---:|---:|---:|---:|---|"]
    pop = result["references"]["popularity"]["hr@10"]
    for name, v in result["variants"].items():
        above = next((p["minutes"] for p in v["points"] if (p["hr@10"] or 0) > pop), None)
        last = v["points"][-1]["minutes"] if v["points"] else 0
        first = f"{above} min" if above is not None else f"not by {last} min"
        lines.append(f"| {name} | {v['tokens_per_second']} | {v['steps']} | {v['examples_seen']} | "
                     f"{v['trainable_parameters']:,} | {first} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("hr@10", "ndcg@10"), strict=True):
        for name, v in result["variants"].items():
            xs = [p["minutes"] for p in v["points"]]
            ax.plot(xs, [p[metric] for p in v["points"]], marker="o", label=f"{name} ({v['tokens_per_second']} tok/s)")
        for (name, r), style in zip(result["references"].items(), ("--", ":"), strict=False):
            ax.axhline(r[metric], linestyle=style, color="grey", label=name)
        ax.set_xlabel("training minutes (2 CPU cores)")
        ax.set_ylabel(f"validation {metric.upper()}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{result['settings']['dataset']}: {result['settings']['eval_users']} validation users")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    a = parse_args(argv)
    ds = prepared(a.dataset, a.work)
    settings = {"command": " ".join(["python bench/learning_curve.py", *(argv if argv is not None else sys.argv[1:])]),
                "dataset": a.dataset, "seed": a.seed, "minutes": a.minutes, "backbone": a.backbone,
                "train_users": a.train_users, "overrides": a.set}
    refs, n_users = references(ds, a)
    settings["eval_users"] = n_users
    variants = {}
    for name in a.variants:
        run = train_variant(name, a)
        variants[name] = {"config": variant_config(name, a).model_dump(mode="json"), "command": settings["command"],
                          **curve_of(run)}
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"learning-curve-{a.dataset}"
    variants = {**earlier_variants(stem.with_suffix(".json"), settings), **variants}
    result = {"settings": settings, "references": refs, "variants": variants}
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(markdown(result))
    plot(result, stem.with_suffix(".png"))
    print(markdown(result))
    best = {n: max(v["points"], key=lambda p: p["hr@10"] or -math.inf) for n, v in variants.items() if v["points"]}
    print("RESULT " + f"popularity_hr10={refs['popularity']['hr@10']:.4f} sasrec_hr10={refs['sasrec']['hr@10']:.4f} "
          + " ".join(f"{n}_best_hr10={p['hr@10']:.4f}@{p['minutes']}min" for n, p in best.items()))


if __name__ == "__main__":
    main()
