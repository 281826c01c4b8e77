"""Chronological order with the source-order tie-break, both splits, and training windows.

A hypothesis test checks the split invariants on random interaction logs: every example's
history is exactly what precedes its target (capped), training examples come only from
the training part, validation/test targets are where the split puts them, and the
temporal split cuts the global timeline 8:1:1.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.data.sequences import build_sequences, order_events, window_examples
from genrec.errors import GenrecError

SCHEMA = {"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64, "order": pl.Int64}


def frame(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame([(u, i, t, n) for n, (u, i, t) in enumerate(rows)], schema=SCHEMA, orient="row")


def index_of(df: pl.DataFrame) -> dict[str, int]:
    return {item: n for n, item in enumerate(sorted(set(df["item_id"].to_list())))}


def test_ties_keep_source_order_never_item_id():
    # u1's last two events share a timestamp; the file lists "zeta" before "alpha"
    df = frame([("u1", "mid", 5), ("u1", "zeta", 9), ("u1", "alpha", 9), ("u2", "b", 2), ("u2", "a", 1)])
    ordered = order_events(df)
    idx = index_of(df)
    seqs = build_sequences(ordered, idx, "leave-one-out")
    names = {v: k for k, v in idx.items()}
    u1 = seqs.user_ids.index("u1")
    assert [names[i] for i in seqs.user_items(u1)] == ["mid", "zeta", "alpha"]  # test target: alpha
    u2 = seqs.user_ids.index("u2")
    assert [names[i] for i in seqs.user_items(u2)] == ["a", "b"]  # time first


def test_leave_one_out_parts_and_windows():
    df = frame([("u", f"i{n}", n) for n in range(6)] + [("v", "i0", 0), ("v", "i1", 1)] + [("w", "i3", 0)])
    seqs = build_sequences(order_events(df), index_of(df), "leave-one-out")
    parts = {u: (int(seqs.n_train[n]), int(seqs.n_valid[n])) for n, u in enumerate(seqs.user_ids)}
    assert parts == {"u": (4, 1), "v": (1, 0), "w": (1, 0)}  # 2 events: no validation; 1 event: training only
    test = window_examples(seqs, "test", max_history=3).to_pylist()
    assert [(e["user_id"], e["history"], e["target"], e["position"]) for e in test] == [
        ("u", [2, 3, 4], 5, 5), ("v", [0], 1, 1),
    ]
    valid = window_examples(seqs, "valid", max_history=10).to_pylist()
    assert [(e["user_id"], e["history"], e["target"]) for e in valid] == [("u", [0, 1, 2, 3], 4)]
    train = window_examples(seqs, "train", max_history=2).to_pylist()
    assert [(e["history"], e["target"]) for e in train] == [([0], 1), ([0, 1], 2), ([1, 2], 3)]  # u only


def test_unknown_split_is_refused():
    df = frame([("u", "a", 1), ("u", "b", 2)])
    with pytest.raises(GenrecError, match="unknown split"):
        build_sequences(order_events(df), index_of(df), "random")  # type: ignore[arg-type]


logs = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 11), st.integers(0, 6)),  # user, item, timestamp (many ties)
    min_size=1, max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(logs, st.sampled_from(["leave-one-out", "temporal"]), st.integers(1, 5))
def test_split_invariants(raw, split, max_history):
    df = frame([(f"u{u}", f"i{i}", t) for u, i, t in raw])
    ordered = order_events(df)
    idx = index_of(df)
    seqs = build_sequences(ordered, idx, split)
    lengths = seqs.lengths()
    assert lengths.sum() == len(raw) and seqs.n_users == len({u for u, _, _ in raw})
    n_test = lengths - seqs.n_train - seqs.n_valid
    assert (seqs.n_train >= 0).all() and (seqs.n_valid >= 0).all() and (n_test >= 0).all()

    # each user's sequence is their events by (timestamp, source order)
    for n, user in enumerate(seqs.user_ids):
        mine = sorted((t, k, idx[f"i{i}"]) for k, (u, i, t) in enumerate(raw) if f"u{u}" == user)
        assert seqs.user_items(n).tolist() == [item for _, _, item in mine]

    if split == "leave-one-out":
        assert (n_test == (lengths >= 2)).all() and (seqs.n_valid == (lengths >= 3)).all()
    else:
        # global cut: 80% of all events train, the next 10% validate, by (timestamp, source order)
        assert seqs.n_train.sum() == round(len(raw) * 0.8)
        assert seqs.n_train.sum() + seqs.n_valid.sum() == round(len(raw) * 0.9)
        ts = seqs.timestamps
        starts = seqs.offsets[:-1]
        train_ts = np.concatenate([ts[s:s + k] for s, k in zip(starts, seqs.n_train, strict=True)] or [np.array([])])
        later = np.concatenate([ts[s + k:e] for s, k, e in zip(starts, seqs.n_train, seqs.offsets[1:], strict=True)] or [np.array([])])
        if train_ts.size and later.size:
            assert train_ts.max() <= later.min()

    bounds = {"train": (np.zeros_like(lengths), seqs.n_train),
              "valid": (seqs.n_train, seqs.n_train + seqs.n_valid),
              "test": (seqs.n_train + seqs.n_valid, lengths)}
    for part, (lo, hi) in bounds.items():
        examples = window_examples(seqs, part, max_history).to_pylist()
        expected = int(np.maximum(hi - np.maximum(lo, 1), 0).sum())
        assert len(examples) == expected
        for e in examples:
            u = seqs.user_ids.index(e["user_id"])
            items = seqs.user_items(u).tolist()
            p = e["position"]
            assert lo[u] <= p < hi[u] and p >= 1
            assert e["target"] == items[p]
            # the history is exactly what precedes the target, capped: no later event leaks in
            assert e["history"] == items[max(0, p - max_history):p]
