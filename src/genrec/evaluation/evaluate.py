"""Run a recommender over a split's users and score its full-catalogue rankings.

The protocol is the one DESIGN.md asks for: every user with a target in the split gets a
top-``k_max`` list over the whole catalogue (no sampled negatives, Krichene & Rendle
2020), items the user has already interacted with are excluded by default (as in SASRec
and P5's full-ranking evaluation), and metrics are computed on item indices
(:mod:`genrec.evaluation.metrics`).

Histories: by default a method receives each user's *whole* prefix before the target
(``history="full"``), so seen-item exclusion covers everything the user saw; methods
truncate to what they use (SASRec its last 200 items, the LLM its prompt window).
``history="window"`` passes the capped history stored in the dataset's examples instead
(exclusion then covers only that window).

Under ``torchrun``/``accelerate launch`` users are sharded round-robin across processes
(see :mod:`genrec.evaluation.distributed`) and rank 0 computes the metrics from the
gathered rows, which equal a single process's. Each process runs its method on its own
GPU when there are GPUs (``distributed.init``, before the method is built, makes
Accelerate's per-process device the current one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .._version import __version__
from ..errors import GenrecError
from ..ranking import NO_ITEM
from ..recommenders.base import IndexRecommender
from . import distributed
from .metrics import compute_metrics

Split = Literal["valid", "test"]
HistoryMode = Literal["full", "window"]
#: progress(done, total): called on rank 0 with done=0 just before the first batch (where
#: the clock of users/s starts) and after every batch
Progress = Callable[[int, int], None]


@dataclass
class EvalResult:
    """Everything one evaluation produced; :func:`write_eval` turns it into files."""

    method: str
    dataset: str
    split: str
    settings: dict
    user_ids: list[str]
    positions: np.ndarray  # (n,) target's index in the user's sequence
    targets: np.ndarray  # (n,) catalogue index of the held-out item
    items: np.ndarray  # (n, k_max) ranked catalogue indices / markers
    scores: np.ndarray  # (n, k_max)
    metrics: dict  # compute_metrics output (scalars, curves, ci)
    seconds: float  # wall time from the first recommend() call to the gathered lists (fit excluded)
    item_ids: list[str] = field(repr=False, default_factory=list)
    titles: list[str] = field(repr=False, default_factory=list)

    @property
    def n_users(self) -> int:
        return len(set(self.user_ids))

    @property
    def users_per_second(self) -> float:
        return len(self.targets) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict:
        """The content of ``metrics.json``: flat headline metrics first, then details."""
        m = self.metrics
        k_max = self.settings["k_max"]
        cov_key = f"coverage@{min(10, k_max)}"
        out = {
            "method": self.method,
            "dataset": self.dataset,
            "split": self.split,
            "n_users": self.n_users,
            "n_examples": int(len(self.targets)),
        }
        for key, value in m.items():
            if key not in ("curves", "ci", "ci_settings", "n_users"):
                out[key] = value
        out["coverage"] = m.get(cov_key)
        out["users_per_second"] = round(self.users_per_second, 3)
        out["seconds"] = round(self.seconds, 3)
        out["ci"] = m["ci"]
        out["ci_settings"] = m["ci_settings"]
        out["k"] = m["curves"]["k"]
        out["hr@k"] = m["curves"]["hr"]
        out["ndcg@k"] = m["curves"]["ndcg"]
        out["settings"] = self.settings
        out["genrec_version"] = __version__
        return out


def select_examples(dataset, split: Split, limit: int | None, seed: int):
    """The split's examples, or those of a seeded random subset of `limit` users (source order kept)."""
    ex = dataset.examples(split)
    if ex.height == 0:
        raise GenrecError(f"the {split} split of {dataset.path} has no examples", "evaluate another split or prepare the data again")
    if limit is not None:
        if limit < 1:
            raise GenrecError(f"--limit must be at least 1, got {limit}", "give a positive number of users")
        users = sorted(set(ex["user_id"].to_list()))
        if limit < len(users):
            rng = np.random.default_rng(seed)
            chosen = {users[i] for i in rng.choice(len(users), size=limit, replace=False)}
            ex = ex.filter(ex["user_id"].is_in(list(chosen)))
    return ex


def full_histories(dataset, user_ids: list[str], positions: np.ndarray) -> list[np.ndarray]:
    """Each example's whole prefix: the user's items before the target position."""
    s = dataset.sequences
    row = {u: i for i, u in enumerate(s.user_ids)}
    out = []
    for uid, pos in zip(user_ids, positions, strict=True):
        out.append(s.user_items(row[uid])[: int(pos)].astype(np.int64))
    return out


