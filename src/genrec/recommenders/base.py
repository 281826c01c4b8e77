"""One contract for every recommender (after LensKit's shared scorer interface).

``fit(dataset)`` learns from the training split (and may use the validation split for
early stopping); ``recommend(histories, k)`` returns a :class:`~genrec.ranking.Ranked` of
catalogue indices with scores, best first. Metrics only ever see item indices, never strings.

Any ``k`` is answered, padded with ``NO_ITEM`` (score ``-inf``) past the items there are
to rank, except above :attr:`Recommender.max_k`: a method that searches with a beam of
width B (GenRec's beam and free decoding) finds at most B items, so ``k > B`` is a
``GenrecError`` naming the width and the fix (a beam at least k wide), never a short or
silently padded list. ``tests/recommenders/conformance.py`` holds every method to this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

# the ranking types live on the ground floor (the decoders build them too); re-exported
# here, where the recommender contract has always offered them
from ..ranking import INVALID, NO_ITEM, Ranked  # noqa: F401


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

    @property
    def max_k(self) -> int | None:
        """The largest k one call can rank (a beam width), or None when any k can be."""
        return None

    def save(self, path: str | Path) -> None:  # pragma: no cover - overridden where supported
        raise NotImplementedError(f"{self.name} cannot be saved")

    @classmethod
    def load(cls, path: str | Path, dataset=None) -> Recommender:  # pragma: no cover
        raise NotImplementedError(f"{cls.name} cannot be loaded")
