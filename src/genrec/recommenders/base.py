"""One contract for every recommender (after LensKit's shared scorer interface).

``fit(dataset)`` learns from the training split (and may use the validation split for
early stopping); ``recommend(histories, k)`` returns a :class:`~genrec.ranking.Ranked` of
catalogue indices with scores, best first. Metrics only ever see item indices, never strings.

Any ``k`` is answered, padded with ``NO_ITEM`` (score ``-inf``) past the items there are
to rank, except above :attr:`IndexRecommender.max_k`: a method that searches with a beam of
width B (GenRec's beam and free decoding) finds at most B items, so ``k > B`` is a
``GenrecError`` naming the width and the fix (a beam at least k wide), never a short or
silently padded list. ``tests/recommenders/conformance.py`` holds every method to this.

Scoring given items (LensKit's ``score(query, items)`` and ``recommend(query, n,
candidates=)``; re-ranking a candidate list is how LLM recommenders such as LlamaRec are
used in production): ``score(histories, candidates)`` returns each candidate's score
after each history (higher is better; a live catalogue item never scores NaN or -inf),
and ``recommend(..., candidates=)`` ranks only those items: the top k of the candidates,
the same list as sorting them by ``score`` (seen items still excluded unless
``exclude_seen=False``, a candidate given twice ranked once, ``NO_ITEM`` padding past
the candidates there are). ``candidates`` is one list of catalogue indices for every
history or one list per history (:func:`candidate_lists`); an index outside the
catalogue is a ``GenrecError``; an empty list scores nothing and ranks nothing (a row of
``NO_ITEM``), so a batch may hold users without candidates. The beam-width limit does
not apply: the candidates are scored, not searched for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import GenrecError

# the ranking types and list builders live on the ground floor (the decoders build lists
# too); re-exported here, where the recommender contract has always offered them
from ..ranking import INVALID, NO_ITEM, Ranked, rank_lists, top_k_from_scores  # noqa: F401

#: one list of catalogue indices for every history, or one list per history
Candidates = Sequence[int] | Sequence[Sequence[int]] | np.ndarray


def _is_index(x) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def candidate_lists(candidates: Candidates, n_histories: int, n_items: int) -> list[np.ndarray]:
    """Per history, its candidates as an int64 array in the order given, checked.

    One list (or a 1-D array) is every history's; a list of lists (or a 2-D array) is one
    per history and must hold one list per history. Every entry must be a catalogue index
    ``0..n_items-1``; all bad entries are reported in one ``GenrecError``.
    """
    if isinstance(candidates, str | bytes) or not isinstance(candidates, Sequence | np.ndarray):
        raise GenrecError(f"candidates must be a list of catalogue indices, got {type(candidates).__name__}",
                          "pass one list of item indices for every history, or one list per history")
    if isinstance(candidates, np.ndarray):
        if candidates.ndim not in (1, 2) or (candidates.size and not np.issubdtype(candidates.dtype, np.integer)):
            raise GenrecError(f"candidates must be a 1-D or 2-D array of integer indices, got {candidates.ndim}-D "
                              f"{candidates.dtype}", "pass item indices as integers")
        rows = [candidates] if candidates.ndim == 1 else list(candidates)
        shared = candidates.ndim == 1
    else:
        kinds = {"index" if _is_index(c) else "list" if isinstance(c, Sequence | np.ndarray) and not isinstance(c, str | bytes)
                 else "other" for c in candidates}
        if kinds == {"list"}:
            rows, shared = list(candidates), False
        elif kinds <= {"index", "other"}:  # one list (bad entries are reported below)
            rows, shared = [candidates], True
        else:
            raise GenrecError("candidates mixes item indices and lists",
                              "pass one list of item indices for every history, or one list per history")
    if not shared and len(rows) != n_histories:
        raise GenrecError(f"candidates holds {len(rows)} lists for {n_histories} histories",
                          "pass one candidate list per history, or one flat list for all of them")
    problems, out = [], []
    for u, row in enumerate(rows):
        row = list(row)
        bad = [x for x in row if not _is_index(x) or not 0 <= int(x) < n_items]
        if bad:
            where = "" if shared else f" of history {u}"
            problems.append(f"candidates{where} {', '.join(repr(x) for x in bad[:5])}{' ...' if len(bad) > 5 else ''}")
        out.append(np.asarray([int(x) for x in row if _is_index(x)], dtype=np.int64))
    if problems:
        raise GenrecError(f"not catalogue indices (0..{n_items - 1}): " + "; ".join(problems),
                          "give candidates as catalogue indices of the catalogue the recommender was fitted on")
    return out * n_histories if shared else out


def gather_scores(scores: np.ndarray, cands: Sequence[np.ndarray]) -> np.ndarray:
    """Each history's candidate scores from a dense (n_users, n_items) matrix.

    Column j of row u is the score of ``cands[u][j]``; rows shorter than the longest list
    are padded with NaN (no candidate there), so one list for all gives a full matrix.
    """
    width = max((len(c) for c in cands), default=0)
    out = np.full((len(cands), width), np.nan, dtype=np.float64)
    for u, c in enumerate(cands):
        out[u, : len(c)] = scores[u, c]
    return out


def restrict_scores(scores: np.ndarray, cands: Sequence[np.ndarray]) -> np.ndarray:
    """A copy of a dense score matrix with every item outside each row's candidates at -inf
    (the mark of an item that may not be ranked, as excluded items are)."""
    out = np.full(scores.shape, -np.inf, dtype=np.float64)
    for u, c in enumerate(cands):
        out[u, c] = scores[u, c]
    return out


class IndexRecommender(ABC):
    """Base class: every method fits on a dataset and ranks catalogue items by their
    indices (the title-level face for people is :class:`genrec.Recommender`)."""

    #: registry name, e.g. "popularity"
    name: ClassVar[str] = "recommender"
    #: histories per recommend() call in an evaluation (a language model decodes fewer at once)
    eval_batch_size: ClassVar[int] = 256

    @abstractmethod
    def fit(self, dataset) -> IndexRecommender:
        """Learn from ``dataset``'s training split; return self."""

    @abstractmethod
    def recommend(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_seen: bool = True,
                  candidates: Candidates | None = None) -> Ranked:
        """Top-`k` catalogue indices for each history (oldest item first); with
        `candidates`, the top `k` of those items only (see the module doc)."""

    def score(self, histories: Sequence[Sequence[int]], candidates: Candidates | None = None) -> np.ndarray:
        """(n_histories, n_candidates) scores of the candidates after each history, higher
        better; ragged per-history lists are padded with NaN. ``None``: every catalogue item
        (column i is item i)."""
        raise NotImplementedError(f"{self.name} cannot score given items")

    @property
    def max_k(self) -> int | None:
        """The largest k one call can rank (a beam width), or None when any k can be."""
        return None

    def save(self, path: str | Path) -> None:  # pragma: no cover - overridden where supported
        raise NotImplementedError(f"{self.name} cannot be saved")

    @classmethod
    def load(cls, path: str | Path, dataset=None) -> IndexRecommender:  # pragma: no cover
        raise NotImplementedError(f"{cls.name} cannot be loaded")


