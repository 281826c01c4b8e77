"""Quality of every method on one real data set, on the same test users, reproducibly.

    python bench/quality.py DATASET [--methods popularity,last-item,sasrec,genrec-beam] [--out bench/results]

DATASET: ``ml-latest-small`` (bundled), ``ml-100k`` and ``ml-1m`` (RecBole files in
../shared/data), ``amazon-toys`` (GenRec's released JSON in ../shared/data). The data are
prepared with leave-one-out splits; every method ranks the full catalogue (seen items
excluded) for the same seeded subset of ``--users`` test users (all when omitted).

Methods: ``popularity``, ``last-item`` (BM25 on titles), ``sasrec`` (trained within
``--sasrec-minutes``), ``genrec-beam`` / ``genrec-exact`` / ``genrec-free`` (one LoRA run
of ``--backbone`` with the ``--preset`` preset for ``--genrec-steps`` optimizer steps on
at most ``--train-users`` users, decoded three ways), and ``genrec-id`` (the same training
with random item IDs instead of titles), and ``genrec-assisted`` (beam decoding with a text-free
assistant fused at every step, ``--assist``, at the weight ``bench/assist_weight.py`` chose on
validation and stored with the run), and ``genrec-rerank`` (rerank decoding: the
``--assist`` assistant's top ``--rerank-depth`` items scored by the model, at the weight
``bench/assist_weight.py --mode rerank`` stored), and ``genrec-bigrec`` (free decoding with
BIGRec's grounding: the catalogue ranked by distance to the best output, tilted by the
``--assist`` assistant at the gamma ``--mode bigrec`` stored). ``--genrec-run`` reuses a trained run instead.

Writes ``OUT/quality-<dataset>.json`` (method name → its metrics.json, plus
``settings``), ``OUT/quality-<dataset>.md`` (the table with 95% intervals) and
``OUT/quality-<dataset>.png`` (HR@K and NDCG@K against K). The ``quality-`` prefix keeps
result files from being mistaken for the MovieLens 100K/1M releases themselves. Intermediate folders go to ``--work`` (kept: a rerun reuses the
prepared data and the trained runs with the same settings, and evaluates again). The last line is
``RESULT`` with each method's HR@10. Same arguments and seed → same figures. ``--reuse
METHODS`` reads those methods' evaluations from ``--work`` (same users and seed, checked)
and evaluates the rest, so a method added later joins the table and its paired tests
(each GenRec variant against popularity, last-item and SASRec) without rerunning the others.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DATASETS = {
    "ml-latest-small": ("bundled", None),
    "ml-100k": ("recbole", SHARED / "ml-100k"),
    "ml-1m": ("recbole", SHARED / "ml-1m"),
    "amazon-toys": ("genrec-json", SHARED / "amazon-toys-genrec"),
}
METHODS = ("popularity", "last-item", "sasrec", "genrec-beam", "genrec-exact", "genrec-free", "genrec-id", "genrec-assisted",
           "genrec-rerank", "genrec-bigrec")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "genrec-quality")
    p.add_argument("--users", type=int, default=None, help="evaluate on a seeded subset of this many test users")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sasrec-minutes", type=float, default=5.0)
    p.add_argument("--sasrec-model", type=Path, default=None,
                   help="evaluate this saved SASRec (genrec evaluate --method sasrec --save-model) instead of training one; "
                        "put the same folder in RUN/assistant-sasrec to compare SASRec alone with the fused decoding")
    p.add_argument("--backbone", default="smollm2-135m")
    p.add_argument("--preset", default="cpu-titles", help="preset of the runs quality.py trains itself (titles or random IDs)")
    p.add_argument("--genrec-steps", type=int, default=60)
    p.add_argument("--train-users", type=int, default=None, help="train GenRec on a seeded subset of this many users")
    p.add_argument("--genrec-run", type=Path, default=None, help="evaluate this trained run instead of training one")
    p.add_argument("--beams", type=int, default=10)
    p.add_argument("--from-evals", action="store_true",
                   help="rebuild the tables from the evaluations an earlier run left in --work (nothing is trained or evaluated)")
    p.add_argument("--reuse", default="",
                   help="comma-separated methods whose evaluation an earlier run left in --work is read instead of run again "
                        "(the same test users are checked); the others are evaluated")
    p.add_argument("--max-history", type=int, default=None,
                   help="prepare the data with histories of up to this many items (default 10; a run trained on such data needs it)")
    p.add_argument("--assist", choices=("sasrec", "popularity", "last-item"), default="sasrec",
                   help="genrec-assisted: the assistant fused into beam decoding, at the weight stored with the run "
                        "(chosen on validation by bench/assist_weight.py); genrec-rerank: the assistant proposing candidates")
    p.add_argument("--rerank-depth", type=int, default=20, help="genrec-rerank: the assistant's top items the model scores")
    p.add_argument("--max-expansions", type=int, default=2000, help="node budget of exact decoding per user")
    a = p.parse_args(argv)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    a.methods = methods
    a.reuse = [m.strip() for m in a.reuse.split(",") if m.strip()]
    if set(a.reuse) - set(methods):
        p.error(f"--reuse {','.join(sorted(set(a.reuse) - set(methods)))}: reuse only methods named in --methods")
    if a.genrec_run is not None and not (a.genrec_run / "adapter").is_dir():
        p.error(f"--genrec-run {a.genrec_run} has no adapter/ folder; pass a run folder written by `genrec train`")
    return a


def prepared(name: str, work: Path, max_history: int | None = None):
    """The data set prepared once under `work` (histories of up to `max_history` items; default 10)."""
    from genrec.data import Dataset, prepare, read_source
    from genrec.data.dataset import PrepareConfig

    fmt, path = DATASETS[name]
    if path is not None and not path.exists():
        sys.exit(f"error: {path} does not exist; {name} is read from ../shared/data beside the repository")
    data = work / name / ("data" if max_history is None else f"data-h{max_history}")
    if not (data / "manifest.json").is_file():
        print(f"preparing {name} → {data}", flush=True)
        prepare(read_source(fmt, path), data, PrepareConfig() if max_history is None else PrepareConfig(max_history=max_history))
    return Dataset(data)


def train_run(ds, run: Path, a: argparse.Namespace, item_repr: str) -> dict:
    from genrec.training.config import from_preset
    from genrec.training.loop import train

    overrides = [f"item_repr={item_repr}"]  # training keeps the preset's own seed
    if a.train_users:
        overrides.append(f"max_users={a.train_users}")
    cfg = from_preset(a.preset, a.backbone, a.genrec_steps, overrides)
    settings = {"backbone": cfg.backbone, "preset": a.preset, "steps": a.genrec_steps, "train_users": a.train_users,
                "item_repr": item_repr}
    done = run / "bench-settings.json"
    if (run / "adapter").is_dir() and done.is_file():
        before = json.loads(done.read_text())
        if {k: v for k, v in before.items() if k != "train_seconds"} == settings:
            print(f"reusing {run}", flush=True)
            return before
    print(f"training {item_repr} GenRec ({cfg.backbone}, {a.preset} preset, {a.genrec_steps} steps) → {run}", flush=True)

    def progress(e):
        if e["kind"] == "train" and e["step"] % 10 == 0:
            print(f"  step {e['step']}  loss {e['loss']:.3f}  {e['tokens_per_second']:.0f} tok/s", flush=True)

    info = train(ds.path, run, cfg, overwrite=True, progress=progress)
    settings["train_seconds"] = round(info["train_seconds"], 1)
    done.write_text(json.dumps(settings))
    return settings


def described_run(run: Path) -> dict:
    """What a run given with --genrec-run was trained with (from its run.json and config.yaml)."""
    from genrec.training.rundir import RunDir

    rd = RunDir(run)
    info, cfg = rd.info(), rd.config()
    return {"run": str(run), "trained_elsewhere": True, "backbone": info["backbone"]["name"], "steps": info.get("steps_done"),
            "examples_seen": info.get("examples_seen"), "train_seconds": info.get("train_seconds"),
            "template": cfg.template, "loss_on": cfg.loss_on, "lr": cfg.lr, "lora_r": cfg.lora.r,
            "train_users": cfg.max_users, "item_repr": cfg.item_repr, "finetune": cfg.finetune, "num_layers": cfg.num_layers}


def main(argv=None) -> None:
    a = parse_args(argv)
    import torch

    from genrec.evaluation import compare, write_eval
    from genrec.evaluation.metrics import rename_legacy_mrr
    from genrec.quickstart import build_baseline, evaluate_users
    from genrec.recommenders.genrec import GenRec

    work = a.work / a.dataset
    ds = prepared(a.dataset, a.work, a.max_history)
    n_test = ds.manifest["examples"]["test"]
    users = a.users or n_test
    settings: dict = {"command": " ".join(["python bench/quality.py", *(argv if argv is not None else sys.argv[1:])]),
                      "dataset": a.dataset, "users": users, "of_test_users": n_test, "seed": a.seed,
                      "methods": a.methods, "sasrec_minutes": a.sasrec_minutes, "beams": a.beams,
                      "sasrec_model": str(a.sasrec_model) if a.sasrec_model else None,
                      "exact_max_expansions": a.max_expansions, "threads": torch.get_num_threads(), "assist": a.assist,
                      "max_history": a.max_history or 10}
    runs: dict[str, Path] = {}
    earlier = a.out / f"quality-{a.dataset}.json"
    if a.from_evals:  # what was trained for the evaluations being read
        before = json.loads(earlier.read_text())["settings"] if earlier.is_file() else {}
        settings.update({k: before[k] for k in ("genrec", "genrec-id", "threads", "command") if k in before})
    elif any(m.startswith("genrec-") and m != "genrec-id" for m in a.methods):
        if a.genrec_run:
            runs["title"] = a.genrec_run
            settings["genrec"] = described_run(a.genrec_run)
        else:
            runs["title"] = work / "run-title"
            settings["genrec"] = train_run(ds, runs["title"], a, "title")
    if "genrec-id" in a.methods and not a.from_evals:
        runs["random-id"] = work / "run-random-id"
        settings["genrec-id"] = train_run(ds, runs["random-id"], a, "random-id")

    def build(method: str):
        if method in ("popularity", "last-item", "sasrec"):  # as the quickstart builds them
            return build_baseline(method, ds, sasrec_minutes=a.sasrec_minutes, seed=a.seed, sasrec_model=a.sasrec_model)
        decode = "beam" if method in ("genrec-id", "genrec-assisted") else method.removeprefix("genrec-")
        run = runs["random-id" if method == "genrec-id" else "title"]
        assist = {"assist": a.assist, "assist_minutes": a.sasrec_minutes} if method in ("genrec-assisted", "genrec-rerank") else {}
        if method == "genrec-rerank":
            assist["rerank_depth"] = a.rerank_depth
        if method == "genrec-bigrec":
            return GenRec.load(run, ds, decode="free", grounding="bigrec", beams=a.beams, batch_size=8, assist=a.assist,
                               assist_minutes=a.sasrec_minutes), 8
        return GenRec.load(run, ds, decode=decode, beams=a.beams, batch_size=8, max_expansions=a.max_expansions, **assist), 8

    results, dirs = {}, []
    for method in a.methods:
        dest = work / f"eval-{method}"
        t0 = time.perf_counter()
        print(f"{method}: build and evaluate on {users} test users", flush=True)
        if a.from_evals or method in a.reuse:
            flag = "--from-evals" if a.from_evals else "--reuse"
            if not (dest / "metrics.json").is_file():
                sys.exit(f"error: {flag}: {dest} holds no evaluation; run without {flag} first")
            # an evaluation from before metric names carried their cut-off: mrr -> mrr@<k_max>
            results[method] = rename_legacy_mrr(json.loads((dest / "metrics.json").read_text()))
            earlier_users = results[method].get("n_users")
            if not a.from_evals and (earlier_users != users or results[method]["settings"].get("seed") != a.seed):
                sys.exit(f"error: --reuse {method}: {dest} ranked {earlier_users} users with seed "
                         f"{results[method]['settings'].get('seed')}, not {users} with seed {a.seed}; evaluate it again")
            dirs.append(dest)
            continue
        rec, batch = build(method)
        last = [0.0]

        def progress(done, total, t0=t0, last=last):
            if time.perf_counter() - last[0] > 30 or done >= total:
                last[0] = time.perf_counter()
                print(f"  {done}/{total} users, {time.perf_counter() - t0:.0f} s", flush=True)

        # the quickstart's evaluation: every method ranks as deep as beam search can (K <= beams), so
        # the curves compare; the bench's name for the method (genrec-beam, not genrec) in its outputs
        result = evaluate_users(rec, ds, None, k_max=a.beams, limit=users if users < n_test else None, seed=a.seed,
                                batch_size=batch, progress=progress, name=method)
        result.metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)  # building/training included
        write_eval(result, dest)
        results[method] = json.loads((dest / "metrics.json").read_text())
        dirs.append(dest)
        del rec

    a.out.mkdir(parents=True, exist_ok=True)
    results["settings"] = settings
    stem = a.out / f"quality-{a.dataset}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    paired = {}
    if len(dirs) >= 2:
        cmp_dir = work / "comparison"
        compare(dirs, cmp_dir, seed=a.seed)
        shutil.copyfile(next(cmp_dir.glob("*.png")), stem.with_suffix(".png"))
        # every GenRec variant against each baseline it should beat, on the same users
        for base in ("popularity", "last-item", "sasrec"):
            others = [d for m, d in zip(a.methods, dirs, strict=True) if m.startswith("genrec")]
            if base in a.methods and others:
                vs = compare([dirs[a.methods.index(base)], *others], work / f"comparison-vs-{base}", seed=a.seed)
                paired[base] = vs["paired"]
        results["paired"] = paired
        stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    table = markdown(results, settings)
    stem.with_suffix(".md").write_text(table)
    print(table)
    print("RESULT " + " ".join(f"{m}_hr10={results[m]['hr@10']:.4f}" for m in a.methods))


def markdown(results: dict, settings: dict) -> str:
    s = settings
    lines = [
        f"### {s['dataset']}: {s['users']:,} of {s['of_test_users']:,} test users (seed {s['seed']}), "
        "leave-one-out, full-catalogue ranking, seen items excluded",
        "",
        "| method | HR@5 | NDCG@5 | HR@10 [95% CI] | NDCG@10 [95% CI] | MRR@10 | valid | coverage | users/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in s["methods"]:
        r = results[m]
        ci = r.get("ci", {})

        def cell(key, r=r, ci=ci):
            lo_hi = ci.get(key)
            return f"{r[key]:.4f}" + (f" [{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else "")

        lines.append(f"| {m} | {r['hr@5']:.4f} | {r['ndcg@5']:.4f} | {cell('hr@10')} | {cell('ndcg@10')} | {r.get('mrr@10', float('nan')):.4f} "
                     f"| {r['valid_rate']:.1%} | {r['coverage']:.3f} | {r['users_per_second']:.2f} |")
    lines.append("")
    budget = ([f"SASRec loaded from {s['sasrec_model']}" if s.get("sasrec_model") else f"SASRec trained for at most {s['sasrec_minutes']} min"]
              if "sasrec" in s["methods"] else [])
    for key in ("genrec", "genrec-id"):
        g = s.get(key)
        if g and not g.get("trained_elsewhere"):
            budget.append(f"{key}: {g['backbone']} + LoRA ({g['preset']} preset), {g['steps']} steps"
                          + (f" on {g['train_users']} users" if g.get("train_users") else "")
                          + (f", {g['train_seconds'] / 60:.1f} min" if "train_seconds" in g else ""))
        elif g:
            how = (f"LoRA r={g['lora_r']}" if g.get("finetune", "lora") == "lora" else "full fine-tuning") + (
                f", first {g['num_layers']} layers" if g.get("num_layers") else "")
            budget.append(f"{key}: an earlier run of {g['backbone']} ({how}, items as {g['item_repr']}, lr {g['lr']}, "
                          f"{g['template']} template, loss on {g['loss_on']}), {g['steps']} steps on {g['examples_seen']:,} examples"
                          + (f", {g['train_seconds'] / 60:.1f} min" if g.get("train_seconds") else ""))
    lines.append("valid: share of the returned list entries that are catalogue items (free decoding writes text, and "
                 "only exact catalogue titles count); coverage: share of the catalogue in anyone's top 10.")
    lines.append("")
    if any(m.startswith("genrec") for m in s["methods"]):
        budget.append(f"{s['beams']} beams")
    if "genrec-assisted" in s["methods"]:
        w = results["genrec-assisted"]["settings"]["method_config"].get("assist_weight")
        budget.append(f"genrec-assisted: {s.get('assist', 'sasrec')} assistant at weight {w} (chosen on validation, "
                      "stored with the run)")
    if "genrec-bigrec" in s["methods"]:
        c = results["genrec-bigrec"]["settings"]["method_config"]
        budget.append(f"genrec-bigrec: free decoding ({s['beams']} beams), the catalogue ranked by distance to the best output, "
                      f"tilted by the {c.get('assist')} assistant at gamma {c.get('ground_weight')} (chosen on validation)")
    if "genrec-rerank" in s["methods"]:
        c = results["genrec-rerank"]["settings"]["method_config"]
        budget.append(f"genrec-rerank: the {c.get('assist')} assistant's top {c.get('rerank_depth')} items scored by the model, "
                      f"fused at weight {c.get('assist_weight')} (chosen on validation, stored with the run)")
    if "genrec-exact" in s["methods"]:
        budget.append(f"exact decoding budget {s['exact_max_expansions']} expansions per user")
    lines.append("Budgets: " + "; ".join(budget + [f"{s['threads']} threads"]) + ".")
    for base, rows in results.get("paired", {}).items():
        lines += ["", f"Paired differences against {base} (same users; 95% bootstrap CI, two-sided p; McNemar for HR):", "",
                  "| method | HR@10 difference [95% CI] | p | p (McNemar) | NDCG@10 difference [95% CI] | p |",
                  "|---|---|---:|---:|---|---:|"]
        for m, d in rows.items():
            h, n = d["hr@10"], d["ndcg@10"]
            lines.append(f"| {m} | {h['diff']:+.4f} [{h['ci'][0]:+.4f}, {h['ci'][1]:+.4f}] | {h['p_value']:.4f} | "
                         f"{h.get('mcnemar', {}).get('p_value', float('nan')):.4f} | "
                         f"{n['diff']:+.4f} [{n['ci'][0]:+.4f}, {n['ci'][1]:+.4f}] | {n['p_value']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
