"""Rerank decoding: the assistant proposes, the language model scores (LlamaRec's two stages).

LlamaRec (Yue et al., 2023) retrieves candidates with a cheap sequential model and lets
the LLM rank only those. Here the retriever is the run's assistant (``assist``: last-item
BM25, SASRec or popularity, the same item distributions the beam search fuses): per user
its ``depth`` most probable items, among the live items the user may be recommended (not
excluded, positive mass), are each scored by teacher forcing after the prompt
(:func:`.exact.score_items`: the summed log-probability of the item's response, the score
exact decoding ranks by), and ranked by

    (1 - w) * log p_LM(item) + w * log p_assist(item)

with ``p_assist`` normalised over the items the user may be recommended, as in the beam
search, so that for the items both reach, rerank and an infinitely wide fused beam agree.
``w = 0`` is the language model ranking the assistant's candidates; ``w = 1`` is the
assistant's own order (no model pass is run); ties go to the lower item index, as every
ranked list in genrec. The result is exact for its score over the candidates: nothing is
pruned once they are drawn, so k may be anything up to ``depth``.

Cost: one prompt pass and ``depth`` teacher-forced responses per user, so the time grows
with ``depth`` (on 2 CPU cores and a 30-layer SmolLM2: about 0.09 s a candidate with
16-token titles), against the beam search's ``beams`` x title length steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import GenrecError
from ..ranking import NO_ITEM, Ranked, rank_lists, top_k_from_scores
from . import _lm
from .exact import score_items
from .trie import Trie


@dataclass
class RerankStats:
    users: int = 0
    scored: int = 0  # candidates the language model scored, all users together
    short: int = 0  # users with fewer than depth candidates (few live items with assistant mass)


def rerank_candidates(trie: Trie, assist: np.ndarray, depth: int,
                      exclude: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """Per user, the assistant's top-`depth` items (best first, ties by lower index) among
    the live, non-excluded items to which it gives positive mass."""
    mass = np.where(trie.live_items()[None, :] & (assist > 0), assist, -np.inf)
    top = top_k_from_scores(mass, depth, exclude=exclude)
    return [row[row != NO_ITEM] for row in top.items]


def fused_scores(items: np.ndarray, lm: np.ndarray | None, assist_row: np.ndarray, allowed: np.ndarray,
                 weight: float) -> np.ndarray:
    """``(1 - w) log p_LM + w log p_assist`` of one user's candidates, ``p_assist``
    normalised over the `allowed` items (``lm`` may be None at ``w = 1``)."""
    if not items.size:
        return np.zeros(0)
    with np.errstate(divide="ignore"):  # an item without mass scores -inf (given candidates may have none)
        log_assist = np.log(assist_row[items]) - np.log(assist_row[allowed].sum())
    if weight >= 1.0:
        return log_assist
    return lm if weight == 0.0 else (1.0 - weight) * lm + weight * log_assist


def allowed_items(trie: Trie, exclude: Sequence[int] | None) -> np.ndarray:
    """The mask of items one user may be recommended: live and not excluded."""
    allowed = trie.live_items()
    if exclude is not None and len(exclude):
        allowed[np.asarray(exclude, dtype=np.int64)] = False
    return allowed


def rerank_topk(model, codec, trie: Trie, prompts: Sequence[Sequence[int]], k: int, assist: np.ndarray,
                depth: int, weight: float, exclude: Sequence[Sequence[int]] | None = None,
                stats: RerankStats | None = None) -> Ranked:
    """Top-`k` items per prompt by the fused score over the assistant's candidates (module doc)."""
    _lm.check_topk_request(prompts, k, exclude)
    if assist is None:
        raise GenrecError("rerank decoding draws its candidates from an assistant, but no item distributions were given",
                          "pass the assistant's item probabilities, one row per prompt")
    assist = _lm.check_assist(assist, len(prompts), trie.n_items, weight)
    if k > depth:
        raise GenrecError(f"rerank depth {depth} must be at least k ({k})", f"use rerank_depth >= {k} or ask for fewer items")
    cands = rerank_candidates(trie, assist, depth, exclude)
    scores = []
    for u, items in enumerate(cands):
        lm = None
        if weight < 1.0 and items.size:
            lm = score_items(model, codec, prompts[u], items.tolist())
            if stats is not None:
                stats.scored += int(items.size)
        scores.append(fused_scores(items, lm, assist[u], allowed_items(trie, exclude[u] if exclude is not None else None), weight))
    if stats is not None:
        stats.users += len(prompts)
        stats.short += sum(int(c.size < depth) for c in cands)
    return rank_lists(cands, scores, k)
