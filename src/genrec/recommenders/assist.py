"""Text-free assistants for GenRec's decoding: an item distribution per user.

D3 (Bao et al., "Decoding Matters", EMNLP 2024) fuses a collaborative model into the
language model's constrained decoding at every step (``genrec.decoding.beam``, option
``assist``); this module supplies the distributions:

- ``popularity``: the training part's item counts, add-one smoothed (so an item never
  seen in training keeps a little mass), the same for every user;
- ``sasrec``: SASRec's softmax over the catalogue after the user's history;
- ``last-item``: the softmax of the last-item BM25 scores (titles that share words with
  the user's last title), a lexical rather than collaborative assistant: on Amazon Toys
  last-item BM25 is the strongest baseline. The softmax of raw BM25 scores is sharp;
  the weight chosen on validation acts as its temperature.

The SASRec assistant is trained on the run's own dataset (training part, the split the
language model was trained on) the first time it is asked for, and saved in the run
folder as ``assistant-sasrec/`` (atomically), so later loads reuse it. Items added to
the catalogue after training are unknown to both: they get the smallest mass the
assistant gives any known item for that user, so they stay recommendable.

The weight of the assistant is chosen on validation (``bench/assist_weight.py``, per
decoding mode: beam search fuses it at every step, rerank decoding per item) and stored
beside it as ``assist.json``; GenRec uses the stored weight when none is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import read_json
from ..errors import GenrecError

KINDS = ("popularity", "sasrec", "last-item")
WEIGHTS_FILE = "assist.json"


class Assistant:
    """Per-user item distributions from a fitted popularity, SASRec or last-item model."""

    def __init__(self, kind: str, model):
        self.kind, self.model = kind, model

    @classmethod
    def for_run(cls, kind: str, run_path: Path, dataset, minutes: float = 5.0, threads: int | None = None) -> Assistant:
        if kind not in KINDS:
            raise GenrecError(f"unknown assistant {kind!r}", f"use one of: {', '.join(KINDS)}")
        if kind == "popularity":
            from .popularity import Popularity

            return cls(kind, Popularity().fit(dataset))
        if kind == "last-item":
            from .last_item import LastItemBM25

            return cls(kind, LastItemBM25().fit(dataset))
        from .sasrec import SASRec, SASRecConfig

        folder = Path(run_path) / "assistant-sasrec"
        if (folder / "config.json").is_file():
            return cls(kind, SASRec.load(folder, dataset, threads=threads))
        options = {"max_minutes": minutes, "seed": 0}
        if threads:
            options["threads"] = threads
        model = SASRec(SASRecConfig.build(options)).fit(dataset)
        model.save(folder)
        return cls(kind, model)

    def distribution(self, histories: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
        """(users, n_items) probabilities; items beyond the assistant's catalogue get each
        row's smallest known mass."""
        if self.kind == "popularity":
            counts = self.model.counts.astype(np.float64) + 1.0
            rows = np.broadcast_to(counts / counts.sum(), (len(histories), counts.size))
        else:
            known = [[i for i in h if 0 <= i < self.model.n_items] for h in histories]
            # a history made only of items added after training tells the model nothing: uniform
            rows = np.full((len(histories), self.model.n_items), 1.0 / self.model.n_items)
            users = [u for u, h in enumerate(known) if h]
            if users:
                logits = self.model.score_all([known[u] for u in users]).astype(np.float64)
                logits -= logits.max(axis=1, keepdims=True)
                probs = np.exp(logits)
                rows[users] = probs / probs.sum(axis=1, keepdims=True)
        if rows.shape[1] >= n_items:
            return np.ascontiguousarray(rows[:, :n_items])
        extra = np.repeat(rows.min(axis=1, keepdims=True), n_items - rows.shape[1], axis=1)
        return np.concatenate([rows, extra], axis=1)


def weight_key(kind: str, mode: str = "beam") -> str:
    """The entry of ``assist.json`` for an assistant in a decoding mode: the kind for beam
    search (as runs have always stored it), ``rerank:<kind>`` for rerank decoding,
    ``bigrec:<kind>`` for free decoding's bigrec grounding (its gamma)."""
    return kind if mode == "beam" else f"{mode}:{kind}"


def stored_weight(run_path: Path, kind: str, mode: str = "beam") -> float:
    """The assistant weight chosen on validation for this run and decoding mode (``assist.json``)."""
    path = Path(run_path) / WEIGHTS_FILE
    command = f"python bench/assist_weight.py DATASET --run {run_path} --assist {kind}" + (f" --mode {mode}" if mode != "beam" else "")
    if not path.is_file():
        raise GenrecError(
            f"no assistant weight is stored with the run in {run_path}",
            f"choose one on validation with `{command}`, or pass assist_weight explicitly",
        )
    chosen = read_json(path).get(weight_key(kind, mode))
    if chosen is None:
        raise GenrecError(f"{path} holds no weight for the {kind} assistant in {mode} decoding",
                          f"run `{command}`, or pass assist_weight explicitly")
    return float(chosen["weight"])
