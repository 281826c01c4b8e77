from __future__ import annotations

import numpy as np

from genrec.recommenders.popularity import Popularity
from tests.recommenders.conformance import RecommenderTests


class TestPopularity(RecommenderTests):
    supports_empty_history = True

    def make(self) -> Popularity:
        return Popularity()

    def test_ranks_by_training_count_ties_by_index(self, tiny_dataset):
        rec = Popularity().fit(tiny_dataset)
        counts = np.zeros(len(tiny_dataset.catalogue), dtype=int)
        for seq in tiny_dataset.train_sequences():  # counted by hand, training parts only
            for i in seq:
                counts[i] += 1
        expected = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
        ranked = rec.recommend([[]], k=len(counts), exclude_seen=False)
        assert ranked.items[0].tolist() == expected
        assert ranked.scores[0].tolist() == [float(counts[i]) for i in expected]

    def test_validation_and_test_targets_do_not_count(self, tiny_dataset):
        s = tiny_dataset.sequences
        rec = Popularity().fit(tiny_dataset)
        assert rec.counts.sum() == int(s.n_train.sum()) < len(s.items)


def test_candidate_scores_are_training_counts(tiny_dataset):
    rec = Popularity().fit(tiny_dataset)
    counts = tiny_dataset.item_popularity()
    cands = [5, 0, 17, 2]
    assert rec.score([[1], []], cands).tolist() == [[float(counts[i]) for i in cands]] * 2
    expected = [i for i in sorted(cands, key=lambda i: (-counts[i], i)) if i != 0][:2]
    assert rec.recommend([[0]], k=2, candidates=cands).items[0].tolist() == expected
