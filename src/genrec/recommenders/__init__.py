"""Recommenders: one contract (``base``) and every method that implements it.

``METHODS`` maps a method name to its class; ``build_method`` turns a name plus options
into a fitted (or loaded) recommender. The CLI and the evaluation code only go through
these two, so a new method is one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import GenrecError
from ..ranking import INVALID, NO_ITEM, Ranked
from .base import IndexRecommender, top_k_from_scores


class _Methods(Mapping[str, type[IndexRecommender]]):
    """name → class, importing a method's module only when it is asked for.

    ``genrec evaluate --method popularity`` must not pay for importing torch.
    """

    def __init__(self, entries: dict[str, str]):
        self._entries = entries

    def __getitem__(self, name: str) -> type[IndexRecommender]:
        module, cls = self._entries[name].split(":")
        return getattr(importlib.import_module(module, __name__), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


METHODS: Mapping[str, type[IndexRecommender]] = _Methods(
    {
        "popularity": ".popularity:Popularity",
        "last-item": ".last_item:LastItemBM25",
        "sasrec": ".sasrec:SASRec",
        # the fine-tuned LLM; its `from_options(dataset, options)` loads the run folder
        # `genrec train` wrote (option `run`, the CLI's `--run`)
        "genrec": ".genrec:GenRec",
    }
)


def build_method(
    name: str,
    dataset,
    options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> IndexRecommender:
    """A ready recommender: loaded from ``options["model"]`` if given, else fitted on `dataset`.

    Other `options` are the method's config fields (``SASRecConfig``, ``LastItemConfig``);
    unknown fields are an error. ``threads`` and ``device`` may also be given with
    ``model`` (they do not change the trained model). `progress` receives training
    messages (SASRec's epochs).
    """
    if name not in METHODS:
        raise GenrecError(f"unknown method {name!r}", f"use one of: {', '.join(METHODS)}")
    cls = METHODS[name]
    options = {k: v for k, v in (options or {}).items() if v is not None}
    from_options = getattr(cls, "from_options", None)
    if from_options is not None:  # methods with their own loading rules (the LLM's run folder)
        return from_options(dataset, options, progress=progress)
    config_class = getattr(cls, "config_class", None)
    model = options.pop("model", None)
    if model is not None:
        runtime = {k: options.pop(k) for k in ("threads", "device") if k in options}
        if options:
            raise GenrecError(
                f"options {sorted(options)} cannot change a saved {name} model ({model})",
                "drop them, or train a new model instead of --model",
            )
        if not Path(model).exists():
            raise GenrecError(f"{model} does not exist", "pass a folder written by the method's save (e.g. --save-model)")
        return cls.load(model, dataset, **runtime) if runtime else cls.load(model, dataset)
    if config_class is None:
        if options:
            raise GenrecError(f"the {name} method takes no options (got {sorted(options)})", "drop them")
        rec = cls()
    else:
        rec = cls(config_class.build(options))
    if progress is not None and "progress" in cls.fit.__code__.co_varnames:
        return rec.fit(dataset, progress=progress)
    return rec.fit(dataset)


__all__ = ["INVALID", "METHODS", "NO_ITEM", "Ranked", "IndexRecommender", "build_method", "top_k_from_scores"]
