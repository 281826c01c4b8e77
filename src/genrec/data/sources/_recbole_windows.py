"""Users' sequences rebuilt from RecBole's benchmark windows (``item_id_list`` + ``item_id``).

RecBole's sequential ``benchmark_filename`` files (and the data sets written for them,
e.g. UniSRec's) hold, per row, a target item and the items before it, oldest first,
cut to the newest ``MAX_ITEM_LIST_LENGTH``. Training files hold one window per
training target or one per user; valid and test files one per user. The sequence is
the chain of a user's windows: each window's list must end the sequence rebuilt so far,
and its target is the next event. Events before a cut list are lost for good; the
report says how many users start with a list at the cut length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SPLIT_TYPE

PARTS = ("train", "valid", "test")
_FIX = (
    "each row's item_id_list must be the items before its item_id in that user's sequence, "
    "oldest first (RecBole's benchmark_filename layout); check that the files belong together"
)


@dataclass
class Window:
    """One row: the items before `target` in `part` (file `path`, 1-based `line`)."""

    user: str | None
    items: list[str]
    target: str
    part: str
    path: Path
    line: int
    #: the row's timestamp_list tokens and timestamp, when the file has both
    times: tuple[str, str] | None = None


@dataclass
class _Sequence:
    user: str
    items: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    first_list: int = 0  # length of the list the sequence was started from

    def start(self, w: Window) -> None:
        self.items = [*w.items, w.target]
        self.parts = ["train"] * len(w.items) + [w.part]  # a list's own events are history
        self.first_list = len(w.items)
        if w.times is not None:
            self.times = [*_seconds(w, w.times[0].split()), *_seconds(w, [w.times[1]])]
            if len(self.times) != len(self.items):
                raise DataFormatError(
                    f"{w.path} line {w.line} has {len(self.times) - 1} times in timestamp_list "
                    f"for {len(w.items)} items in item_id_list", _FIX,
                )

    def extend(self, w: Window) -> None:
        n = len(w.items)
        if n > len(self.items) or self.items[len(self.items) - n:] != w.items:
            raise DataFormatError(
                f"{w.path} line {w.line}: the item_id_list of user {self.user!r} ({_short(w.items)}) "
                f"does not continue the user's earlier rows, which end {_short(self.items)}",
                _FIX,
            )
        self.items.append(w.target)
        self.parts.append(w.part)
        if w.times is not None:
            self.times += _seconds(w, [w.times[1]])


def _short(items: list[str]) -> str:
    return "[" + " ".join(items[-3:]) + "]" if len(items) <= 3 else "[... " + " ".join(items[-3:]) + "]"


def _seconds(w: Window, tokens: list[str]) -> list[int]:
    try:
        return [int(float(t)) for t in tokens]
    except (TypeError, ValueError, OverflowError):  # TypeError: an empty timestamp
        raise DataFormatError(
            f"{w.path} line {w.line} has a timestamp that is not a number ({' '.join(map(str, tokens))[:60]!r})", _FIX
        ) from None


def _by_user(rows: list[Window]) -> list[_Sequence]:
    groups: dict[str, list[Window]] = {}
    for w in rows:
        groups.setdefault(w.user, []).append(w)  # type: ignore[arg-type]
    rank = {p: i for i, p in enumerate(PARTS)}
    out = []
    for user, windows in groups.items():
        # train before valid before test; within a part a shorter list is an earlier window
        windows.sort(key=lambda w: (rank[w.part], len(w.items)))
        seq = _Sequence(user)
        seq.start(windows[0])
        for w in windows[1:]:
            seq.extend(w)
        out.append(seq)
    return out


def _by_test_row(rows: list[Window], cap: int) -> list[_Sequence]:
    """Without user ids: each test row is a user; a valid row joins the test row whose
    list it is (compared on the newest `cap` items, as both lists may be cut)."""
    out, waiting = [], {}
    for w in rows:
        if w.part == "test":
            seq = _Sequence(f"test-{w.line - 1}")
            seq.start(w)
            out.append(seq)
            waiting.setdefault(tuple(w.items[-cap:]) if cap else (), []).append(seq)
    for w in rows:
        if w.part != "valid":
            continue
        match = waiting.get(tuple([*w.items, w.target][-cap:]) if cap else ())
        if not match:
            raise DataFormatError(
                f"{w.path} line {w.line}: no test row's item_id_list ends with this row's list and item_id "
                f"({_short([*w.items, w.target])}); without user_id a valid row is matched to its test row so",
                _FIX,
            )
        seq = match.pop()
        seq.parts[-2] = "valid"
    return out


def chain_windows(rows: list[Window]) -> tuple[pl.DataFrame, dict[str, int | str]]:
    """Interactions (user_id, item_id, timestamp, split, order) and a report for the notes."""
    if not rows:
        raise DataFormatError("the benchmark files hold no rows", "check that the files are complete")
    cap = max(len(w.items) for w in rows)
    with_users = rows[0].user is not None
    seqs = _by_user(rows) if with_users else _by_test_row(rows, cap)
    timed = all(w.times is not None for w in rows)
    users, items, parts, times = [], [], [], []
    for s in seqs:
        users += [s.user] * len(s.items)
        items += s.items
        parts += s.parts
        times += s.times if timed else [None] * len(s.items)
    capped = sum(s.first_list == cap for s in seqs) if cap else 0
    report: dict[str, int | str] = {
        "users_from": "user_id" if with_users else "test rows (no user_id; train rows unused)",
        "order": "timestamp_list" if timed else "list position",
        "longest_item_id_list": cap,
        # one user at the longest length is just the longest history; many is a cut
        "users_capped": capped if capped > 1 else 0,
    }
    if capped > 1:
        report["caveat"] = (
            f"histories are capped: item_id_list holds at most {cap} items, and {capped} users' sequences "
            f"start with a list that long, so their events before it were cut when the files were written "
            f"(RecBole keeps the newest MAX_ITEM_LIST_LENGTH)"
        )
    inter = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": times, "split": parts},
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64, "split": SPLIT_TYPE},
    )
    return inter.with_row_index("order").with_columns(pl.col("order").cast(pl.Int64)), report
