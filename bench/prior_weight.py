"""Prior correction (PMI scoring) for an item-token GenRec run, measured on validation.

Issue 11, item 3(a): does subtracting the model's history-free preference help a model
that reads the history? The corrected score of item i after history h is

    log p(i | h) − λ · log p(i | no history)

(λ = 0: the model as it is; λ = 1: pointwise mutual information). With item tokens
(``item_repr=item-token``) an item is one token, so both terms come from one forward pass
each: the next-token log-probabilities at the end of the prompt, over the item tokens.
The response's closing EOS (one more factor of the beam search's score, close to 1 after
an item token) is left out of both; the λ = 0 row is printed beside the run's own
constrained beam search on the same users, so what that leaves out is visible.

    python bench/prior_weight.py DATASET --run RUN [--weights 0,0.1,0.2,0.3,0.5] [--users 671]

Writes ``OUT/prior-weight-<dataset>.{json,md}``: HR@10 and NDCG@10 per λ on the seeded
validation users, the distinct items in all top-10 lists and the share of lists that hold
the commonest item. Settings are chosen on validation only; the test split is not read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, prepared  # noqa: E402  (the same prepared data as bench/quality.py)

from genrec.recommenders.base import DenseScorer  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--run", type=Path, required=True, help="a run trained with item_repr=item-token")
    p.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,1")
    p.add_argument("--users", type=int, default=None, help="a seeded subset of this many validation users (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beams", type=int, default=10, help="the beam search the λ = 0 row is compared with")
    p.add_argument("--max-history", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--work", type=Path, default=Path("/tmp/genrec-quality"))
    a = p.parse_args(argv)
    a.weights = [float(w) for w in a.weights.split(",")]
    return a


class ItemTokenLogProbs:
    """Next-token log-probabilities over the item tokens at the end of each history's prompt,
    computed once per history (every λ ranks the same histories) and for the empty history."""

    def __init__(self, rec, batch: int = 16):
        codec = rec.codec
        if codec.item_token_start is None:
            raise SystemExit(f"error: {rec.path} does not write items as tokens (item_repr=item-token); "
                             "this measurement needs one token per item")
        self.rec, self.batch = rec, batch
        self.first, self.n = codec.item_token_start, len(codec)
        self._done: dict[tuple[int, ...], np.ndarray] = {}
        self.prior = self(([],))[0]

    def _pass(self, prompts) -> np.ndarray:
        import torch

        from genrec.decoding._lm import prompt_pass

        with torch.inference_mode():
            logp, *_ = prompt_pass(self.rec.model, prompts, self.rec.codec.pad_id)
        return logp[:, self.first:self.first + self.n].double().numpy()

    def __call__(self, histories) -> np.ndarray:
        todo = list(dict.fromkeys(tuple(h) for h in histories if tuple(h) not in self._done))
        for s in range(0, len(todo), self.batch):
            chunk = todo[s:s + self.batch]
            for h, row in zip(chunk, self._pass([self.rec.prompts.prompt_ids(list(h)) for h in chunk]), strict=True):
                self._done[h] = row
        return np.stack([self._done[tuple(h)] for h in histories])


class PriorCorrected(DenseScorer):
    """Dense scores log p(i | h) − λ · log p(i | no history) of an item-token run."""

    def __init__(self, logp: ItemTokenLogProbs, weight: float):
        self.logp, self.weight = logp, weight
        self.name = f"prior-{weight:g}"

    def fit(self, dataset):
        return self

    def score_all(self, histories):
        return self.logp(histories) - self.weight * self.logp.prior


def collapse(items: np.ndarray) -> tuple[int, float]:
    """Distinct items in all top-10 lists, and the share of lists holding the commonest one."""
    top = items[:, :10]
    valid = top[top >= 0]
    if not valid.size:
        return 0, 0.0
    ids, counts = np.unique(valid, return_counts=True)
    return int(ids.size), float(counts.max() / len(top))


def main(argv=None) -> None:
    a = parse_args(argv)
    from genrec.evaluation import evaluate
    from genrec.recommenders.genrec import GenRec

    ds = prepared(a.dataset, a.work, a.max_history)
    n_valid = ds.manifest["examples"]["valid"]
    users = min(a.users or n_valid, n_valid)
    limit = users if users < n_valid else None
    rec = GenRec.load(a.run, ds, decode="beam", beams=a.beams, batch_size=8)
    rows = []
    t0 = time.perf_counter()
    beam = evaluate(rec, ds, split="valid", k_max=10, limit=limit, seed=a.seed, batch_size=8)
    rows.append({"weight": None, "method": f"constrained beam search ({a.beams} beams)", "hr@10": beam.metrics["hr@10"],
                 "ndcg@10": beam.metrics["ndcg@10"], "seconds": round(time.perf_counter() - t0, 1),
                 **dict(zip(("distinct", "commonest_share"), collapse(beam.items), strict=True))})
    print(f"beam: valid HR@10 {rows[-1]['hr@10']:.4f}  NDCG@10 {rows[-1]['ndcg@10']:.4f}", flush=True)
    logp = ItemTokenLogProbs(rec)
    for w in a.weights:
        t0 = time.perf_counter()
        scorer = PriorCorrected(logp, w)
        result = evaluate(scorer, ds, split="valid", k_max=10, limit=limit, seed=a.seed, batch_size=16)
        distinct, share = collapse(result.items)
        rows.append({"weight": w, "method": f"prior-corrected, λ = {w:g}", "hr@10": result.metrics["hr@10"],
                     "ndcg@10": result.metrics["ndcg@10"], "seconds": round(time.perf_counter() - t0, 1),
                     "distinct": distinct, "commonest_share": share})
        print(f"λ={w:g}: valid HR@10 {rows[-1]['hr@10']:.4f}  NDCG@10 {rows[-1]['ndcg@10']:.4f}  "
              f"{distinct} distinct, commonest in {share:.1%}  ({rows[-1]['seconds']} s)", flush=True)
    graded = [r for r in rows if r["weight"] is not None]
    best = max(graded, key=lambda r: (r["ndcg@10"], -r["weight"]))
    command = " ".join(["python bench/prior_weight.py", *(argv if argv is not None else sys.argv[1:])])
    out = {"dataset": a.dataset, "run": str(a.run), "users": users, "of_valid_users": n_valid, "seed": a.seed,
           "command": command, "rows": rows, "chosen_weight": best["weight"]}
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"prior-weight-{a.dataset}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2))
    lines = [f"# Prior correction on {a.dataset} ({users} validation users, seed {a.seed})", "", f"`{command}`", "",
             "| scoring | valid HR@10 | valid NDCG@10 | distinct items in top-10 lists | lists with the commonest item |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        chosen = " (chosen)" if r is best else ""
        lines.append(f"| {r['method']}{chosen} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['distinct']:,} | "
                     f"{r['commonest_share']:.1%} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
