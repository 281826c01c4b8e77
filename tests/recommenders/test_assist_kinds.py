"""The assistants' item distributions (genrec.recommenders.assist): one row per history,
a probability distribution, ordered as the assistant's own ranking."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.errors import GenrecError
from genrec.recommenders.assist import KINDS, Assistant
from genrec.recommenders.last_item import LastItemBM25
from genrec.recommenders.popularity import Popularity


@pytest.mark.parametrize("kind", ["popularity", "last-item"])
def test_distributions_follow_the_assistants_own_scores(tiny_dataset, tmp_path, kind):
    histories = [[0, 3], [5], [7, 8, 9]]
    a = Assistant.for_run(kind, tmp_path, tiny_dataset)
    n = len(tiny_dataset.catalogue)
    rows = a.distribution(histories, n)
    assert rows.shape == (3, n) and np.allclose(rows.sum(axis=1), 1.0) and (rows > 0).all()
    model = LastItemBM25().fit(tiny_dataset) if kind == "last-item" else Popularity().fit(tiny_dataset)
    scores = model.score_all(histories)
    for u in range(3):  # a higher score never gets less mass
        order = np.argsort(scores[u], kind="stable")
        assert (np.diff(rows[u][order]) >= -1e-12).all()
    if kind == "last-item":  # the lexical assistant depends on the last title
        assert not np.allclose(rows[0], rows[1])
    # items added after the assistant was fitted get the row's smallest mass
    wider = a.distribution(histories, n + 2)
    assert wider.shape == (3, n + 2) and np.allclose(wider[:, n:], rows.min(axis=1, keepdims=True))


def test_unknown_kinds_are_refused(tiny_dataset, tmp_path):
    assert "last-item" in KINDS
    with pytest.raises(GenrecError, match="unknown assistant"):
        Assistant.for_run("knn", tmp_path, tiny_dataset)
