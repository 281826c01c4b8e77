"""One contract for every recommender (after LensKit's shared scorer interface).

``fit(dataset)`` learns from the training split (and may use the validation split for
early stopping); ``recommend(histories, k)`` returns a :class:`Ranked` of catalogue
indices with scores, best first. Metrics only ever see item indices, never strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

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


class Recommender(ABC):
    """Base class: every method fits on a dataset and ranks catalogue items."""

    #: registry name, e.g. "popularity"
    name: ClassVar[str] = "recommender"

    @abstractmethod
    def fit(self, dataset) -> Recommender:
        """Learn from ``dataset``'s training split; return self."""

    @abstractmethod
    def recommend(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_seen: bool = True) -> Ranked:
        """Top-`k` catalogue indices for each history (oldest item first)."""

    def save(self, path: str | Path) -> None:  # pragma: no cover - overridden where supported
        raise NotImplementedError(f"{self.name} cannot be saved")

    @classmethod
    def load(cls, path: str | Path, dataset=None) -> Recommender:  # pragma: no cover
        raise NotImplementedError(f"{cls.name} cannot be loaded")
