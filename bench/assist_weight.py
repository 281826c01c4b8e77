"""Choose the weight of GenRec's decoding assistant on validation, and store it with the run.

    python bench/assist_weight.py ml-latest-small --run RUN --assist sasrec --weights 0,0.25,0.5,0.75,1

For each weight ``w`` (score = (1 - w) log p_LM + w log p_assist at every step of the
constrained beam search; D3's gamma is 1 - w) the run ranks the full catalogue for the
same seeded ``--users`` validation users (all when omitted); the weight with the best
validation NDCG@10 (ties: the smaller weight, i.e. more language model) is written to
``RUN/assist.json``, which ``GenRec(assist=...)`` then uses by default. The test split is
never read here. ``w = 0`` is the language model alone and ``w = 1`` the assistant
alone, so the table also shows what each adds to the other on validation.

``--mode rerank [--depth N]`` chooses the weight of rerank decoding instead (LlamaRec's
two stages: the assistant's top ``N`` items per user, each scored by the model, ranked by
the same fused score per item; ``genrec.decoding.rerank``). The model scores each user's
candidates once and every weight re-ranks those scores, so a grid costs one pass; the
lists are the ones ``GenRec.load(run, mode="rerank", assist=..., assist_weight=w,
rerank_depth=N)`` returns (a test holds the two to each other). The chosen weight is
stored under ``rerank:<assist>`` in ``RUN/assist.json``, with the depth.

``--mode bigrec`` chooses BIGRec's gamma for free decoding's bigrec grounding (the whole
catalogue ranked by ``(1 + P)^-gamma * D``, ``P`` the assistant's probabilities, ``D`` the
distance to the best generated output; ``--weights`` are gammas >= 0 then, BIGRec's grid
is 0, 1, ..., 99): the outputs and their distances are computed once and every gamma
re-ranks them, as ``GenRec.load(run, mode="free", grounding="bigrec", assist=...,
ground_weight=gamma)`` ranks. Stored under ``bigrec:<assist>``.

Writes ``OUT/assist-weight-<dataset>-<assist>[-rerank|-bigrec].{json,md}``; the last line is ``RESULT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, REPO, prepared  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--run", type=Path, required=True, help="a run folder written by `genrec train`")
    p.add_argument("--assist", choices=("sasrec", "popularity", "last-item"), default="sasrec")
    p.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    p.add_argument("--mode", choices=("beam", "rerank", "bigrec"), default="beam",
                   help="beam: the assistant fused at every step of beam search; rerank: the assistant's top --depth items scored "
                        "by the model; bigrec: free decoding's bigrec grounding, --weights are its gammas")
    p.add_argument("--depth", type=int, default=20, help="rerank: candidates per user (the assistant's top items)")
    p.add_argument("--users", type=int, default=None, help="a seeded subset of this many validation users (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beams", type=int, default=10)
    p.add_argument("--max-history", type=int, default=None, help="the history length of the data the run was trained on (default 10)")
    p.add_argument("--assist-minutes", type=float, default=5.0, help="SASRec's training budget when the run has no assistant yet")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--work", type=Path, default=Path("/tmp") / "genrec-quality")
    a = p.parse_args(argv)
    try:
        a.weights = sorted({float(w) for w in a.weights.split(",")})
    except ValueError:
        p.error(f"--weights {a.weights!r}: write numbers in [0, 1] separated by commas")
    if not a.weights or a.weights[0] < 0 or (a.weights[-1] > 1 and a.mode != "bigrec"):
        p.error("--weights must lie in [0, 1] (gammas of --mode bigrec: >= 0)")
    if a.depth < 10:
        p.error(f"--depth {a.depth}: rerank ranks 10 items per user, so it needs at least 10 candidates")
    if not (a.run / "run.json").is_file():
        p.error(f"--run {a.run} is not a run folder (no run.json); pass a folder written by `genrec train`")
    return a


def main(argv=None) -> None:
    a = parse_args(argv)
    from genrec._io import read_json, write_json
    from genrec.evaluation import evaluate
    from genrec.recommenders.assist import weight_key
    from genrec.recommenders.genrec import GenRec

    ds = prepared(a.dataset, a.work, a.max_history)
    n_valid = ds.manifest["examples"]["valid"]
    users = min(a.users or n_valid, n_valid)
    rows = rerank_grid(a, ds, users) if a.mode == "rerank" else bigrec_grid(a, ds, users) if a.mode == "bigrec" else []
    for w in a.weights if a.mode == "beam" else ():
        t0 = time.perf_counter()
        rec = GenRec.load(a.run, ds, beams=a.beams, assist=a.assist if w > 0 else None, assist_weight=w,
                          assist_minutes=a.assist_minutes)
        result = evaluate(rec, ds, split="valid", k_max=a.beams, limit=users if users < n_valid else None, seed=a.seed, batch_size=8)
        m = result.metrics
        rows.append({"weight": w, "hr@10": m["hr@10"], "ndcg@10": m["ndcg@10"], "seconds": round(time.perf_counter() - t0, 1)})
        print(f"w={w:g}  valid HR@10 {m['hr@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}  ({rows[-1]['seconds']} s)", flush=True)
        del rec
    best = max(rows, key=lambda r: (r["ndcg@10"], -r["weight"]))
    command = " ".join(["python bench/assist_weight.py", *(argv if argv is not None else sys.argv[1:])])
    stored_path = a.run / "assist.json"
    stored = read_json(stored_path) if stored_path.is_file() else {}
    entry = {"weight": best["weight"], "metric": "ndcg@10", "split": "valid", "users": users, "seed": a.seed,
             "grid": rows, "command": command}
    if a.mode == "rerank":
        entry["depth"] = a.depth
    stored[weight_key(a.assist, a.mode)] = entry
    write_json(stored_path, stored)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / (f"assist-weight-{a.dataset}-{a.assist}" + (f"-{a.mode}" if a.mode != "beam" else ""))
    stem.with_suffix(".json").write_text(json.dumps({"command": command, "users": users, "grid": rows, "chosen": best["weight"]}, indent=2))
    how = {"rerank": f"rerank decoding, the assistant's top {a.depth} items", "beam": "fused into beam search",
           "bigrec": "free decoding's bigrec grounding, the weight is its gamma"}[a.mode]
    lines = [f"# {a.assist} assistant weight on {a.dataset} ({users} validation users; {how})", "", f"`{command}`", "",
             "| weight w | valid HR@10 | valid NDCG@10 |", "|---:|---:|---:|"]
    lines += [f"| {r['weight']:g}{' (chosen)' if r is best else ''} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} |" for r in rows]
    if a.mode == "bigrec":
        lines += ["", f"The best output was a catalogue title for {1 - rows[0]['invalid_share']:.4f} of the users; generating "
                  f"and embedding took {rows[0]['lm_seconds']} s."]
    if a.mode == "rerank":
        lines += ["", f"The target is among the {a.depth} candidates for {rows[0]['recall']:.4f} of the users "
                  f"(the most HR@10 any weight can reach); the model scored them in {rows[0]['lm_seconds']} s."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"RESULT chosen_weight={best['weight']} valid_ndcg10={best['ndcg@10']:.4f} valid_hr10={best['hr@10']:.4f}")


def rerank_grid(a: argparse.Namespace, ds, users: int) -> list[dict]:
    """Validation HR@10 / NDCG@10 of rerank decoding at each weight, the model's scores
    of each user's candidates computed once (``genrec.decoding.rerank``'s own stages)."""
    import numpy as np

    from genrec.decoding.exact import score_items
    from genrec.decoding.rerank import allowed_items, fused_scores, rerank_candidates
    from genrec.ranking import rank_lists
    from genrec.recommenders.assist import Assistant
    from genrec.recommenders.genrec import GenRec

    rec = GenRec.load(a.run, ds)  # the language model; its trie holds the live items
    assistant = Assistant.for_run(a.assist, a.run, ds, a.assist_minutes)
    histories, targets, exclude = validation_users(ds, users, a.seed)  # seen items excluded, as evaluate does
    assist = assistant.distribution(histories, len(rec.codec))
    cands = rerank_candidates(rec.trie, assist, a.depth, exclude)
    recall = float(np.mean([t in c for t, c in zip(targets, cands, strict=True)]))
    lm, t0 = [], time.perf_counter()
    for u, (h, c) in enumerate(zip(histories, cands, strict=True)):
        lm.append(score_items(rec.model, rec.codec, rec.prompt_ids(h), c.tolist()))
        if (u + 1) % 25 == 0 or u + 1 == len(histories):
            print(f"scored {u + 1}/{len(histories)} users' candidates ({time.perf_counter() - t0:.0f} s)", flush=True)
    seconds = round(time.perf_counter() - t0, 1)
    allowed = [allowed_items(rec.trie, e) for e in exclude]
    rows = []
    for w in a.weights:
        scores = [fused_scores(c, s, assist[u], allowed[u], w) for u, (c, s) in enumerate(zip(cands, lm, strict=True))]
        rows.append(grid_row("w", w, rank_lists(cands, scores, 10).items, targets, recall=recall, lm_seconds=seconds))
    return rows


def bigrec_grid(a: argparse.Namespace, ds, users: int) -> list[dict]:
    """Validation HR@10 / NDCG@10 of the bigrec grounding at each gamma: each user's best
    output and its distances computed once (``FreeDecoder``'s own steps), every gamma
    re-ranking them."""
    from genrec.decoding.free import bigrec_scores
    from genrec.ranking import top_k_from_scores
    from genrec.recommenders.assist import Assistant
    from genrec.recommenders.genrec import GenRec

    rec = GenRec.load(a.run, ds, mode="free", grounding="bigrec", beams=a.beams, ground_weight=0.0)
    free = rec.decoder_for(rec.decoding).free
    histories, targets, exclude = validation_users(ds, users, a.seed)
    t0 = time.perf_counter()
    print(f"embedding {len(rec.codec):,} titles", flush=True)
    free.title_embeddings()
    best, not_titles = [], 0
    for lo in range(0, len(histories), 25):
        best += free.best_outputs([rec.prompt_ids(h) for h in histories[lo:lo + 25]])
        not_titles += free.last_stats["not_in_catalogue"]
        print(f"generated {min(lo + 25, len(histories))}/{len(histories)} users' outputs ({time.perf_counter() - t0:.0f} s)", flush=True)
    invalid = not_titles / len(best)
    dist = free.bigrec_distances(best)
    seconds = round(time.perf_counter() - t0, 1)
    assist = Assistant.for_run(a.assist, a.run, ds, a.assist_minutes).distribution(histories, len(rec.codec))
    rows = []
    for gamma in a.weights:
        top = top_k_from_scores(-bigrec_scores(dist, assist, gamma), 10, exclude=exclude).items
        rows.append(grid_row("gamma", gamma, top, targets, invalid_share=invalid, lm_seconds=seconds))
    return rows


def grid_row(name: str, weight: float, top10, targets, **extra) -> dict:
    """One grid row: validation HR@10 and NDCG@10 of the top-10 lists at `weight` (printed)."""
    from genrec.ranking import per_user

    pu = per_user(top10, targets)
    row = {"weight": weight, "hr@10": float(pu.hits(10)[:, 9].mean()), "ndcg@10": float(pu.ndcgs(10)[:, 9].mean()), **extra}
    print(f"{name}={weight:g}  valid HR@10 {row['hr@10']:.4f}  NDCG@10 {row['ndcg@10']:.4f}", flush=True)
    return row


def validation_users(ds, users: int, seed: int):
    """The seeded validation users evaluate() draws: full histories, targets, seen items to exclude."""
    from genrec.evaluation.evaluate import full_histories, select_examples

    ex = select_examples(ds, "valid", users if users < ds.manifest["examples"]["valid"] else None, seed)
    histories = full_histories(ds, ex["user_id"].to_list(), ex["position"].to_numpy())
    return histories, ex["target"].to_numpy(), [sorted(set(int(i) for i in h)) for h in histories]


if __name__ == "__main__":
    main()
