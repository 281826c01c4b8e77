"""Chronological sequences, filters, splits and training windows.

Order: per user by timestamp, ties broken by the row's position in the source file
(stable source order, never item id: in ML-1M 42% of users have their last two ratings
at the same second). Splits:

- ``leave-one-out`` (SASRec/P5/GenRec protocol): a user's last event is the test target,
  the second-last the validation target, the rest is training. A user with two events
  has no validation target; a user with one only trains.
- ``temporal``: all events in global chronological order (same tie-break) are cut
  8:1:1; each user's events before the first cut train, and so on.
- ``given``: the split the source carries in its ``split`` column (RecBole's benchmark
  files); a user's events are ordered by split (train, valid, test), then as above.

Examples are sliding windows: the target at position p with the (at most `max_history`)
events before it. Training examples come only from the training part; validation and
test histories hold only what precedes their target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import GenrecError

SplitName = Literal["leave-one-out", "temporal", "given"]
Repeats = Literal["keep", "first", "last"]


def order_events(interactions: pl.DataFrame, by_split: bool = False) -> pl.DataFrame:
    """Sort by user, then time, then source order (the documented tie-break); with
    `by_split`, by the given ``split`` (train, valid, test) before time."""
    keys = ["user_id", "split", "timestamp", "order"] if by_split else ["user_id", "timestamp", "order"]
    return interactions.sort(keys, nulls_last=True, maintain_order=True)


def filter_events(
    interactions: pl.DataFrame,
    min_rating: float | None = None,
    user_core: int = 0,
    item_core: int = 0,
    repeats: Repeats = "keep",
) -> tuple[pl.DataFrame, dict]:
    """Apply the rating threshold, repeated-event rule and k-core filter; report counts."""
    report: dict = {"interactions_in": interactions.height}
    if min_rating is not None:
        if interactions["rating"].null_count() == interactions.height:
            raise GenrecError(
                f"--min-rating {min_rating} was given but the source has no ratings",
                "drop --min-rating for this data set",
            )
        before = interactions.height
        interactions = interactions.filter(pl.col("rating") >= min_rating)
        report["below_min_rating"] = before - interactions.height
    if repeats != "keep":
        before = interactions.height
        interactions = interactions.unique(subset=["user_id", "item_id"], keep=repeats, maintain_order=True)
        report["repeated_events_dropped"] = before - interactions.height
    if user_core > 1 or item_core > 1:
        before = interactions.height
        rounds = 0
        while True:
            rounds += 1
            n = interactions.height
            if item_core > 1:
                interactions = interactions.filter(pl.len().over("item_id") >= item_core)
            if user_core > 1:
                interactions = interactions.filter(pl.len().over("user_id") >= user_core)
            if interactions.height == n:
                break
        report["kcore_dropped"] = before - interactions.height
        report["kcore_rounds"] = rounds
    return interactions, report


@dataclass
class Sequences:
    """Every user's chronological item indices, flat, with the split boundaries."""

    user_ids: list[str]
    offsets: np.ndarray  # int64, len n_users + 1: user u owns items[offsets[u]:offsets[u+1]]
    items: np.ndarray  # int32 item indices
    timestamps: np.ndarray  # int64 (0 where the source has none)
    n_train: np.ndarray  # int32 per user
    n_valid: np.ndarray  # int32 per user

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def user_items(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    def to_arrow(self) -> pa.Table:
        offs = pa.array(self.offsets.astype(np.int32) if self.offsets[-1] < 2**31 else self.offsets)
        list_type = pa.ListArray if offs.type == pa.int32() else pa.LargeListArray
        return pa.table(
            {
                "user_id": pa.array(self.user_ids, pa.string()),
                "items": list_type.from_arrays(offs, pa.array(self.items, pa.int32())),
                "timestamps": list_type.from_arrays(offs, pa.array(self.timestamps, pa.int64())),
                "n_train": pa.array(self.n_train, pa.int32()),
                "n_valid": pa.array(self.n_valid, pa.int32()),
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Sequences:
        items_col = table.column("items").combine_chunks()
        ts_col = table.column("timestamps").combine_chunks()
        offsets = np.asarray(items_col.offsets, dtype=np.int64)
        start = offsets[0]
        return cls(
            user_ids=table.column("user_id").to_pylist(),
            offsets=offsets - start,
            items=np.asarray(items_col.values, dtype=np.int32)[start : offsets[-1]],
            timestamps=np.asarray(ts_col.values, dtype=np.int64)[start : offsets[-1]],
            n_train=table.column("n_train").to_numpy().astype(np.int32),
            n_valid=table.column("n_valid").to_numpy().astype(np.int32),
        )


def build_sequences(
    ordered: pl.DataFrame, item_index: dict[str, int] | pl.DataFrame, split: SplitName
) -> Sequences:
    """Turn ordered interactions (see :func:`order_events`) into split sequences.

    `item_index` maps item ids to dense catalogue indices (a frame with ``item_id`` and
    ``index``); every item id in `ordered` must be in it.
    """
    if isinstance(item_index, dict):
        item_index = pl.DataFrame(
            {"item_id": list(item_index), "index": list(item_index.values())},
            schema={"item_id": pl.Utf8, "index": pl.Int32},
        )
    joined = ordered.join(item_index, on="item_id", how="left", maintain_order="left")
    if joined["index"].null_count():
        raise AssertionError("every interaction's item must be in the catalogue")
    users = joined["user_id"]
    # run-length boundaries of users (ordered groups users contiguously)
    change = np.flatnonzero(users.ne(users.shift(1)).fill_null(True).to_numpy())
    offsets = np.append(change, joined.height).astype(np.int64)
    user_ids = users.gather(change).to_list()
    items = joined["index"].to_numpy().astype(np.int32)
    timestamps = joined["timestamp"].fill_null(0).to_numpy().astype(np.int64)
    lengths = np.diff(offsets)
    if split == "leave-one-out":
        n_test = (lengths >= 2).astype(np.int32)
        n_valid = (lengths >= 3).astype(np.int32)
        n_train = (lengths - n_test - n_valid).astype(np.int32)
    elif split == "temporal":
        # global chronological rank with the same tie-break as the per-user order
        rank_order = joined.with_row_index("_row").sort(
            ["timestamp", "order"], nulls_last=True, maintain_order=True
        )["_row"].to_numpy()
        rank = np.empty(joined.height, dtype=np.int64)
        rank[rank_order] = np.arange(joined.height)
        cut1 = int(round(joined.height * 0.8))
        cut2 = int(round(joined.height * 0.9))
        user_of = np.repeat(np.arange(len(user_ids)), lengths)
        n_train = np.bincount(user_of, weights=rank < cut1, minlength=len(user_ids)).astype(np.int32)
        n_valid = np.bincount(
            user_of, weights=(rank >= cut1) & (rank < cut2), minlength=len(user_ids)
        ).astype(np.int32)
    elif split == "given":
        if "split" not in joined.columns:
            raise GenrecError("the given split needs a source that carries one", "use leave-one-out or temporal")
        # ordered by split within each user (order_events(by_split=True)), so counts are boundaries
        code = joined["split"].to_physical().to_numpy()
        user_of = np.repeat(np.arange(len(user_ids)), lengths)
        n_train = np.bincount(user_of, weights=code == 0, minlength=len(user_ids)).astype(np.int32)
        n_valid = np.bincount(user_of, weights=code == 1, minlength=len(user_ids)).astype(np.int32)
    else:
        raise GenrecError(f"unknown split {split!r}", "use leave-one-out, temporal or given")
    return Sequences(user_ids, offsets, items, timestamps, n_train, n_valid)


def window_examples(seqs: Sequences, part: Literal["train", "valid", "test"], max_history: int) -> pa.Table:
    """Examples (history, target) for every target position in `part`.

    Columns: ``user_id`` (dictionary-encoded), ``history`` (list of item indices, oldest
    first, at most `max_history`), ``target`` (item index), ``position`` (the target's
    index in the user's sequence). Positions with an empty history are skipped.
    """
    lengths = seqs.lengths()
    if part == "train":
        lo, hi = np.ones_like(lengths), seqs.n_train.astype(np.int64)
    elif part == "valid":
        lo, hi = seqs.n_train.astype(np.int64), (seqs.n_train + seqs.n_valid).astype(np.int64)
    else:
        lo, hi = (seqs.n_train + seqs.n_valid).astype(np.int64), lengths
    lo = np.maximum(lo, 1)  # a target needs at least one event before it
    counts = np.maximum(hi - lo, 0)
    user = np.repeat(np.arange(seqs.n_users, dtype=np.int32), counts)
    # local positions lo..hi-1 for every user, vectorised
    first = np.repeat(lo - np.cumsum(counts) + counts, counts)
    pos = (first + np.arange(counts.sum())).astype(np.int64)
    glob = seqs.offsets[user] + pos
    hist_len = np.minimum(pos, max_history)
    list_offsets = np.zeros(len(pos) + 1, dtype=np.int64)
    np.cumsum(hist_len, out=list_offsets[1:])
    starts = glob - hist_len
    total = int(list_offsets[-1])
    # Gather the histories a block of examples at a time: one int64 index array for all of
    # them is 8 bytes x examples x max_history (2 GB and more at ML-25M scale).
    history_values = np.empty(total, dtype=np.int32)
    shift = starts - list_offsets[:-1]
    block = 1 << 20
    for a in range(0, len(pos), block):
        b = min(a + block, len(pos))
        lo_v, hi_v = int(list_offsets[a]), int(list_offsets[b])
        gather = np.repeat(shift[a:b], hist_len[a:b]) + np.arange(lo_v, hi_v, dtype=np.int64)
        history_values[lo_v:hi_v] = seqs.items[gather]
    offs = pa.array(list_offsets.astype(np.int32) if total < 2**31 else list_offsets)
    list_type = pa.ListArray if offs.type == pa.int32() else pa.LargeListArray
    users = pa.DictionaryArray.from_arrays(pa.array(user, pa.int32()), pa.array(seqs.user_ids, pa.string()))
    return pa.table(
        {
            "user_id": users,
            "history": list_type.from_arrays(offs, pa.array(history_values, pa.int32())),
            "target": pa.array(seqs.items[glob], pa.int32()),
            "position": pa.array(pos.astype(np.int32), pa.int32()),
        }
    )
