"""Most-popular baseline: rank items by interaction count over the training parts.

The non-personalised reference every sequential-recommendation paper reports (e.g.
Kang & McAuley 2018, "Self-Attentive Sequential Recommendation", Table 3 "PopRec").
Ties are broken by catalogue index (lower first), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import read_json, write_json
from ..errors import GenrecError
from .base import DenseScorer


class Popularity(DenseScorer):
    name = "popularity"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, dataset) -> Popularity:
        # training parts only: validation and test targets must not leak into the ranking
        self.counts = dataset.item_popularity()
        return self

    def _require_fit(self) -> np.ndarray:
        if self.counts is None:
            raise GenrecError("the popularity recommender is not fitted", "call fit(dataset) or load() first")
        return self.counts

    def score_all(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """An item's score is its training count, whatever the history."""
        counts = self._require_fit().astype(np.float64)
        return np.broadcast_to(counts, (len(histories), len(counts)))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / "popularity.json", {"method": self.name, "counts": self._require_fit().tolist()})

    @classmethod
    def load(cls, path: str | Path, dataset=None) -> Popularity:
        data = read_json(Path(path) / "popularity.json")
        model = cls()
        model.counts = np.asarray(data["counts"], dtype=np.int64)
        if dataset is not None and len(model.counts) != len(dataset.catalogue):
            raise GenrecError(
                f"{path} was fitted on {len(model.counts)} items but the dataset has {len(dataset.catalogue)}",
                "load it with the dataset it was fitted on, or fit again",
            )
        return model
