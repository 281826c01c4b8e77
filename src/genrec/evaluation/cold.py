"""Cold start, measured: accuracy on test targets the training data never showed.

GenRec (Ji et al. 2023) names items by title, so it can in principle recommend an item
no training sequence contained, which an ID-based model (SASRec, P5 with ID tokens)
cannot: its embedding was never trained. Whether it does is an empirical question, and
an average over all users hides it because such targets are rare. This module splits a
ranking's users by whether the target is *cold* — it occurs in no user's training part
(neither as a history item nor as a training target; the validation and test items of
leave-one-out are not training data) — and reports HR/NDCG/MRR for the cold and warm
groups separately, with the same bootstrap intervals as the headline metrics.

Input is what ``genrec evaluate`` writes (``rankings.parquet``) or any ``(items,
targets)`` pair of catalogue indices; ``genrec cold-start EVAL_DIR`` prints the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from .._io import read_json
from ..errors import GenrecError
from .metrics import MRR_K, REPORTED_K, compute_metrics

#: metrics reported per group (MRR at 10 and at the list length; see ``metrics.mrr_cutoffs``)
KEYS = tuple(f"{m}@{k}" for k in REPORTED_K for m in ("hr", "ndcg")) + tuple(f"mrr@{k}" for k in sorted({MRR_K, *REPORTED_K}))


def cold_items(dataset) -> np.ndarray:
    """Boolean mask over the catalogue: True for items in no user's training part."""
    return dataset.item_popularity() == 0


def cold_start_metrics(items: np.ndarray, targets: np.ndarray, dataset, k_max: int | None = None,
                       n_resamples: int = 1000, seed: int = 0) -> dict:
    """HR/NDCG/MRR (with 95% bootstrap intervals) for all, cold-target and warm-target users.

    ``items``: (n, k) ranked catalogue indices (markers allowed), ``targets``: (n,) the
    held-out item of each row. A group with no users reports ``n_users: 0`` and no
    metrics.
    """
    items = np.asarray(items, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if items.ndim != 2 or items.shape[0] != targets.shape[0]:
        raise GenrecError(f"{items.shape} ranked lists do not match {targets.shape} targets", "pass one ranked list per target")
    n_items = len(dataset.catalogue)
    if targets.size and (targets.min() < 0 or targets.max() >= n_items):
        raise GenrecError(f"targets must be catalogue indices 0..{n_items - 1}", "evaluate on the dataset these rankings came from")
    k_max = k_max or items.shape[1]
    cold = cold_items(dataset)
    is_cold = cold[targets]
    out: dict = {
        "cold_items": int(cold.sum()),
        "catalogue_size": n_items,
        "cold_share_of_targets": float(is_cold.mean()) if targets.size else None,
    }
    for name, sel in (("all", np.ones(len(targets), bool)), ("cold", is_cold), ("warm", ~is_cold)):
        n = int(sel.sum())
        group: dict = {"n_users": n}
        if n:
            m = compute_metrics(items[sel], targets[sel], n_items, k_max=k_max, coverage_k=min(10, k_max),
                                n_resamples=n_resamples, seed=seed)
            keys = [*(k for k in KEYS if k in m), *(k for k in m if k.startswith("mrr@") and k not in KEYS)]
            group.update({k: m[k] for k in keys})
            group["ci"] = {k: m["ci"][k] for k in keys if k in m["ci"]}
        out[name] = group
    return out


def cold_start_from_eval(eval_dir: str | Path, dataset=None, n_resamples: int = 1000, seed: int = 0) -> dict:
    """:func:`cold_start_metrics` for a folder written by ``genrec evaluate``.

    The dataset defaults to the one recorded in its ``metrics.json``.
    """
    from ..data.dataset import Dataset

    eval_dir = Path(eval_dir)
    metrics_path, rankings_path = eval_dir / "metrics.json", eval_dir / "rankings.parquet"
    if not metrics_path.is_file() or not rankings_path.is_file():
        raise GenrecError(f"{eval_dir} is not an evaluation folder (needs metrics.json and rankings.parquet)",
                          "pass a folder written by `genrec evaluate --out`")
    summary = read_json(metrics_path)
    if dataset is None:
        path = (summary.get("settings") or {}).get("dataset_path")
        if not path:
            raise GenrecError(f"{metrics_path} does not record its dataset", "pass the dataset folder with --data")
        dataset = Dataset(path)
    elif not hasattr(dataset, "catalogue"):
        dataset = Dataset(dataset)
    if dataset.name != summary.get("dataset"):
        raise GenrecError(f"{eval_dir} evaluated {summary.get('dataset')!r}, not {dataset.name!r}", "pass the dataset it was evaluated on")
    r = pl.read_parquet(rankings_path, columns=["target", "items"])
    k = max((len(x) for x in r["items"].to_list()), default=0)
    items = np.array([row + [-1] * (k - len(row)) for row in r["items"].to_list()], dtype=np.int64).reshape(len(r), k)
    out = cold_start_metrics(items, r["target"].to_numpy(), dataset, n_resamples=n_resamples, seed=seed)
    return {"method": summary.get("method"), "dataset": dataset.name, "split": summary.get("split"), **out}
