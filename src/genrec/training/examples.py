"""Training examples and their batch order.

Which windows to train on is a choice that matters within a budget:

- ``all``: every sliding window of the training part (the paper's data);
- ``recent``: the most recent windows of each user (closest to what is tested);
- ``chunks``: non-overlapping runs of ``max_history + 1`` items, aligned to the end of
  the training part; with ``loss_on=items`` every item of a chunk is a prediction
  target, so one forward pass teaches up to ``max_history + 1`` next-item steps;
- ``sequences``: a user's whole training sequence in one example, packed up to
  ``cutoff_len`` tokens: cut from its end into the longest runs that fit ``cutoff_len``
  (and the history cap: at most ``max_history + 1`` items, so data prepared with long
  histories, ``genrec prepare ... --max-history 250``, give each user one or a few long
  runs). Nothing is cut off by the cutoff (a chunk longer than the cutoff loses its
  oldest items, targets included), and every item is a target (it needs
  ``loss_on=items``): BIGRec/D3's "every position of the sequence" in one forward pass.

Batch order is a pure function of (seed, epoch): examples are shuffled, grouped by
length inside mega-batches (as Hugging Face's ``LengthGroupedSampler`` does) into
*optimizer-step* batches of ``effective_batch`` examples, then each step batch is cut
into micro-batches. Because step batches are formed before they are split, a step sees
the same examples whatever the number of processes or accumulation steps, and a resumed
run replays exactly the order of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _run(uid: str, items: list[int], start: int, end: int) -> Example:
    """The example of ``items[start:end]``: its last item the target, keyed by its position."""
    return Example(example_key(uid, end - 1), items[start : end - 1], items[end - 1])


def _fitting_start(items: list[int], uid: str, end: int, size: int, cutoff_len: int, length: Callable[[Example], int]) -> int:
    """The smallest start (the longest run ``items[start:end]`` of at most `size` items) whose
    example fits `cutoff_len` tokens; ``end - 2`` (two items, the least a target needs) when
    none does. An example's length grows with every item, so a binary search finds it."""
    lo, hi = max(0, end - size), end - 2
    while lo < hi:
        mid = (lo + hi) // 2
        if length(_run(uid, items, mid, end)) <= cutoff_len:
            hi = mid
        else:
            lo = mid + 1
    return lo


def build_examples(ds: Dataset, cfg: TrainConfig, length: Callable[[Example], int] | None = None) -> list[Example]:
    """The training examples `cfg` asks for, from the dataset's training part only.

    ``windows=sequences`` needs `length` (tokens of an example, :meth:`Encoder.length`) to
    pack each run up to ``cutoff_len``.
    """
    H = history_cap(cfg.max_history, ds.manifest["max_history"])
    seqs = ds.sequences
    users = _select_users(seqs.n_users, cfg.max_users, cfg.seed)
    keep = set(users.tolist()) if users is not None else None
    out: list[Example] = []
    if cfg.windows in ("chunks", "sequences"):
        if cfg.windows == "sequences" and length is None:
            raise ValueError("windows=sequences packs runs by their token length: pass `length`")
        size = H + 1
        for u in range(seqs.n_users):
            if keep is not None and u not in keep:
                continue
            train = seqs.user_items(u)[: seqs.n_train[u]].tolist()
            uid = seqs.user_ids[u]
            runs = []  # (start, end), newest first
            end = len(train)
            while end >= 2:
                if cfg.windows == "chunks":
                    start = max(0, end - size)
                else:
                    start = _fitting_start(train, uid, end, size, cfg.cutoff_len, length)
                runs.append((start, end))
                end = start
            if cfg.windows_per_user:
                runs = runs[: cfg.windows_per_user]
            out.extend(_run(uid, train, start, end) for start, end in reversed(runs))
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
