"""Catalogue-constrained top-K decoding: the model's top-K must be real catalogue items.

``Decoder(model, codec, mode=...)`` is the one entry point the GenRec recommender uses:

* ``beam`` (default): batched beam search over the token trie, the prompt run once per
  user and its cache shared by the user's beams (:mod:`.beam`);
* ``exact``: best-first search over the trie, provably the model's top-K (:mod:`.exact`);
* ``free``: the paper's unconstrained beam search, mapped to items by exact string match
  or grounded by BM25 / embeddings (:mod:`.free`).

Prompts are token ids up to where the response starts, e.g.
``codec.encode(spec.prompt(history, key))[0]``; ``exclude`` lists item indices per user
(usually the history) that must not be returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ..errors import GenrecError
from ..ranking import Ranked
from .beam import BeamStats, beam_search
from .exact import ExactStats, exact_topk, score_items
from .free import FreeDecoder, hf_beam_topk
from .trie import Trie

Mode = Literal["beam", "exact", "free"]

__all__ = [
    "BeamStats", "Decoder", "ExactStats", "FreeDecoder", "Trie", "beam_search", "exact_topk",
    "hf_beam_topk", "score_items",
]


class Decoder:
    """Top-K catalogue items from a causal LM, one call for a batch of users.

    ``beams``: beam width (beam and free modes; must be >= k). ``batch_size``: users per
    forward batch. ``length_normalise``: rank by mean instead of summed log-probability
    (beam mode). ``max_expansions`` / ``expand``: node budget per user and nodes per user
    per forward (exact mode). ``grounding``: exact, bm25 or embedding (free mode).
    After each call ``last_stats`` holds what the mode reports (steps, expansions,
    budget exhaustion, share of free outputs that were not titles).
    """

    def __init__(self, model, codec, trie: Trie | None = None, mode: Mode = "beam", beams: int = 10,
                 batch_size: int = 16, length_normalise: bool = False, max_expansions: int = 2000,
                 expand: int = 16, grounding: str = "exact", renormalise: bool = False, assist_weight: float = 0.0):
        if mode not in ("beam", "exact", "free"):
            raise GenrecError(f"unknown decoding mode {mode!r}", "use beam, exact or free")
        if beams < 1 or batch_size < 1:
            raise GenrecError("beams and batch_size must be at least 1", "pass positive values")
        self.model, self.codec, self.mode = model, codec, mode
        self.trie = trie if trie is not None or mode == "free" else Trie.build(codec)
        self.beams, self.batch_size, self.length_normalise = beams, batch_size, length_normalise
        self.renormalise = renormalise
        if not 0.0 <= assist_weight <= 1.0:
            raise GenrecError(f"assist_weight={assist_weight} is outside [0, 1]", "use 0 (language model only) to 1 (assistant only)")
        if assist_weight > 0 and mode != "beam":
            raise GenrecError(f"an assistant is fused in beam decoding only, not in {mode} decoding",
                              "use --decode beam with an assistant, or drop the assistant")
        self.assist_weight = assist_weight
        self.max_expansions, self.expand = max_expansions, expand
        self.free = FreeDecoder(model, codec, beams=beams, grounding=grounding) if mode == "free" else None
        self.last_stats: dict = {}

    def topk(self, prompts: Sequence[Sequence[int]], k: int, exclude: Sequence[Sequence[int]] | None = None,
             assist=None) -> Ranked:
        """``assist``: per prompt, an assistant's item distribution (fused when ``assist_weight`` > 0)."""
        if self.assist_weight > 0 and assist is None:
            raise GenrecError("assist_weight > 0 needs the assistant's item distributions", "pass assist= to topk")
        if self.mode == "beam":
            st = BeamStats()
            out = beam_search(self.model, self.trie, prompts, k, beams=self.beams, exclude=exclude,
                              batch_size=self.batch_size, pad_id=self.codec.pad_id,
                              length_normalise=self.length_normalise, renormalise=self.renormalise, stats=st,
                              assist=assist, assist_weight=self.assist_weight)
            self.last_stats = vars(st)
        elif self.mode == "exact":
            st = ExactStats()
            out = exact_topk(self.model, self.trie, prompts, k, exclude=exclude, batch_size=self.batch_size,
                             expand=self.expand, max_expansions=self.max_expansions, pad_id=self.codec.pad_id, stats=st)
            self.last_stats = vars(st)
        else:
            out = self.free.topk(prompts, k, exclude)
            self.last_stats = dict(self.free.last_stats)
        return out
