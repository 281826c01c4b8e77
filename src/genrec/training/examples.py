"""Training examples and their batch order.

Which windows to train on is a choice that matters within a budget:

- ``all``: every sliding window of the training part (the paper's data);
- ``recent``: the most recent windows of each user (closest to what is tested);
- ``chunks``: non-overlapping runs of ``max_history + 1`` items, aligned to the end of
  the training part; with ``loss_on=items`` every item of a chunk is a prediction
  target, so one forward pass teaches up to ``max_history + 1`` next-item steps.

Batch order is a pure function of (seed, epoch): examples are shuffled, grouped by
length inside mega-batches (as Hugging Face's ``LengthGroupedSampler`` does) into
*optimizer-step* batches of ``effective_batch`` examples, then each step batch is cut
into micro-batches. Because step batches are formed before they are split, a step sees
the same examples whatever the number of processes or accumulation steps, and a resumed
run replays exactly the order of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.batching import length_grouped
from ..data.dataset import Dataset
from ..model.encoding import LossOn
from ..model.prompting import PromptBuilder, history_cap
from ..prompts import example_key
from .config import TrainConfig


@dataclass
class Example:
    key: str  # prompts.example_key: chooses the instruction paraphrase deterministically
    history: list[int]
    target: int


def _select_users(n_users: int, max_users: int | None, seed: int) -> np.ndarray | None:
    if max_users is None or max_users >= n_users:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_users, size=max_users, replace=False))


def build_examples(ds: Dataset, cfg: TrainConfig) -> list[Example]:
    """The training examples `cfg` asks for, from the dataset's training part only."""
    H = history_cap(cfg.max_history, ds.manifest["max_history"])
    seqs = ds.sequences
    users = _select_users(seqs.n_users, cfg.max_users, cfg.seed)
    keep = set(users.tolist()) if users is not None else None
    out: list[Example] = []
    if cfg.windows == "chunks":
        size = H + 1
        for u in range(seqs.n_users):
            if keep is not None and u not in keep:
                continue
            train = seqs.user_items(u)[: seqs.n_train[u]].tolist()
            chunks = []
            end = len(train)
            while end >= 2:
                start = max(0, end - size)
                chunks.append((start, train[start:end]))
                end = start
            if cfg.windows_per_user:
                chunks = chunks[: cfg.windows_per_user]
            uid = seqs.user_ids[u]
            for start, c in reversed(chunks):
                out.append(Example(example_key(uid, start + len(c) - 1), c[:-1], c[-1]))
        return out
    ex = ds.examples("train")
    uids = ex["user_id"].to_list()
    hist = ex["history"].to_list()
    tgt = ex["target"].to_list()
    pos = ex["position"].to_list()
    if keep is not None:
        allowed = {seqs.user_ids[u] for u in keep}
    else:
        allowed = None
    if cfg.windows == "recent":
        per_user = cfg.windows_per_user or 1
        last: dict[str, list[int]] = {}
        for i, u in enumerate(uids):  # examples are in chronological order per user
            last.setdefault(u, []).append(i)
        rows = [i for u, ix in last.items() for i in ix[-per_user:]]
    else:
        rows = range(len(uids))
    for i in rows:
        if allowed is not None and uids[i] not in allowed:
            continue
        h = hist[i][-H:]
        out.append(Example(example_key(uids[i], pos[i]), h, tgt[i]))
    return out


class Encoder:
    """Turns examples into (input_ids, labels) by the run's prompt builder (which drops the
    oldest history items to fit ``cutoff_len``, as validation and inference do)."""

    def __init__(self, prompts: PromptBuilder, loss_on: LossOn):
        self.prompts, self.loss_on = prompts, loss_on

    def length(self, ex: Example) -> int:
        return self.prompts.example_length(ex.history, ex.target, ex.key)

    def __call__(self, ex: Example) -> tuple[list[int], list[int]]:
        return self.prompts.example(ex.history, ex.target, ex.key, self.loss_on)


def step_batches(lengths: np.ndarray, effective_batch: int, seed: int, epoch: int, group_by_length: bool) -> list[np.ndarray]:
    """Example indices of each optimizer step of `epoch` (the incomplete last step is dropped)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    n_steps = len(perm) // effective_batch
    if n_steps == 0:
        return []
    perm = perm[: n_steps * effective_batch]
    if not group_by_length:
        return [perm[i * effective_batch : (i + 1) * effective_batch] for i in range(n_steps)]
    return length_grouped(perm, lengths, effective_batch, effective_batch * 16, rng)


def micro_batches(step: np.ndarray, lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split a step batch into micro-batches of similar length."""
    step = step[np.argsort(-lengths[step], kind="stable")]
    return [step[i : i + batch_size] for i in range(0, len(step), batch_size)]