class DenseScorer(IndexRecommender):
    """A method that scores the whole catalogue at once (popularity, BM25, SASRec): it
    implements :meth:`score_all`, and ``score`` and ``recommend`` (with or without
    candidates) follow from it, so the three always agree."""

    @abstractmethod
    def score_all(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """(n_histories, n_items) scores of every catalogue item after each history."""

    def _top_k(self, scores: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None) -> Ranked:
        """Rank a dense score matrix (a method with its own tie-break overrides this)."""
        return top_k_from_scores(scores, k, exclude=exclude)

    def score(self, histories: Sequence[Sequence[int]], candidates: Candidates | None = None) -> np.ndarray:
        scores = np.asarray(self.score_all(histories), dtype=np.float64)
        if candidates is None:
            return np.array(scores, copy=True)  # writable, never a view of the model's state
        return gather_scores(scores, candidate_lists(candidates, len(histories), scores.shape[1]))

    def recommend(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_seen: bool = True,
                  candidates: Candidates | None = None) -> Ranked:
        scores = np.asarray(self.score_all(histories), dtype=np.float64)
        if candidates is not None:
            scores = restrict_scores(scores, candidate_lists(candidates, len(histories), scores.shape[1]))
        return self._top_k(scores, k, histories if exclude_seen else None)
