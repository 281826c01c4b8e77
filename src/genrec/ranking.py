"""Ranked lists of catalogue items, and where a user's target lands in one (the ground floor).

Every recommender returns a :class:`Ranked`: ``items[u, r]`` is the catalogue index in
slot ``r`` of user ``u``'s list, best first, or a marker — :data:`NO_ITEM` (the method
returned fewer than k) or :data:`INVALID` (free decoding wrote text that is no catalogue
item). The decoders build these lists, the recommenders return them, validation during
training and ``genrec evaluate`` score them, all with the types and kernels here, so a
hit means the same thing in each.

The per-user kernels (one relevant item per user, the held-out target): :func:`per_user`
finds the target's 1-based rank in each list (0 when absent) after :func:`check_lists`
has rejected malformed lists; :class:`PerUser` turns ranks into HR@K
(``1`` if rank ≤ K), NDCG@K (``1 / log2(rank + 1)`` if rank ≤ K) and the reciprocal rank.
The metrics over users (means, bootstrap intervals, coverage) are in
:mod:`genrec.evaluation.metrics`. Two builders of ranked lists with one tie rule (higher
score first, then the lower item index): :func:`top_k_from_scores` over a dense score
matrix and :func:`rank_lists` over per-user candidate lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import GenrecError

#: slot holds no recommendation (the method returned fewer than k)
NO_ITEM = -1
#: slot holds generated text that is not a catalogue item (free decoding only)
INVALID = -2


@dataclass
class Ranked:
    """Top-k lists for a batch of users: ``items[u, r]`` is a catalogue index or a marker."""

    items: np.ndarray  # (n_users, k) int64; NO_ITEM / INVALID markers allowed
    scores: np.ndarray  # (n_users, k) float64, -inf where items is NO_ITEM

    def __post_init__(self) -> None:
        self.items = np.asarray(self.items, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.items.shape != self.scores.shape or self.items.ndim != 2:
            raise ValueError(f"items {self.items.shape} and scores {self.scores.shape} must be equal 2-D shapes")

    def __len__(self) -> int:
        return self.items.shape[0]

    @property
    def k(self) -> int:
        return self.items.shape[1]

    @classmethod
    def concat(cls, parts: Sequence[Ranked]) -> Ranked:
        k = max((p.k for p in parts), default=0)

        def pad(a: np.ndarray, fill) -> np.ndarray:
            return np.pad(a, ((0, 0), (0, k - a.shape[1])), constant_values=fill)

        return cls(
            np.concatenate([pad(p.items, NO_ITEM) for p in parts]) if parts else np.zeros((0, 0)),
            np.concatenate([pad(p.scores, -np.inf) for p in parts]) if parts else np.zeros((0, 0)),
        )


class DuplicateItemsError(GenrecError):
    """A ranked list names the same catalogue item more than once."""


def check_lists(items: np.ndarray, n_items: int | None = None) -> None:
    """Reject malformed lists: unknown markers, out-of-catalogue indices, duplicates.

    A list that holds the same catalogue item twice is rejected: counting it would let a
    method hit twice, and silently dropping it would hide a bug in the method.
    """
    items = np.asarray(items)
    if items.ndim != 2:
        raise GenrecError(f"ranked items must be a 2-D array (users × slots), got shape {items.shape}")
    bad = items < INVALID
    if n_items is not None:
        bad |= items >= n_items
    if bad.any():
        u, s = map(int, np.argwhere(bad)[0])
        raise GenrecError(
            f"user row {u}, slot {s} holds {int(items[u, s])}, which is neither a catalogue index "
            f"(0..{(n_items or 0) - 1}) nor a marker (NO_ITEM={NO_ITEM}, INVALID={INVALID})",
            "this is a bug in the recommender: it must return catalogue indices",
        )
    if items.shape[1] > 1:
        srt = np.sort(items, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        if dup.any():
            u, s = map(int, np.argwhere(dup)[0])
            raise DuplicateItemsError(
                f"user row {u} lists catalogue item {int(srt[u, s])} more than once",
                "a recommender must return each item at most once; remove repeats with "
                "genrec.ranking.drop_duplicates (keeps the first occurrence)",
            )


def drop_duplicates(items: np.ndarray, scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep each catalogue item's first occurrence; later repeats become NO_ITEM (and -inf).

    For methods (free-text decoding) that may legitimately produce repeats and must remove
    them before evaluation.
    """
    items = np.array(items, dtype=np.int64, copy=True)
    scores = None if scores is None else np.array(scores, dtype=np.float64, copy=True)
    for u in range(items.shape[0]):
        seen: set[int] = set()
        for s in range(items.shape[1]):
            i = int(items[u, s])
            if i < 0:
                continue
            if i in seen:
                items[u, s] = NO_ITEM
                if scores is not None:
                    scores[u, s] = -np.inf
            seen.add(i)
    return items, scores


