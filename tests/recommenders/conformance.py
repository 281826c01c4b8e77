"""The contract every recommender must meet (after LensKit's ``ScorerTests`` and peft's
common tester): a method's test class inherits :class:`RecommenderTests` and defines
``make()``, returning a fresh, seeded, unfitted recommender.
"""

from __future__ import annotations

import numpy as np
import pytest

from genrec.errors import GenrecError
from genrec.evaluation.evaluate import full_histories
from genrec.recommenders.base import NO_ITEM, Ranked, Recommender


class RecommenderTests:
    #: False for methods that cannot be saved
    supports_save: bool = True
    #: False for methods that need at least one history item
    supports_empty_history: bool = False

    def make(self) -> Recommender:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def reload(self, fitted: Recommender, path, dataset) -> Recommender:
        """Load what `fitted` saved at `path` (a method whose load takes call-time
        settings, such as GenRec's decoding, passes the ones `fitted` used)."""
        return type(fitted).load(path, dataset)

    # -- fixtures -------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, tiny_dataset) -> Recommender:
        return cls().make().fit(tiny_dataset)

    @pytest.fixture(scope="class")
    @classmethod
    def histories(cls, tiny_dataset) -> list[np.ndarray]:
        ex = tiny_dataset.examples("test")
        return full_histories(tiny_dataset, ex["user_id"].to_list(), ex["position"].to_numpy())

    # -- the contract -----------------------------------------------------------------
    def test_shape_and_k_unique_catalogue_items(self, fitted, histories, tiny_dataset):
        k = 5
        ranked = fitted.recommend(histories, k=k)
        assert isinstance(ranked, Ranked)
        assert ranked.items.shape == ranked.scores.shape == (len(histories), k)
        n_items = len(tiny_dataset.catalogue)
        for row, hist in zip(ranked.items, histories, strict=True):
            real = row[row >= 0]
            assert ((real >= 0) & (real < n_items)).all()
            assert len(set(real.tolist())) == len(real), "an item appears twice"
            # enough unseen items exist, so the list is full
            assert len(real) == min(k, n_items - len(set(hist.tolist())))
            assert set(row[row < 0].tolist()) <= {NO_ITEM}

    def test_no_history_items_by_default(self, fitted, histories):
        ranked = fitted.recommend(histories, k=10)
        for row, hist in zip(ranked.items, histories, strict=True):
            assert not set(row.tolist()) & set(hist.tolist())

    def test_exclusion_only_removes_history(self, fitted, histories):
        # excluding seen items must not reorder the rest: the excluded list is the kept
        # list with history items dropped
        k = 5
        for hist in histories[:8]:
            excl = fitted.recommend([hist], k=k).items[0]
            kept = fitted.recommend([hist], k=k + len(set(hist.tolist())), exclude_seen=False).items[0]
            assert excl.tolist() == [i for i in kept.tolist() if i not in set(hist.tolist())][:k]

    def test_keep_seen_can_return_history_items(self, fitted, histories, tiny_dataset):
        n_items = len(tiny_dataset.catalogue)
        ranked = fitted.recommend(histories, k=n_items, exclude_seen=False)
        assert any(set(row.tolist()) & set(h.tolist()) for row, h in zip(ranked.items, histories, strict=True))

    def test_scores_are_non_increasing(self, fitted, histories):
        ranked = fitted.recommend(histories, k=10)
        filled = np.where(ranked.items >= 0, ranked.scores, -np.inf)
        assert (np.diff(filled, axis=1) <= 1e-6).all()
        assert np.isneginf(ranked.scores[ranked.items == NO_ITEM]).all()

    def test_deterministic_for_a_seed(self, tiny_dataset, histories):
        a = self.make().fit(tiny_dataset).recommend(histories, k=10)
        b = self.make().fit(tiny_dataset).recommend(histories, k=10)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)

    def test_batching_does_not_change_results(self, fitted, histories):
        whole = fitted.recommend(histories, k=10)
        parts = Ranked.concat([fitted.recommend(histories[i : i + 3], k=10) for i in range(0, len(histories), 3)])
        np.testing.assert_array_equal(whole.items, parts.items)
        np.testing.assert_allclose(whole.scores, parts.scores, rtol=1e-5, atol=1e-6)

    def test_history_of_length_one(self, fitted, tiny_dataset):
        ranked = fitted.recommend([[0], [3]], k=4)
        assert ranked.items.shape == (2, 4)
        assert (ranked.items >= 0).all()
        assert 0 not in ranked.items[0] and 3 not in ranked.items[1]

    def test_k_larger_than_catalogue_is_padded(self, fitted, histories, tiny_dataset):
        n_items = len(tiny_dataset.catalogue)
        k = n_items + 7
        ranked = fitted.recommend(histories[:3], k=k)
        assert ranked.items.shape == (3, k)
        for row, hist in zip(ranked.items, histories[:3], strict=True):
            real = row[row >= 0]
            # every unseen item appears once, the rest of the slots are NO_ITEM
            assert sorted(real.tolist()) == sorted(set(range(n_items)) - set(hist.tolist()))
            assert (row[len(real) :] == NO_ITEM).all()

    def test_empty_history_works_or_is_a_clear_error(self, fitted):
        if self.supports_empty_history:
            ranked = fitted.recommend([[]], k=3)
            assert (ranked.items >= 0).all()
        else:
            with pytest.raises(GenrecError, match="empty"):
                fitted.recommend([[1], []], k=3)

    def test_save_load_round_trip(self, fitted, histories, tiny_dataset, tmp_path):
        if not self.supports_save:
            pytest.skip(f"{fitted.name} cannot be saved")
        fitted.save(tmp_path / "model")
        loaded = self.reload(fitted, tmp_path / "model", tiny_dataset)
        a, b = fitted.recommend(histories, k=10), loaded.recommend(histories, k=10)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)

    def test_k_above_max_k_is_a_clear_error(self, fitted, histories):
        # the beam-width rule of the contract (recommenders/base.py)
        if fitted.max_k is None:
            pytest.skip(f"{fitted.name} ranks any k")
        assert fitted.recommend(histories[:2], k=fitted.max_k).items.shape == (2, fitted.max_k)
        with pytest.raises(GenrecError, match=f"beam width {fitted.max_k}"):
            fitted.recommend(histories[:2], k=fitted.max_k + 1)

    def test_unfitted_is_a_clear_error(self):
        with pytest.raises(GenrecError, match="fit"):
            self.make().recommend([[0]], k=3)
