"""How GenRec turns a prompt into ranked catalogue items: one typed decoding config.

Every decoding setting lives here, once, with its default, its check and its help text:
the mode (beam, exact, free, rerank), the beam width, users per forward batch, scoring
options, free decoding's grounding, exact decoding's search budget, and the text-free
assistant: fused into beam search at every step (D3), proposing the candidates that
the language model scores in rerank mode (LlamaRec's two stages), or tilting free
decoding's bigrec grounding towards what it finds likely (BIGRec). ``Decoder``,
``GenRec``, ``genrec.Recommender``, the CLI and the HTTP service all take a
:class:`DecodingConfig`; it is frozen (hashable), so a recommender keeps one decoder per
config and a request may ask for another one.

``DecodingConfig.of(config, **changes)`` is the way to derive one: validated, with every
problem reported at once.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, ValidationError, model_validator

from ..config import Config, _format_errors
from ..errors import ConfigError

Mode = Literal["beam", "exact", "free", "rerank"]
Grounding = Literal["exact", "bm25", "embedding", "bigrec"]
AssistKind = Literal["sasrec", "popularity", "last-item"]
MODES: tuple[str, ...] = get_args(Mode)
#: the modes that use an assistant (rerank needs one)
ASSISTED = ("beam", "rerank")


class DecodingConfig(Config):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    mode: Mode = Field("beam", description="beam (constrained beam search), exact (best-first search: the model's true top-k), free (the paper's unconstrained beams, mapped to items) or rerank (the assistant's top items, each scored by the model)")
    beams: int = Field(10, ge=1, description="beam width in beam and free decoding; k may not exceed it")
    batch_size: int = Field(8, ge=1, description="users decoded together in one forward batch")
    length_normalise: bool = Field(False, description="beam: rank by mean instead of summed log-probability (D3 advises against it)")
    renormalise: bool = Field(False, description="score each token among the catalogue's continuations only")
    max_expansions: int = Field(2000, ge=1, description="exact: search budget, trie nodes expanded per user")
    expand: int = Field(16, ge=1, description="exact: trie nodes expanded per user per forward pass")
    grounding: Grounding = Field("exact", description="free: map generated text to items by exact title match (the paper's), bm25 or embedding, or rank the whole catalogue by its distance to the best output (bigrec)")
    ground_weight: float | None = Field(None, ge=0, description="free with grounding=bigrec: BIGRec's gamma, distances scaled by (1 + P)^-gamma with P the assistant's min-max normalised probability (default: the gamma chosen on validation and stored with the run; 0 without an assistant)")
    rerank_depth: int = Field(20, ge=1, description="rerank: how many of the assistant's top items the model scores (LlamaRec ranks 20); k may not exceed it")
    assist: AssistKind | None = Field(None, description="beam: an assistant fused at every step (D3); rerank: the assistant that proposes the candidates (required); free with grounding=bigrec: the probabilities P that tilt the distances; sasrec, popularity or last-item (BM25 on the last title)")
    assist_weight: float | None = Field(None, ge=0, le=1, description="assistant weight w: score (1-w) log p_LM + w log p_assist (default: the weight chosen on validation and stored with the run)")
    assist_minutes: float = Field(5.0, gt=0, description="training budget of the SASRec assistant when the run has none stored")

    def __init__(self, **data: Any):
        # built directly (DecodingConfig(beams=0)) a bad value is a ConfigError, as from
        # build(). Not in Config itself: pydantic calls a custom __init__ for nested models
        # too, and a nested config (TrainConfig.lora) must report its fields dotted
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ConfigError(_format_errors(e, type(self)), self.help_hint()) from None

    @model_validator(mode="after")
    def _consistent(self) -> DecodingConfig:
        bigrec = self.is_bigrec
        if self.assist is not None and self.mode not in ASSISTED and not bigrec:
            raise ValueError(f"an assistant is used in beam and rerank decoding (and by free decoding's bigrec grounding) only, "
                             f"not in {self.mode} decoding{' with ' + self.grounding + ' grounding' if self.mode == 'free' else ''}: "
                             "use mode=beam or mode=rerank with an assistant, or drop the assistant")
        if self.mode == "free" and self.assist_weight not in (None, 0.0):
            raise ValueError("assist_weight is the fusion weight of beam and rerank decoding; free decoding's bigrec grounding "
                             "takes ground_weight (BIGRec's gamma)")
        if self.ground_weight not in (None, 0.0) and not (bigrec and self.assist is not None):
            raise ValueError("ground_weight (BIGRec's gamma) scales distances by an assistant's probabilities: it needs "
                             "mode=free, grounding=bigrec and assist=popularity (BIGRec's) or sasrec")
        if self.mode == "rerank" and self.renormalise:
            raise ValueError("renormalise scores each token among the whole catalogue's continuations, which rerank "
                             "decoding does not search: drop renormalise, or use mode=beam")
        if self.mode == "rerank" and self.assist is None:
            raise ValueError("rerank decoding scores the assistant's top items, but no assistant is named: "
                             "add assist=last-item, sasrec or popularity")
        if self.assist is None and self.assist_weight not in (None, 0.0):
            raise ValueError("assist_weight is set but no assistant is: name one with assist=sasrec or assist=popularity")
        return self

    @classmethod
    def help_hint(cls) -> str:
        return "decoding settings: --decode, --beams, --grounding, --assist, --assist-weight, --rerank-depth (see `genrec recommend --help`)"

    @classmethod
    def of(cls, config: DecodingConfig | None = None, **changes: Any) -> DecodingConfig:
        """`config` (default: the defaults) with `changes`, validated; None values are
        left out (so an unset CLI flag keeps the config's value)."""
        base = config.model_dump() if config is not None else {}
        base.update({k: v for k, v in changes.items() if v is not None})
        return cls.build(base)

    def with_mode(self, mode: str) -> DecodingConfig:
        """This config in another mode; the assistant, used in beam and rerank decoding
        and by free decoding's bigrec grounding only, is left out of the others, and its
        weight, chosen per mode, is left to the run's stored one for the new mode."""
        check_mode(mode)
        data = {**self.model_dump(), "mode": mode}
        if mode == "free" and data["grounding"] == "bigrec":
            data.update(assist_weight=None)
        elif mode not in ASSISTED:
            data.update(assist=None, assist_weight=None, ground_weight=None)
        elif mode != self.mode:
            data.update(assist_weight=None, ground_weight=None)
        return type(self).build(data)

    @property
    def fused_weight(self) -> float:
        """The assistant's weight in the fused score of beam search and rerank (0: the
        language model alone)."""
        return float(self.assist_weight or 0.0) if self.assist is not None and self.mode in ASSISTED else 0.0

    @property
    def is_bigrec(self) -> bool:
        """Free decoding with BIGRec's grounding: the whole catalogue ranked, k not limited by the beams."""
        return self.mode == "free" and self.grounding == "bigrec"

    @property
    def max_k(self) -> int | None:
        """The most items one list may hold in this mode: the beam width of beam and free
        decoding, the rerank depth; None where the whole catalogue is ranked (exact
        decoding, free decoding's bigrec grounding)."""
        if self.mode == "rerank":
            return self.rerank_depth
        if self.mode == "beam" or (self.mode == "free" and not self.is_bigrec):
            return self.beams
        return None

    @property
    def max_k_setting(self) -> tuple[str, str] | None:
        """What :attr:`max_k` is, as (its name in messages, the field that sets it):
        ``("rerank depth", "rerank_depth")``, ``("beam width", "beams")``, or None."""
        if self.max_k is None:
            return None
        return ("rerank depth", "rerank_depth") if self.mode == "rerank" else ("beam width", "beams")

    @property
    def uses_assistant(self) -> bool:
        """Whether decoding with this config reads the assistant's item distributions: beam
        search at a positive weight, rerank always, bigrec grounding at a positive gamma."""
        if self.assist is None:
            return False
        if self.mode == "rerank":
            return True
        if self.mode == "free":
            return self.is_bigrec and (self.ground_weight or 0.0) > 0
        return self.fused_weight > 0

    def describe(self) -> dict:
        """The settings that apply to this mode (as recorded in metrics.json and /info)."""
        d = self.model_dump()
        if self.mode != "free":
            d.pop("grounding")
        if self.mode != "exact":
            d.pop("max_expansions")
            d.pop("expand")
        if self.mode != "rerank":
            d.pop("rerank_depth")
        if not self.is_bigrec:
            d.pop("ground_weight")
        if self.assist is None or self.mode == "free":
            d.pop("assist_weight")
        if self.assist is None:
            d.pop("assist_minutes")
        return d


def check_mode(mode: str) -> Mode:
    """`mode` if it is a decoding mode, else a ConfigError listing the modes."""
    if mode not in MODES:
        raise ConfigError([f"mode: unknown decoding mode {mode!r}"], f"use one of: {', '.join(MODES)}")
    return mode  # type: ignore[return-value]