@dataclass
class PerUser:
    """Per-user outcomes from which every metric is a mean (or a pooled ratio)."""

    rank: np.ndarray  # (n,) int64: 1-based rank of the target in the list, 0 when absent
    n_valid: np.ndarray  # (n,) int64: slots holding a catalogue item
    n_invalid: np.ndarray  # (n,) int64: INVALID slots
    k: int  # list length

    def __len__(self) -> int:
        return len(self.rank)

    def hits(self, k_max: int | None = None) -> np.ndarray:
        """(n, k_max) float: column K-1 is HR@K per user."""
        k_max = k_max or self.k
        ks = np.arange(1, k_max + 1)
        return ((self.rank[:, None] >= 1) & (self.rank[:, None] <= ks[None, :])).astype(np.float64)

    def ndcgs(self, k_max: int | None = None) -> np.ndarray:
        """(n, k_max) float: column K-1 is NDCG@K per user."""
        gain = 1.0 / np.log2(np.maximum(self.rank, 1).astype(np.float64) + 1.0) * (self.rank >= 1)
        return self.hits(k_max) * gain[:, None]

    def reciprocal_rank(self, k: int | None = None) -> np.ndarray:
        """(n,) float: 1 / rank of the target within the first `k` slots (default: the
        whole list), 0 beyond or when absent."""
        k = k or self.k
        return np.where((self.rank >= 1) & (self.rank <= k), 1.0 / np.maximum(self.rank, 1), 0.0)


def per_user(items: np.ndarray, targets: Sequence[int] | np.ndarray, n_items: int | None = None) -> PerUser:
    """Locate each user's target in their list (after :func:`check_lists`)."""
    items = np.asarray(items, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if items.ndim == 2 and items.shape[0] != len(targets):
        raise GenrecError(f"{items.shape[0]} ranked lists but {len(targets)} targets")
    check_lists(items, n_items)
    match = items == targets[:, None]
    rank = np.where(match.any(axis=1), match.argmax(axis=1) + 1, 0).astype(np.int64)
    return PerUser(
        rank=rank,
        n_valid=(items >= 0).sum(axis=1).astype(np.int64),
        n_invalid=(items == INVALID).sum(axis=1).astype(np.int64),
        k=items.shape[1],
    )


def rank_lists(items: Sequence[np.ndarray], scores: Sequence[np.ndarray], k: int) -> Ranked:
    """Top-k of per-user (item, score) lists, by score then item index; padded with NO_ITEM."""
    out_items = np.full((len(items), k), NO_ITEM, dtype=np.int64)
    out_scores = np.full((len(items), k), -np.inf)
    for u, (it, sc) in enumerate(zip(items, scores, strict=True)):
        order = np.lexsort((it, -np.asarray(sc, dtype=np.float64)))[:k]
        out_items[u, : len(order)] = np.asarray(it)[order]
        out_scores[u, : len(order)] = np.asarray(sc)[order]
    return Ranked(out_items, out_scores)


def top_k_from_scores(scores: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None = None) -> Ranked:
    """Rank a dense (n_users, n_items) score matrix; excluded items never appear.

    Ties are broken by item index (lower first) so results are deterministic.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    n_users, n_items = scores.shape
    if exclude is not None:
        for u, hist in enumerate(exclude):
            if len(hist):
                scores[u, np.asarray(hist, dtype=np.int64)] = -np.inf
    k_eff = min(k, n_items)
    if k_eff < n_items and n_users:
        # argpartition picks an arbitrary member of a tie at the k-th score, so take every
        # item scoring at least each row's k-th best (m of them; the top-max(m) partition
        # holds them all), then a stable sort of the candidates by (-score, index)
        kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1]
        m = int((scores >= kth[:, None]).sum(axis=1).max())
        part = np.argpartition(-scores, m - 1, axis=1)[:, :m] if m < n_items else np.tile(np.arange(n_items), (n_users, 1))
    else:
        part = np.tile(np.arange(n_items), (n_users, 1))
    cand_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -cand_scores), axis=1)[:, :k_eff]
    items = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(cand_scores, order, axis=1)
    items = np.where(np.isneginf(top), NO_ITEM, items)
    if k_eff < k:
        items = np.pad(items, ((0, 0), (0, k - k_eff)), constant_values=NO_ITEM)
        top = np.pad(top, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return Ranked(items, top)
