"""`genrec quickstart`: prepare → train → evaluate on the bundled data, one command.

The whole GenRec pipeline on ml-latest-small (671 users, 9,061 movies) with the
packaged SmolLM2-135M backbone, sized to finish in about 15 minutes on a 2-core laptop
CPU: GenRec is trained with the ``cpu`` preset (see its file for the measurement behind
it) for a fixed number of optimizer steps
(so a rerun reproduces the same figures), and every method is evaluated on the same
seeded subset of test users with full-catalogue ranking. The output says exactly what
was trained and on how many users it was evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GenrecError


@dataclass
class QuickstartPlan:
    out: Path
    users: int = 671
    train_steps: int = 131
    sasrec_minutes: float = 1.5
    beams: int = 10
    backbone: str = "smollm2-135m"
    preset: str = "cpu"
    seed: int = 0
    overrides: list[str] = field(default_factory=list)
    #: replace an earlier quickstart folder at `out` (any other non-empty folder is refused)
    overwrite: bool = False


Say = Callable[[str], None]


def describe(cfg) -> str:
    """What a training config trains, in a few words (for the quickstart's output)."""
    parts = ["LoRA" if cfg.finetune == "lora" else "full fine-tuning",
             {"title": "titles", "random-id": "random item IDs", "item-token": "item tokens"}[cfg.item_repr]]
    if cfg.num_layers:
        parts.append(f"first {cfg.num_layers} layers")
    return ", ".join(parts)


# ---------------------------------------------------------------------- the recipe's steps
# (bench/quality.py runs the same steps on the other data sets)


def build_baseline(method: str, ds, *, sasrec_minutes: float, seed: int, sasrec_model: str | Path | None = None):
    """A baseline (popularity, last-item, sasrec) as the quickstart builds it, and the batch
    size it is evaluated with. SASRec trains for `sasrec_minutes` with `seed` on torch's
    threads, or is loaded from `sasrec_model` (``genrec evaluate --save-model``)."""
    import torch

    from .recommenders import build_method

    if method != "sasrec":
        return build_method(method, ds), 256
    if sasrec_model is not None:
        return build_method("sasrec", ds, {"model": str(sasrec_model)}), 256
    return build_method("sasrec", ds, {"max_minutes": sasrec_minutes, "seed": seed, "threads": torch.get_num_threads()}), 256


def evaluate_users(rec, ds, dest: Path | None, *, k_max: int, limit: int | None, seed: int, batch_size: int, progress=None,
                   name: str | None = None):
    """Rank the full catalogue for the seeded test users (`limit` of them, or all) as every
    method of the comparison does, ranking `k_max` deep, and write the evaluation to `dest`
    (unless None); `name` renames the method in its outputs. Returns the result."""
    from .evaluation import evaluate, write_eval

    result = evaluate(rec, ds, split="test", k_max=k_max, limit=limit, seed=seed, batch_size=batch_size, progress=progress)
    if name is not None:
        result.method = name
    if dest is not None:
        write_eval(result, dest)
    return result


def run_quickstart(plan: QuickstartPlan, say: Say = print, eval_progress=None, train_progress=None) -> dict:
    """Run the pipeline into ``plan.out``; returns the comparison (see ``genrec compare``)."""
    from ._io import KINDS, check_out, write_json
    from .data import Dataset, prepare, read_source
    from .evaluation import compare
    from .recommenders.genrec import GenRec

    out = check_out(plan.out, "quickstart", overwrite=plan.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    # marks the folder as a quickstart's from the start, so a rerun may replace it
    write_json(out / KINDS["quickstart"][0][0], {"plan": {k: str(v) for k, v in vars(plan).items()}})
    timings: dict[str, float] = {}
    t = time.perf_counter()
    data_dir = out / "data"
    say(f"1/5 prepare the bundled ml-latest-small → {data_dir}")
    prepare(read_source("bundled", None), data_dir)
    ds = Dataset(data_dir)
    timings["prepare"] = time.perf_counter() - t
    n_test = ds.manifest["examples"]["test"]
    if plan.users > n_test:
        raise GenrecError(f"--users {plan.users} is more than the {n_test} test users", f"use at most {n_test}")

    def run_eval(name: str, rec, batch_size: int) -> Path:
        t0 = time.perf_counter()
        dest = out / f"eval-{name}"
        # every method ranks as deep as beam search can (K <= beams), so the curves compare
        evaluate_users(rec, ds, dest, k_max=plan.beams, limit=plan.users, seed=plan.seed, batch_size=batch_size,
                       progress=eval_progress(name) if eval_progress else None)
        timings[f"evaluate {name}"] = time.perf_counter() - t0
        return dest

    say(f"2/5 popularity on {plan.users} test users")
    dirs = [run_eval("popularity", *build_baseline("popularity", ds, sasrec_minutes=plan.sasrec_minutes, seed=plan.seed))]

    say(f"3/5 SASRec: train for at most {plan.sasrec_minutes} min, then evaluate")
    t = time.perf_counter()
    sasrec = build_baseline("sasrec", ds, sasrec_minutes=plan.sasrec_minutes, seed=plan.seed)
    timings["train sasrec"] = time.perf_counter() - t
    dirs.append(run_eval("sasrec", *sasrec))

    from .training.config import from_preset
    from .training.loop import train

    cfg = from_preset(plan.preset, plan.backbone, plan.train_steps, plan.overrides)
    run_dir = out / "run"
    say(f"4/5 GenRec: fine-tuning {cfg.backbone} ({describe(cfg)}; {plan.preset} preset) for {cfg.max_steps} steps → {run_dir}")
    t = time.perf_counter()
    info = train(data_dir, run_dir, cfg, overwrite=True, progress=train_progress)
    timings["train genrec"] = time.perf_counter() - t

    say(f"5/5 GenRec: constrained beam search ({plan.beams} beams) on the same {plan.users} users")
    rec = GenRec.load(run_dir, ds, decode="beam", beams=plan.beams, batch_size=8)
    dirs.append(run_eval("genrec", rec, 16))

    comparison = compare(dirs, out / "comparison", seed=plan.seed)
    comparison["users"] = {"evaluated": plan.users, "test_users": n_test}
    comparison["timings"] = {k: round(v, 1) for k, v in timings.items()}
    comparison["genrec_training"] = {
        "steps": info["steps_done"], "examples": info["examples_seen"], "train_seconds": info["train_seconds"],
        "preset": plan.preset, "backbone": cfg.backbone, "method": describe(cfg),
    }
    return comparison
