"""Catalogue-constrained top-K decoding: the model's top-K must be real catalogue items.

``Decoder(model, codec, trie, DecodingConfig(...))`` is the one entry point the GenRec
recommender uses (the settings, one typed config, are in :mod:`.config`):

* ``beam`` (default): batched beam search over the token trie, the prompt run once per
  user and its cache shared by the user's beams (:mod:`.beam`);
* ``exact``: best-first search over the trie, provably the model's top-K (:mod:`.exact`);
* ``free``: the paper's unconstrained beam search, mapped to items by exact string match
  or grounded by BM25 / embeddings, or the catalogue ranked by distance to the best
  output (BIGRec) (:mod:`.free`);
* ``rerank``: the assistant's top items, each scored by the model and ranked by the
  fused score (:mod:`.rerank`; LlamaRec's two stages).

Prompts are token ids up to where the response starts, e.g.
``codec.encode(spec.prompt(history, key))[0]``; ``exclude`` lists item indices per user
(usually the history) that must not be returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import GenrecError
from ..ranking import Ranked
from .beam import BeamStats, beam_search
from .config import MODES, DecodingConfig, Grounding, Mode, check_mode
from .exact import ExactStats, exact_topk, score_items
from .free import FreeDecoder, hf_beam_topk
from .rerank import RerankStats, rerank_topk
from .trie import Trie

__all__ = [
    "MODES", "BeamStats", "Decoder", "DecodingConfig", "ExactStats", "FreeDecoder", "Grounding", "Mode", "RerankStats",
    "Trie", "beam_search", "check_mode", "exact_topk", "hf_beam_topk", "rerank_topk", "score_items",
]


class Decoder:
    """Top-K catalogue items from a causal LM, one call for a batch of users.

    ``config``: a :class:`DecodingConfig` (mode, beam width, users per forward batch,
    scoring, grounding, search budget, assistant weight); keyword ``settings`` change
    fields of it, e.g. ``Decoder(model, codec, mode="exact")``. After each call
    ``last_stats`` holds what the mode reports (steps, expansions, budget exhaustion,
    share of free outputs that were not titles).
    """

    def __init__(self, model, codec, trie: Trie | None = None, config: DecodingConfig | None = None, **settings):
        if "mode" in settings:
            check_mode(settings["mode"])
        self.config = config = DecodingConfig.of(config, **settings)
        self.model, self.codec, self.mode = model, codec, config.mode
        self.trie = trie if trie is not None or config.mode == "free" else Trie.build(codec)
        self.free = FreeDecoder(model, codec, beams=config.beams, grounding=config.grounding) if config.mode == "free" else None
        self.last_stats: dict = {}

    def topk(self, prompts: Sequence[Sequence[int]], k: int, exclude: Sequence[Sequence[int]] | None = None,
             assist=None) -> Ranked:
        """``assist``: per prompt, an assistant's item distribution (fused when the config's
        assistant weight is above 0; rerank draws its candidates from it at any weight; the
        bigrec grounding of free decoding scales distances by it at a positive gamma)."""
        c = self.config
        if c.uses_assistant and assist is None:
            raise GenrecError("the decoding config uses an assistant, but no item distributions were given", "pass assist= to topk")
        if c.mode == "beam":
            st = BeamStats()
            out = beam_search(self.model, self.trie, prompts, k, beams=c.beams, exclude=exclude,
                              batch_size=c.batch_size, pad_id=self.codec.pad_id,
                              length_normalise=c.length_normalise, renormalise=c.renormalise, stats=st,
                              assist=assist if c.fused_weight > 0 else None, assist_weight=c.fused_weight)
            self.last_stats = vars(st)
        elif c.mode == "rerank":
            st = RerankStats()
            out = rerank_topk(self.model, self.codec, self.trie, prompts, k, assist, depth=c.rerank_depth,
                              weight=c.fused_weight, exclude=exclude, stats=st)
            self.last_stats = vars(st)
        elif c.mode == "exact":
            st = ExactStats()
            out = exact_topk(self.model, self.trie, prompts, k, exclude=exclude, batch_size=c.batch_size,
                             expand=c.expand, max_expansions=c.max_expansions, pad_id=self.codec.pad_id, stats=st)
            self.last_stats = vars(st)
        else:
            out = self.free.topk(prompts, k, exclude, assist=assist if c.uses_assistant else None,
                                 ground_weight=float(c.ground_weight or 0.0))
            self.last_stats = dict(self.free.last_stats)
        return out
