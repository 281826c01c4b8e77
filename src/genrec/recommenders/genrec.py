"""GenRec (Ji et al., 2023): a LoRA-tuned causal LM writes the next item's title.

A run folder from `genrec train` (adapter + config) is loaded onto its backbone; a
user's history becomes the same prompt as in training, and the constrained decoder
(``genrec.decoding``) returns catalogue items only: beam search by default, the exact
top-K, or the paper's free decoding mapped back to items. The catalogue can change
after training (``add_items`` / ``remove_items``): a new title is recommendable at once,
without retraining (the cold-start promise of title-based generation).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..data.dataset import Dataset
from ..errors import GenrecError
from ..ranking import NO_ITEM, Ranked
from .base import Recommender

DecodeMode = Literal["beam", "exact", "free"]


class GenRec(Recommender):
    name = "genrec"

    def __init__(self, run_dir: str | Path | None = None, decode: DecodeMode = "beam", beams: int = 10, batch_size: int = 8, grounding: str = "exact",
                 max_expansions: int = 2000, renormalise: bool = False, length_normalise: bool = False,
                 threads: int | None = None, device: str | None = None, train_config=None,
                 assist: str | None = None, assist_weight: float | None = None, assist_minutes: float = 5.0):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        # a text-free assistant fused into beam decoding (recommenders/assist.py); the
        # weight defaults to the one chosen on validation and stored with the run
        self.assist, self.assist_weight, self.assist_minutes = assist, assist_weight, assist_minutes
        self.decode, self.beams, self.batch_size, self.grounding = decode, beams, batch_size, grounding
        self.max_expansions, self.threads, self.device = max_expansions, threads, device
        self.renormalise, self.length_normalise = renormalise, length_normalise
        self.train_config = train_config
        self._loaded = False

    @property
    def options(self) -> dict:
        """The run and decoding settings, as recorded in an evaluation's metrics.json."""
        cfg = getattr(self, "cfg", None)
        return {
            "run": str(self.run_dir) if self.run_dir else None, "decode": self.decode, "beams": self.beams,
            "grounding": self.grounding if self.decode == "free" else None,
            "max_expansions": self.max_expansions if self.decode == "exact" else None,
            "renormalise": self.renormalise, "length_normalise": self.length_normalise,
            "backbone": cfg.backbone if cfg else None, "item_repr": cfg.item_repr if cfg else None,
            "finetune": cfg.finetune if cfg else None,
            "assist": self.assist, "assist_weight": self.assist_weight if self.assist else None,
        }

    # ------------------------------------------------------------------ lifecycle

    def fit(self, dataset: Dataset, progress=None) -> GenRec:
        """Train with ``train_config`` into ``run_dir`` (what `genrec train` does), then load."""
        from ..training.loop import train

        if self.train_config is None or self.run_dir is None:
            raise GenrecError("GenRec.fit needs train_config and run_dir", "or load a trained run with GenRec.load(run_dir)")
        train(dataset.path, self.run_dir, self.train_config, overwrite=True, progress=progress)
        return self._load(dataset)

    @classmethod
    def load(cls, path: str | Path, dataset: Dataset | None = None, **options) -> GenRec:
        """Load a run folder (or a :meth:`save` of one); `options` are the decoding settings."""
        return cls(path, **options)._load(dataset)

    def save(self, path: str | Path) -> None:
        """Copy the run folder to `path` (without its resumable checkpoints): GenRec's model
        is its run. Decoding settings are not part of it; they are given to :meth:`load`,
        as to ``genrec evaluate --run``."""
        import shutil

        from .._io import atomic_dir

        self._require_loaded()
        if self._removed or len(self.codec) != len(self.dataset.catalogue):
            raise GenrecError(
                "the catalogue was changed in memory (items added or removed); a saved run would not hold the change",
                "save before changing the catalogue, or use genrec.Recommender, which keeps changes in the run folder",
            )
        with atomic_dir(path) as tmp:
            shutil.copytree(self.run_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints"))

    #: options `from_options` accepts (besides `run`)
    OPTIONS = ("decode", "beams", "batch_size", "grounding", "max_expansions", "renormalise", "length_normalise", "threads", "device",
               "assist", "assist_weight", "assist_minutes")

    @classmethod
    def from_options(cls, dataset: Dataset, options: dict, progress=None) -> GenRec:
        """Build from `genrec evaluate` options: ``run`` (required) plus decoding settings."""
        options = dict(options)
        run = options.pop("run", None) or options.pop("model", None)
        if run is None:
            raise GenrecError("the genrec method needs a run folder", "pass --run RUN_DIR (written by `genrec train`)")
        unknown = sorted(set(options) - set(cls.OPTIONS) - {"seed"})
        if unknown:
            raise GenrecError(f"options {unknown} do not apply to the genrec method", f"use only: {', '.join(cls.OPTIONS)}")
        options.pop("seed", None)
        return cls.load(run, dataset, **options)

    def _load(self, dataset: Dataset | None) -> GenRec:
        import torch

        from ..decoding import Decoder, Trie
        from ..model.backbone import load_backbone
        from ..model.encoding import Codec
        from ..model.finetune import keep_layers, load_trained
        from ..model.prompting import PromptBuilder
        from ..training.loop import item_names
        from ..training.rundir import RunDir

        if self.threads:
            torch.set_num_threads(self.threads)
        run = RunDir(self.run_dir)
        info = run.info()
        if info.get("status") not in ("finished", "stopped early") or not (run.path / "adapter").is_dir():
            raise GenrecError(
                f"the run in {run.path} has no finished adapter (status: {info.get('status')})",
                "finish it with `genrec train ... --resume`, or point at another run",
            )
        cfg = run.config()
        if dataset is None:
            dataset = Dataset(info["dataset"]["path"])
        if len(dataset.catalogue) != info["dataset"]["n_items"] and cfg.item_repr != "title":
            raise GenrecError(
                f"the run was trained on {info['dataset']['n_items']} items but the dataset has {len(dataset.catalogue)}",
                "evaluate on the dataset the run was trained on",
            )
        if cfg.item_repr == "item-token" and self.decode == "free":
            raise GenrecError("free decoding writes text, but this run writes items as item tokens", "use --decode beam or exact")
        self.dataset, self.cfg = dataset, cfg
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        backbone = load_backbone(info["backbone"].get("path") or cfg.backbone, dtype=cfg.dtype, device=device)
        if cfg.num_layers:
            keep_layers(backbone.model, cfg.num_layers)
        self.model = load_trained(backbone.model, run.path / "adapter").eval()
        self.tokenizer = backbone.tokenizer
        names = list(_read_names(run.path)) if cfg.item_repr == "random-id" else item_names(dataset, cfg)
        self.item_ids = list(dataset.catalogue.item_ids)
        self.titles = list(dataset.catalogue.titles)
        self.codec = Codec(self.tokenizer, names, info.get("item_token_start"))
        self.prompts = PromptBuilder.for_run(self.codec, dataset, cfg)
        self.trie = Trie.build(self.codec) if self.decode != "free" else None
        self.assistant = None
        if self.assist:
            from .assist import Assistant, stored_weight

            if self.assist_weight is None:
                self.assist_weight = stored_weight(run.path, self.assist)
            if self.decode != "beam":
                raise GenrecError(f"the assistant is fused in beam decoding, not {self.decode}", "use --decode beam with an assistant")
            if self.assist_weight > 0:  # at weight 0 the assistant changes nothing: do not compute it
                self.assistant = Assistant.for_run(self.assist, run.path, dataset, self.assist_minutes, self.threads)
        self.decoder = Decoder(self.model, self.codec, self.trie, mode=self.decode, beams=self.beams,
                               batch_size=self.batch_size, grounding=self.grounding, max_expansions=self.max_expansions,
                               renormalise=self.renormalise, length_normalise=self.length_normalise,
                               assist_weight=self.assist_weight if self.assist else 0.0)
        self._removed: set[int] = set()
        self._loaded = True
        return self

    # ------------------------------------------------------------------ ranking

    @property
    def max_history(self) -> int:
        """Most recent items of a history the prompt keeps (as in training)."""
        return self.prompts.max_history

    def prompt_ids(self, history: Sequence[int]) -> list[int]:
        """The prompt of `history`, built as in training (``genrec.model.prompting``: the
        run's cap and cutoff, and the first instruction paraphrase)."""
        return self.prompts.prompt_ids(history)

    @property
    def max_k(self) -> int | None:
        """The beam width in beam and free decoding (the contract's beam-width rule); exact
        decoding ranks any k."""
        return self.beams if self.decode in ("beam", "free") else None

    def _require_loaded(self) -> None:
        if not self._loaded:
            raise GenrecError("GenRec is neither fitted nor loaded",
                              "call fit(dataset) (with train_config and run_dir), or load a trained run with GenRec.load(run_dir)")

    def recommend(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_seen: bool = True) -> Ranked:
        self._require_loaded()
        if self.max_k is not None and k > self.max_k:
            raise GenrecError(f"beam width {self.beams} must be at least k ({k})", f"use beams >= {k} or ask for fewer items")
        for u, h in enumerate(histories):
            if len(h) == 0:  # every prompt in training holds at least one item
                raise GenrecError(f"history {u} is empty", "GenRec needs at least one item in every history")
        prompts = [self.prompt_ids(h) for h in histories]
        exclude = [sorted(set(int(i) for i in h)) for h in histories] if exclude_seen else None
        assist = self.assistant.distribution(histories, len(self.codec)) if self.assistant is not None else None
        ranked = self.decoder.topk(prompts, k, exclude, assist=assist)
        if self._removed and self.decode == "free":
            bad = np.isin(ranked.items, list(self._removed))
            ranked.items[bad] = NO_ITEM
            ranked.scores[bad] = -np.inf
        return ranked

    @property
    def last_stats(self) -> dict:
        return self.decoder.last_stats

    # ------------------------------------------------------------------ catalogue updates

    def add_items(self, item_ids: Sequence[str], titles: Sequence[str]) -> list[int]:
        """Make new items recommendable now; returns their indices."""
        if self.cfg.item_repr != "title":
            raise GenrecError("only a title-based run can add items without retraining", "retrain the random-id variant")
        start = len(self.titles)
        self.item_ids.extend(item_ids)
        self.titles.extend(titles)
        self.codec.add_names(list(titles))
        idx = list(range(start, start + len(titles)))
        if self.trie is not None:
            self.trie.add([self.codec.response_ids(i) for i in idx], idx)
        return idx

    def remove_items(self, indices: Sequence[int]) -> None:
        """Items that may no longer be recommended (their index stays reserved)."""
        if self.trie is not None:
            self.trie.remove(list(indices))
        self._removed.update(int(i) for i in indices)


def _read_names(run_path: Path) -> list[str]:
    from .._io import read_json

    return read_json(run_path / "names.json")