def evaluate(
    recommender: IndexRecommender,
    dataset,
    split: Split = "test",
    k_max: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    exclude_seen: bool = True,
    history: HistoryMode = "full",
    n_resamples: int = 1000,
    progress: Progress | None = None,
) -> EvalResult | None:
    """Rank the full catalogue for every example of `split`; rank 0 returns the result.

    Other ranks of a distributed run return None. `limit` evaluates a random subset of
    that many users, drawn with `seed` (the same seed also drives the bootstrap).
    ``k_max`` (the length of every ranked list) defaults to the recommender's ``max_k``
    (GenRec's beam width, or its rerank depth) or 20; ``batch_size`` to its ``eval_batch_size``.
    """
    max_k = recommender.max_k
    if k_max is None:
        k_max = max_k or 20
    elif max_k is not None and k_max > max_k:
        decoding = getattr(recommender, "decoding", None)
        what, field = decoding.max_k_setting if decoding is not None else ("beam width", "beams")
        flag = "--beams " if field == "beams" else f"--set {field}="
        raise GenrecError(f"k_max {k_max} is larger than {recommender.name}'s {what} {max_k}",
                          f"pass {flag}{k_max} (or more), or a smaller --k-max")
    if batch_size is None:
        batch_size = recommender.eval_batch_size
    if k_max < 1:
        raise GenrecError(f"k_max must be at least 1, got {k_max}", "use e.g. --k-max 20")
    if batch_size < 1:
        raise GenrecError(f"batch_size must be at least 1, got {batch_size}", "use e.g. --batch-size 256")
    if history not in ("full", "window"):
        raise GenrecError(f"unknown history mode {history!r}", "use full or window")
    ex = select_examples(dataset, split, limit, seed)
    user_ids = ex["user_id"].to_list()
    positions = ex["position"].to_numpy().astype(np.int64)
    targets = ex["target"].to_numpy().astype(np.int64)
    rank, world = distributed.rank_and_world()
    mine = np.arange(len(targets))[rank::world]  # round-robin: shards differ by at most one row
    if history == "full":
        hists = full_histories(dataset, [user_ids[i] for i in mine], positions[mine])
    else:
        stored = ex["history"].to_list()
        hists = [np.asarray(stored[i], dtype=np.int64) for i in mine]

    items = np.full((len(mine), k_max), NO_ITEM, dtype=np.int64)
    scores = np.full((len(mine), k_max), -np.inf)
    if progress is not None and rank == 0:
        progress(0, len(mine))
    t0 = time.perf_counter()
    for start in range(0, len(mine), batch_size):
        batch = hists[start : start + batch_size]
        ranked = recommender.recommend(batch, k=k_max, exclude_seen=exclude_seen)
        if len(ranked) != len(batch):
            raise GenrecError(
                f"{recommender.name} returned {len(ranked)} lists for {len(batch)} histories",
                "this is a bug in the recommender: it must return one list per history",
            )
        w = min(k_max, ranked.k)
        items[start : start + len(batch), :w] = ranked.items[:, :w]
        scores[start : start + len(batch), :w] = ranked.scores[:, :w]
        if progress is not None and rank == 0:
            progress(min(start + batch_size, len(mine)), len(mine))

    parts = distributed.gather_to_main((mine, items, scores))
    seconds = time.perf_counter() - t0
    if parts is None:
        return None
    all_items = np.full((len(targets), k_max), NO_ITEM, dtype=np.int64)
    all_scores = np.full((len(targets), k_max), -np.inf)
    for idx, it, sc in parts:
        all_items[idx], all_scores[idx] = it, sc

    metrics = compute_metrics(
        all_items,
        targets,
        n_items=len(dataset.catalogue),
        popularity=dataset.item_popularity(),
        k_max=k_max,
        coverage_k=min(10, k_max),
        n_resamples=n_resamples,
        seed=seed,
    )
    config = getattr(recommender, "config", None)
    settings = {
        "k_max": k_max,
        "limit": limit,
        "subset": "all users with a target in the split" if limit is None else f"random subset of {limit} users drawn with seed {seed}",
        "seed": seed,
        "exclude_seen": exclude_seen,
        "history": history,
        "batch_size": batch_size,
        "world_size": world,
        "ranking": "full catalogue",
        "n_items": len(dataset.catalogue),
        "dataset_path": str(dataset.path),
        "dataset_split": dataset.manifest.get("split"),
        "method_config": config.model_dump(mode="json") if hasattr(config, "model_dump") else getattr(recommender, "options", None),
        # what training did (epochs, time, why it stopped), for methods that report it
        "fit": getattr(recommender, "fit_info", None),
    }
    return EvalResult(
        method=recommender.name,
        dataset=dataset.name,
        split=split,
        settings=settings,
        user_ids=user_ids,
        positions=positions,
        targets=targets,
        items=all_items,
        scores=all_scores,
        metrics=metrics,
        seconds=seconds,
        item_ids=dataset.catalogue.item_ids,
        titles=dataset.catalogue.titles,
    )


# writing and comparing live in report.py; re-exported here as part of this module's API
from .report import compare, write_eval  # noqa: E402

__all__ = ["EvalResult", "compare", "evaluate", "write_eval"]
