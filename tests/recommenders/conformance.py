"""The contract every recommender must meet (after LensKit's ``ScorerTests`` and peft's
common tester): a method's test class inherits :class:`RecommenderTests` and defines
``make()``, returning a fresh, seeded, unfitted recommender.
"""

from __future__ import annotations

import numpy as np
import pytest

from genrec.errors import GenrecError
from genrec.evaluation.evaluate import full_histories
from genrec.recommenders.base import NO_ITEM, IndexRecommender, Ranked


class RecommenderTests:
    #: False for methods that cannot be saved
    supports_save: bool = True
    #: False for methods that need at least one history item
    supports_empty_history: bool = False

    def make(self) -> IndexRecommender:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def reload(self, fitted: IndexRecommender, path, dataset) -> IndexRecommender:
        """Load what `fitted` saved at `path` (a method whose load takes call-time
        settings, such as GenRec's decoding, passes the ones `fitted` used)."""
        return type(fitted).load(path, dataset)

    # -- fixtures -------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, tiny_dataset) -> IndexRecommender:
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

    # -- given candidates (LensKit's score(query, items) and recommend(..., candidates=)) ------

    @staticmethod
    def some_candidates(n_items: int, seed: int, size: int = 12) -> list[int]:
        return np.random.default_rng(seed).choice(n_items, size=size, replace=False).tolist()

    def test_score_is_finite_for_every_candidate(self, fitted, histories, tiny_dataset):
        n_items = len(tiny_dataset.catalogue)
        shared = self.some_candidates(n_items, 0)
        scores = fitted.score(histories[:4], shared)
        assert scores.shape == (4, len(shared)) and scores.dtype == np.float64
        assert np.isfinite(scores).all()
        # one list per history, of different lengths: each row padded with NaN past its list
        ragged = [[0, 1, 2], [5], []]
        scores = fitted.score(histories[:3], ragged)
        assert scores.shape == (3, 3)
        for row, cands in zip(scores, ragged, strict=True):
            assert np.isfinite(row[: len(cands)]).all() and np.isnan(row[len(cands):]).all()

    def test_score_does_not_depend_on_the_other_candidates(self, fitted, histories, tiny_dataset):
        n_items = len(tiny_dataset.catalogue)
        hist = histories[:3]
        every = fitted.score(hist)  # None: the whole catalogue, column i is item i
        assert every.shape == (3, n_items)
        cands = self.some_candidates(n_items, 1)
        np.testing.assert_allclose(fitted.score(hist, cands), every[:, cands], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fitted.score(hist, cands[::-1])[:, ::-1], every[:, cands], rtol=1e-5, atol=1e-5)

    def test_recommend_with_candidates_sorts_them_by_score(self, fitted, histories, tiny_dataset):
        # brute force: the list is the unseen candidates sorted by score (ties in any order)
        n_items = len(tiny_dataset.catalogue)
        for u, hist in enumerate(histories[:5]):
            cands = self.some_candidates(n_items, 10 + u, size=14) + [int(hist[-1])]  # one seen item among them
            for k in (3, 30):
                ranked = fitted.recommend([hist], k=k, candidates=cands)
                assert ranked.items.shape == (1, k)
                row, row_scores = ranked.items[0], ranked.scores[0]
                eligible = sorted(set(cands) - set(hist.tolist()))
                real = row[row >= 0]
                assert len(real) == min(k, len(eligible)) and len(set(real.tolist())) == len(real)
                assert set(real.tolist()) <= set(eligible)
                assert (row[len(real):] == NO_ITEM).all() and np.isneginf(row_scores[len(real):]).all()
                by_score = dict(zip(eligible, fitted.score([hist], eligible)[0].tolist(), strict=True))
                np.testing.assert_allclose(row_scores[: len(real)], [by_score[i] for i in real.tolist()], rtol=1e-5, atol=1e-5)
                assert (np.diff(row_scores[: len(real)]) <= 1e-6).all()
                left_out = [by_score[i] for i in eligible if i not in set(real.tolist())]
                assert all(s <= row_scores[len(real) - 1] + 1e-6 for s in left_out)

    def test_candidates_for_each_history_and_seen_items(self, fitted, histories):
        hist = histories[:2]
        per_user = [[int(hist[0][-1]), 1, 2, 3], [4, 5]]
        ranked = fitted.recommend(hist, k=4, candidates=per_user)
        for row, cands, h in zip(ranked.items, per_user, hist, strict=True):
            real = row[row >= 0].tolist()
            assert set(real) == set(cands) - set(h.tolist())
        # exclude_seen=False: a seen candidate may come back
        kept = fitted.recommend(hist[:1], k=4, exclude_seen=False, candidates=per_user[:1]).items[0]
        assert set(kept.tolist()) == set(per_user[0])

    def test_a_repeated_candidate_is_ranked_once(self, fitted, histories):
        ranked = fitted.recommend(histories[:1], k=5, exclude_seen=False, candidates=[7, 3, 7, 3, 7])
        assert sorted(ranked.items[0][ranked.items[0] >= 0].tolist()) == [3, 7]
        assert fitted.score(histories[:1], [7, 3, 7])[0, 0] == fitted.score(histories[:1], [7, 3, 7])[0, 2]

    def test_empty_candidates_rank_and_score_nothing(self, fitted, histories):
        ranked = fitted.recommend(histories[:2], k=3, candidates=[])
        assert (ranked.items == NO_ITEM).all() and ranked.items.shape == (2, 3)
        assert fitted.score(histories[:2], []).shape == (2, 0)
        unseen = next(i for i in range(100) if i not in set(histories[1].tolist()))
        ranked = fitted.recommend(histories[:2], k=3, candidates=[[], [unseen]])
        assert (ranked.items[0] == NO_ITEM).all() and ranked.items[1].tolist() == [unseen, NO_ITEM, NO_ITEM]

    @pytest.mark.parametrize("bad", [[0, 10_000], [-1], [1.5], [True], "0 1", [[0], [1], [2]], [0, [1]]])
    def test_bad_candidates_are_a_clear_error(self, fitted, histories, bad):
        for call in (lambda: fitted.recommend(histories[:2], k=3, candidates=bad),
                     lambda: fitted.score(histories[:2], bad)):
            with pytest.raises(GenrecError) as e:
                call()
            assert "candidates" in e.value.problem and e.value.fix

    def test_candidates_are_not_limited_by_the_beam_width(self, fitted, histories, tiny_dataset):
        n_items = len(tiny_dataset.catalogue)
        k = (fitted.max_k or 10) + 2
        cands = list(range(n_items))
        ranked = fitted.recommend(histories[:1], k=k, candidates=cands)
        assert (ranked.items[0] >= 0).sum() == min(k, n_items - len(set(histories[0].tolist())))
