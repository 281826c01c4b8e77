"""GenRec (Ji et al., 2023): a LoRA-tuned causal LM writes the next item's title.

A run folder from `genrec train` (adapter + config) is loaded onto its backbone; a
user's history becomes the same prompt as in training, and the constrained decoder
(``genrec.decoding``) returns catalogue items only: beam search by default, the exact
top-K, or the paper's free decoding mapped back to items. The catalogue can change
after training (``add_items`` / ``remove_items``): a new title is recommendable at once,
without retraining (the cold-start promise of title-based generation).

The recommender owns the live catalogue: one
:class:`~genrec.data.live_catalogue.LiveCatalogue` (``catalogue``: ids, titles, removed
items, lookups; ``item_ids`` and ``titles`` read it) beside the codec (what the model
writes for each item) and the trie (what constrained decoding may write). A change
updates the three together, all or nothing: new items are checked first
(:meth:`GenRec.check_new_items`), then the codec takes their titles, the trie their
tokens, and the catalogue, itself all or nothing, comes last; if any step fails, the
earlier ones are undone (the codec truncated, the trie restored from a snapshot of its
arrays taken before, O(trie size) as ``Trie.add``'s own concatenations are). A removal lowers the
trie's counts and then marks the catalogue; undoing it revives the items in the trie
(``Trie.add`` of their own tokens). Removed items keep their index (a history may name
them), so the three always have one entry per index. A trie built after changes (the
first constrained decoder of a free-decoding load) holds the live items only, even where
a removed title came back under a new index.

Given candidates (``score``, ``recommend(..., candidates=)``: re-ranking a candidate
list, as LlamaRec does), nothing is searched: each candidate's response (its title or
item token, then EOS) is scored by teacher forcing after the prompt
(``genrec.decoding.exact.score_items``), which is the score exact decoding ranks by, so
the beam width does not limit k. A config that fuses an assistant (beam mode) adds it per
item, as the beam's per-token terms add up along a title: ``(1 - w) log p_LM(item) + w
log p_assist(item)``, the assistant's mass normalised over the live catalogue (the beam
normalises over the items not excluded, a constant per user, so the order is the same);
``length_normalise`` divides by the response's length as the beam does. ``renormalise``
needs the whole catalogue's continuations and is refused for candidates.

Rerank decoding (``mode="rerank"``, ``genrec.decoding.rerank``) draws the candidates
itself: the assistant's ``rerank_depth`` most probable items the user may be
recommended, scored the same way and fused at the weight chosen for rerank on validation
(``rerank:<assist>`` in ``assist.json``; beam search keeps its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.live_catalogue import DuplicateItemError, LiveCatalogue
from ..decoding.config import ASSISTED, DecodingConfig, check_mode
from ..errors import GenrecError
from ..ranking import NO_ITEM, Ranked
from .base import Candidates, IndexRecommender, candidate_lists, rank_lists


class GenRec(IndexRecommender):
    """The fine-tuned LM as a recommender. Decoding settings are one
    :class:`~genrec.decoding.DecodingConfig` (``decoding=``, or its fields as keywords:
    ``GenRec.load(run, mode="exact")``; ``decode=`` is accepted for ``mode``); a call of
    :meth:`recommend` may pass another config, and a decoder is kept per config."""

    name = "genrec"
    eval_batch_size = 16

    def __init__(self, run_dir: str | Path | None = None, decoding: DecodingConfig | None = None,
                 threads: int | None = None, device: str | None = None, train_config=None, **settings):
        if "decode" in settings:  # the CLI's and evaluation's name for the mode
            settings["mode"] = settings.pop("decode")
        if "mode" in settings and settings["mode"] is not None:
            check_mode(settings["mode"])
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.decoding = DecodingConfig.of(decoding, **settings)
        self.threads, self.device = threads, device
        self.train_config = train_config
        self._loaded = False

    @property
    def beams(self) -> int:
        return self.decoding.beams

    @property
    def options(self) -> dict:
        """The run and decoding settings, as recorded in an evaluation's metrics.json."""
        cfg = getattr(self, "cfg", None)
        return {
            "run": str(self.run_dir) if self.run_dir else None, "decode": self.decoding.mode,
            **{k: v for k, v in self.decoding.describe().items() if k != "mode"},
            "backbone": cfg.backbone if cfg else None, "item_repr": cfg.item_repr if cfg else None,
            "finetune": cfg.finetune if cfg else None,
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
        """Copy the run folder to `path` as a portable run (``RunDir.export``: without its
        resumable checkpoints, with the catalogue it was loaded with): GenRec's model is its
        run. Decoding settings are not part of it; they are given to :meth:`load`, as to
        ``genrec evaluate --run``."""
        from ..training.rundir import RunDir

        self._require_loaded()
        if self.catalogue.changed:
            raise GenrecError(
                "the catalogue was changed in memory (items added or removed); a saved run would not hold the change",
                "save before changing the catalogue, or use genrec.Recommender, which keeps changes in the run folder",
            )
        with RunDir(self.run_dir).export(path, dataset=self.dataset):
            pass

    #: options `from_options` accepts (besides `run`): the decoding config's fields, its
    #: mode also as ``decode``, and where the model runs
    OPTIONS = ("decode", *DecodingConfig.model_fields, "threads", "device")

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
        if dataset is None:  # the dataset folder, or the run's own catalogue copy when that is gone
            dataset = run.dataset(info)
        if len(dataset.catalogue) != info["dataset"]["n_items"] and cfg.item_repr != "title":
            raise GenrecError(
                f"the run was trained on {info['dataset']['n_items']} items but the dataset has {len(dataset.catalogue)}",
                "evaluate on the dataset the run was trained on",
            )
        self.dataset, self.cfg = dataset, cfg
        self._check_fits(self.decoding)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        source = run.backbone_source(info)
        backbone = load_backbone(source, dtype=cfg.dtype, device=device)
        _check_weights(info.get("backbone") or {}, source, backbone.path)
        if cfg.num_layers:
            keep_layers(backbone.model, cfg.num_layers)
        self.model = load_trained(backbone.model, run.path / "adapter").eval()
        self.tokenizer = backbone.tokenizer
        names = list(_read_names(run.path)) if cfg.item_repr == "random-id" else item_names(dataset, cfg)
        self.catalogue = LiveCatalogue(dataset.catalogue.item_ids, dataset.catalogue.titles)
        self.codec = Codec(self.tokenizer, names, info.get("item_token_start"))
        self.prompts = PromptBuilder.for_run(self.codec, dataset, cfg)
        self.trie = None
        self._decoders: dict[DecodingConfig, object] = {}
        self._assistants: dict[str, object] = {}
        self.decoding = self.resolve(self.decoding)
        # built now (the trie; an assistant the run has not stored is trained), not in the first call
        self.decoder_for(self.decoding)
        self._assistant(self.decoding)
        self.last_stats: dict = {}
        self._loaded = True
        return self

    # ------------------------------------------------------------------ decoding

    def _check_fits(self, decoding: DecodingConfig) -> None:
        if self.cfg.item_repr == "item-token" and decoding.mode == "free":
            raise GenrecError("free decoding writes text, but this run writes items as item tokens", "use --decode beam or exact")

    def resolve(self, decoding: DecodingConfig) -> DecodingConfig:
        """`decoding` with what it leaves to the run filled in: the assistant's weight, or
        bigrec grounding's gamma (the one chosen on validation and stored with the run)."""
        from .assist import stored_weight

        if decoding.assist is not None and decoding.mode in ASSISTED and decoding.assist_weight is None:
            decoding = DecodingConfig.of(decoding, assist_weight=stored_weight(self.run_dir, decoding.assist, decoding.mode))
        if decoding.is_bigrec and decoding.assist is not None and decoding.ground_weight is None:
            decoding = DecodingConfig.of(decoding, ground_weight=stored_weight(self.run_dir, decoding.assist, "bigrec"))
        return decoding

    def decoder_for(self, decoding: DecodingConfig):
        """The decoder of `decoding` over this run's model, codec and trie, built on first
        use and kept (the trie is built when a first constrained decoder needs it)."""
        from ..decoding import Decoder

        decoding = self.resolve(decoding)
        decoder = self._decoders.get(decoding)
        if decoder is None:
            self._check_fits(decoding)
            if decoding.mode != "free" and self.trie is None:
                self.trie = _build_trie(self.codec, self.catalogue.removed)
            decoder = self._decoders[decoding] = Decoder(self.model, self.codec, self.trie, decoding)
        return decoder

    def _assistant(self, decoding: DecodingConfig):
        """The assistant `decoding` uses: the one rerank draws its candidates from, the one
        beam search fuses or bigrec grounding scales distances by (None at weight 0 there:
        it would change nothing)."""
        if not decoding.uses_assistant:
            return None
        if decoding.assist not in self._assistants:
            from .assist import Assistant

            self._assistants[decoding.assist] = Assistant.for_run(decoding.assist, self.run_dir, self.dataset,
                                                                   decoding.assist_minutes, self.threads)
        return self._assistants[decoding.assist]

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
        """The beam width in beam and free decoding (the contract's beam-width rule), the
        candidates drawn in rerank decoding; exact decoding ranks any k."""
        return self.decoding.max_k

    def _require_loaded(self) -> None:
        if not self._loaded:
            raise GenrecError("GenRec is neither fitted nor loaded",
                              "call fit(dataset) (with train_config and run_dir), or load a trained run with GenRec.load(run_dir)")

    def _check_histories(self, histories: Sequence[Sequence[int]]) -> None:
        for u, h in enumerate(histories):
            if len(h) == 0:  # every prompt in training holds at least one item
                raise GenrecError(f"history {u} is empty", "GenRec needs at least one item in every history")

    def recommend(self, histories: Sequence[Sequence[int]], k: int = 10, exclude_seen: bool = True,
                  decoding: DecodingConfig | None = None, candidates: Candidates | None = None) -> Ranked:
        """Top-`k` items per history; `decoding` replaces the loaded config for this call.
        With `candidates` the top `k` of those items, by :meth:`score` (no search)."""
        self._require_loaded()
        decoding = self.resolve(decoding) if decoding is not None else self.decoding
        if candidates is not None:
            return self._rank_candidates(histories, k, exclude_seen, decoding, candidates)
        if decoding.max_k is not None and k > decoding.max_k:
            what, field = decoding.max_k_setting
            raise GenrecError(f"{what} {decoding.max_k} must be at least k ({k})", f"use {field} >= {k} or ask for fewer items")
        self._check_histories(histories)
        decoder = self.decoder_for(decoding)
        prompts = [self.prompt_ids(h) for h in histories]
        exclude = [sorted(set(int(i) for i in h)) for h in histories] if exclude_seen else None
        if decoding.is_bigrec and self.catalogue.removed:  # it ranks the whole catalogue: never a removed item
            removed = self.catalogue.removed
            exclude = [sorted(set(e) | removed) for e in exclude] if exclude is not None else [sorted(removed)] * len(histories)
        assistant = self._assistant(decoding)
        assist = assistant.distribution(histories, len(self.codec)) if assistant is not None else None
        ranked = decoder.topk(prompts, k, exclude, assist=assist)
        self.last_stats = decoder.last_stats
        removed = self.catalogue.removed
        if removed and decoding.mode == "free":
            bad = np.isin(ranked.items, list(removed))
            ranked.items[bad] = NO_ITEM
            ranked.scores[bad] = -np.inf
        return ranked

    # ------------------------------------------------------------------ given candidates

    def score(self, histories: Sequence[Sequence[int]], candidates: Candidates | None = None,
              decoding: DecodingConfig | None = None) -> np.ndarray:
        """Each candidate's score after each history (see the module doc): the summed
        log-probability of its response, with the config's assistant and length
        normalisation. ``None`` scores every item (removed ones -inf)."""
        self._require_loaded()
        decoding = self.resolve(decoding) if decoding is not None else self.decoding
        self._check_histories(histories)
        if candidates is None:
            every = np.array([i for i in range(len(self.codec)) if i not in self.catalogue.removed], dtype=np.int64)
            scores = np.full((len(histories), len(self.codec)), -np.inf)
            for u, row in enumerate(self._score_lists(histories, [every] * len(histories), decoding)):
                scores[u, every] = row
            return scores
        cands = self._candidates(histories, candidates)
        rows = self._score_lists(histories, cands, decoding)
        out = np.full((len(histories), max((len(c) for c in cands), default=0)), np.nan)
        for u, row in enumerate(rows):
            out[u, : len(row)] = row
        return out

    def _candidates(self, histories: Sequence[Sequence[int]], candidates: Candidates) -> list[np.ndarray]:
        cands = candidate_lists(candidates, len(histories), len(self.codec))
        removed = sorted({int(i) for c in cands for i in c if int(i) in self.catalogue.removed})
        if removed:
            raise GenrecError(f"candidates {removed[:5]}{' ...' if len(removed) > 5 else ''} were removed from the catalogue",
                              "leave removed items out of the candidates: they may no longer be recommended")
        return cands

    def _rank_candidates(self, histories, k: int, exclude_seen: bool, decoding: DecodingConfig, candidates) -> Ranked:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise GenrecError(f"k must be at least 1, got {k!r}", "ask for one or more items")
        self._check_histories(histories)
        cands = [np.unique(c) for c in self._candidates(histories, candidates)]  # a repeat is ranked once
        if exclude_seen:
            cands = [c[~np.isin(c, np.asarray(h, dtype=np.int64))] for c, h in zip(cands, histories, strict=True)]
        ranked = rank_lists(cands, self._score_lists(histories, cands, decoding), int(k))
        self.last_stats = {"mode": "candidates", "users": len(histories), "scored": int(sum(len(c) for c in cands))}
        return ranked

    def _score_lists(self, histories: Sequence[Sequence[int]], cands: Sequence[np.ndarray],
                     decoding: DecodingConfig) -> list[np.ndarray]:
        """Per history, the scores of its candidates (checked catalogue indices)."""
        from ..decoding.exact import score_items
        from ..decoding.rerank import fused_scores

        if decoding.mode == "beam" and decoding.renormalise:
            raise GenrecError("renormalise scores each token among the whole catalogue's continuations, which "
                              "scoring given candidates does not search", "score candidates with renormalise=False")
        self._check_fits(decoding)
        assistant = self._assistant(decoding)
        assist = assistant.distribution(histories, len(self.codec)) if assistant is not None else None
        w = decoding.fused_weight  # above 0 only where the assistant is used, so `assist` is given
        live = np.ones(len(self.codec), dtype=bool)
        live[sorted(self.catalogue.removed)] = False  # the assistant's mass is normalised over live items
        out = []
        for u, (history, items) in enumerate(zip(histories, cands, strict=True)):
            unique, where = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
            if not unique.size:
                out.append(np.zeros(0))
                continue
            scores = score_items(self.model, self.codec, self.prompt_ids(history), unique.tolist()) if w < 1.0 else None
            if w > 0:  # the same per-item fusion as rerank decoding
                scores = fused_scores(unique, scores, assist[u], live, w)
            if decoding.mode == "beam" and decoding.length_normalise:
                scores = scores / np.array([len(self.codec.response_ids(int(i))) for i in unique])
            out.append(scores[where])
        return out

    # ------------------------------------------------------------------ the live catalogue

    @property
    def item_ids(self) -> list[str]:
        """Item ids by catalogue index, added and removed items included: the live
        catalogue's own list, to read (change it with :meth:`add_items` / :meth:`remove_items`)."""
        return self.catalogue.item_ids

    @property
    def titles(self) -> list[str]:
        """Titles by catalogue index, as :attr:`item_ids`."""
        return self.catalogue.titles

    def check_new_items(self, item_ids: Sequence[str], titles: Sequence[str]) -> list[list[int]]:
        """Everything that would make :meth:`add_items` refuse these items, found before
        anything changes: a run that does not write titles, an id or title taken or given
        twice (``LiveCatalogue.check_new``, DuplicateItemError), a title holding the model's
        special tokens, or one written with the same tokens as a live item or another new one
        (DuplicateItemError). Returns each title's tokens."""
        self._require_loaded()
        if self.cfg.item_repr != "title":
            kind = "random ids" if self.cfg.item_repr == "random-id" else "item tokens"
            raise GenrecError(f"this run identifies items by {kind}, so it cannot learn new items without retraining",
                              "retrain with item_repr=title to add items")
        if len(item_ids) != len(titles):
            raise GenrecError(f"{len(item_ids)} item ids for {len(titles)} titles", "give one title per item id")
        items = list(zip(item_ids, titles, strict=True))
        self.catalogue.check_new(items)
        codec = self.codec
        tokens = codec.encode_names(list(titles))
        for (item_id, title), ids in zip(items, tokens, strict=True):
            if codec.eos_id in ids:
                raise GenrecError(f"the title {title!r} of item {item_id!r} contains the model's end-of-text marker",
                                  "remove special tokens such as <|endoftext|> from the title")
            if not ids:
                raise GenrecError(f"the title {title!r} of item {item_id!r} has no tokens", "give every item a non-empty title")
        special = [t for t in getattr(codec.tokenizer, "all_special_tokens", []) if t]
        for item_id, title in items:
            found = [t for t in special if t in title]
            if found:
                raise GenrecError(f"the title {title!r} of item {item_id!r} contains the model's special token(s) "
                                  f"{', '.join(found)}, which would end or restructure its prompt",
                                  "remove special tokens such as <|endoftext|> and <|im_start|> from the title")
        # the trie knows the live token sequences; without one (free decoding so far) the codec does
        live = None if self.trie is not None else {
            tuple(t) for i, t in enumerate(codec.item_tokens) if i not in self.catalogue.removed}
        by_tokens: dict[tuple[int, ...], str] = {}
        for (item_id, title), ids in zip(items, tokens, strict=True):
            key = tuple(ids)
            taken = key in live if live is not None else self.trie.contains([*ids, codec.eos_id])
            if key in by_tokens or taken:
                other = by_tokens.get(key) or "a live item"
                raise DuplicateItemError(f"the title {title!r} of item {item_id!r} is written with the same tokens as {other}",
                                         "make the title differ (e.g. add the year or brand)")
            by_tokens[key] = repr(title)
        return tokens

    def add_items(self, item_ids: Sequence[str], titles: Sequence[str]) -> list[int]:
        """Make new items recommendable now; returns their indices (the next free ones).

        Checked first (:meth:`check_new_items`); then the codec, the trie and the live
        catalogue take them together: if any of them fails, none has changed (module doc).
        """
        item_ids, titles = [str(i) for i in item_ids], list(titles)
        self.check_new_items(item_ids, titles)
        if not titles:
            return []
        start = len(self.codec)
        if start != len(self.catalogue) or (self.trie is not None and self.trie.n_items != start):
            raise GenrecError("the codec, trie and live catalogue are out of step", "this is a bug in genrec")
        idx = list(range(start, start + len(titles)))
        trie_was = self.trie.snapshot() if self.trie is not None else None
        try:
            self.codec.add_names(titles)
            if self.trie is not None:
                self.trie.add([self.codec.response_ids(i) for i in idx], idx)
            self.catalogue.add(item_ids, titles, idx)  # last: all or nothing by itself
        except BaseException:
            self.codec.truncate(start)
            if trie_was is not None:
                self.trie.restore(trie_was)
            raise
        self._catalogue_changed()
        return idx

    def remove_items(self, indices: Sequence[int]) -> None:
        """Items that may no longer be recommended (their index stays reserved, so a history
        may still name them; removing a removed item again changes nothing). All or nothing,
        as :meth:`add_items`: a GenrecError for an index outside the catalogue changes nothing."""
        self._require_loaded()
        idx = sorted({int(i) for i in indices})
        bad = [i for i in idx if not 0 <= i < len(self.catalogue)]
        if bad:
            raise GenrecError(f"items {bad[:5]} are not in the catalogue (indices 0..{len(self.catalogue) - 1})",
                              "remove items by their catalogue index")
        live = [i for i in idx if self.catalogue.is_live(i)]
        if not live:
            return
        try:
            if self.trie is not None:
                self.trie.remove(live)
            self.catalogue.remove(live)
        except BaseException:
            if self.trie is not None:  # revive what the trie lost (their own tokens, their own leaves)
                gone = [i for i, at in zip(live, self.trie.item_at(self.trie.leaf_of(live)).tolist(), strict=True) if at != i]
                self.trie.add([self.codec.response_ids(i) for i in gone], gone)
            raise
        self._catalogue_changed()

    def _catalogue_changed(self) -> None:
        # free decoding indexes the titles (exact match, BM25, embeddings) when it is
        # built: build it again on next use (beam and exact share the updated trie)
        for decoding in [d for d in self._decoders if d.mode == "free"]:
            del self._decoders[decoding]


def _build_trie(codec, removed: set[int]):
    """The trie over the codec's items, `removed` ones dead. One vectorised ``Trie.build``,
    unless a removed title came back under a new index: two items with the same tokens,
    which ``Trie.build`` refuses. Then the removed items go in first, one occurrence of each
    token sequence a round (added, then removed), and the live ones last, reviving the
    leaves they share with removed ones."""
    from ..decoding import Trie

    if not removed:
        return Trie.build(codec)
    seqs = [codec.response_ids(i) for i in range(len(codec))]
    if len({tuple(s) for s in seqs}) == len(seqs):
        trie = Trie.build(codec)
        trie.remove(sorted(removed))
        return trie
    trie = Trie(codec.vocab_size, codec.eos_id)
    rounds: list[list[int]] = []
    occurrences: dict[tuple[int, ...], int] = {}
    for i in sorted(removed):
        key = tuple(seqs[i])
        r = occurrences.get(key, 0)
        occurrences[key] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
    for items in rounds:
        trie.add([seqs[i] for i in items], items)
        trie.remove(items)
    live = [i for i in range(len(seqs)) if i not in removed]
    trie.add([seqs[i] for i in live], live)
    return trie


def _check_weights(record: dict, source: str, path: str) -> None:
    """Warn when a backbone found by name is not the one the run was trained on."""
    from ..model.backbone import weights_sha256

    if not record.get("sha256") or (source == record.get("path") and record.get("kind") != "hub"):
        return  # a run without a hash, or the very folder training loaded (same machine)
    found = weights_sha256(path)
    if found is not None and found != record["sha256"]:
        import warnings

        warnings.warn(f"the backbone {source!r} loaded from {path} is not the one the run was trained on "
                      f"(weights sha256 {found[:12]}..., trained on {record['sha256'][:12]}...): recommendations "
                      "may differ from the run's", stacklevel=3)


def _read_names(run_path: Path) -> list[str]:
    from .._io import read_json

    return read_json(run_path / "names.json")
