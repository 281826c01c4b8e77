"""The Python API for recommending with a trained GenRec run.

GenRec (Ji et al. 2023) writes the title of a user's next item; this module wraps a run
folder from `genrec train` so a caller speaks titles and item ids, never catalogue
indices::

    from genrec import Recommender

    rec = Recommender.load("runs/genrec")
    for item in rec.recommend(["Toy Story (1995)", "Heat (1995)"], k=5):
        print(item.title, item.score)

History entries are titles or item ids, mixed freely (an entry is first tried as an
item id, then as a title exactly, whitespace-cleaned, then case-insensitively). An
entry that is neither is never silently dropped: ``on_unknown="error"`` (the default)
raises :class:`~genrec.errors.UnknownItemError` naming every unknown entry with close
titles; ``on_unknown="skip"`` recommends from the known entries and reports the rest in
the result's ``unknown`` (a history with no known entry still raises).

Given candidates (re-ranking, as LlamaRec does), ``recommend(history, k, candidates=[...])``
ranks only those items and ``score(history, candidates)`` returns each one's score in the
order given; candidates are titles or item ids looked up as history entries are, but an
unknown one always raises ``UnknownItemError`` (skipping it would silently change the
list being ranked), a removed item is refused, and an empty list is an error (``None``,
not ``[]``, ranks the whole catalogue). Candidates are scored, not searched for, so the
beam width does not limit k (:mod:`genrec.recommenders.genrec` says how they are scored).

The catalogue may change after training (``add_items`` / ``remove_items``): a new title
is recommendable at once. The live catalogue is the GenRec recommender's
(``model.catalogue``), which changes it together with its codec and trie, all or nothing
(:mod:`genrec.recommenders.genrec`); this class only resolves what a caller gives (titles,
item ids) to catalogue indices, persists the changes and formats the results. Changes
are written to ``RUN_DIR/catalogue_changes.json`` (see :mod:`genrec.data.live_catalogue`)
before they take effect in memory, and written back if the recommender refuses them, so
a failed write or a failed change leaves both unchanged, and a reload keeps them.

One lock serialises decoding and catalogue changes: the beam decoder switches the
model's attention implementation during a step, and the trie must not change under a
running search. Lookups of titles take the live catalogue's own short lock
(``catalogue.lock``, held by a change only while the catalogue itself is updated), so
resolving a history never waits for a decoding call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .data.catalogue import clean_title
from .data.dataset import Dataset
from .data.live_catalogue import (
    CHANGES_FILE,
    CatalogueChanges,
    ChangeStore,
    DuplicateItemError,
    LiveCatalogue,
    fingerprint,
)
from .decoding.config import MODES, DecodingConfig, check_mode
from .decoding.config import Mode as DecodeMode
from .errors import GenrecError, UnknownItemError
from .ranking import INVALID

__all__ = ["MODES", "CandidateEntries", "CatalogueItem", "DecodeMode", "DecodingConfig", "DuplicateItemError", "RecommendedItem",
           "Recommendations", "Recommender", "Resolved"]

OnUnknown = Literal["error", "skip"]
#: candidate titles or item ids: one list (for every history) or, in ``recommend_many``, one list per history
CandidateEntries = Sequence[str | int]
#: longest item id accepted by add_items
MAX_ID_LENGTH = 256
#: longest title accepted by add_items (characters, after cleaning)
MAX_TITLE_LENGTH = 500


@dataclass(frozen=True)
class CatalogueItem:
    item_id: str
    title: str


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    title: str
    #: the model's summed log-probability of the title (higher is better)
    score: float


class Recommendations(list[RecommendedItem]):
    """Ranked items, best first; ``unknown`` lists history entries skipped as unknown;
    ``shortfall`` says why fewer than k items came back (None when k did)."""

    def __init__(self, items: Iterable[RecommendedItem] = (), unknown: Sequence[str] = (), shortfall: str | None = None):
        super().__init__(items)
        self.unknown: list[str] = list(unknown)
        self.shortfall: str | None = shortfall if shortfall is not None else getattr(items, "shortfall", None)

    def to_dict(self) -> dict:
        return {"items": [asdict(i) for i in self], "unknown": list(self.unknown), "shortfall": self.shortfall}


@dataclass
class Resolved:
    """A history as catalogue indices, and the entries that matched nothing."""

    indices: list[int]
    unknown: list[str]


class Recommender:
    """A loaded GenRec run: recommend from titles or item ids, and change the catalogue
    (the recommender's own live catalogue; this class resolves, persists and formats)."""

    def __init__(self, model, run_dir: Path, store: ChangeStore | None, changes: CatalogueChanges):
        from .recommenders.genrec import GenRec

        self._rec: GenRec = model
        self.run_dir = run_dir
        self._store = store
        self._changes = changes
        self._model_lock = threading.RLock()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        dataset: Dataset | str | Path | None = None,
        decode: DecodeMode | None = None,
        beams: int | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        device: str | None = None,
        persist: bool = True,
        changes_path: str | Path | None = None,
        decoding: DecodingConfig | None = None,
        **settings,
    ) -> Recommender:
        """Load a run folder from `genrec train` with its catalogue changes.

        ``dataset``: the prepared dataset (default: the one the run was trained on, or the
        run's own copy of its catalogue when that folder is not here: a copied run).
        ``decoding``: the default :class:`~genrec.decoding.DecodingConfig` (default: beam
        search, 10 beams, 16 users a batch); ``decode`` (the mode), ``beams``,
        ``batch_size`` and further keyword ``settings`` (``grounding``, ``max_expansions``,
        ``assist``, ``assist_weight``, ``rerank_depth``, ...) change fields of it. k may not
        exceed the beam width in beam and free modes, nor the rerank depth in rerank mode.
        ``persist``: read and write catalogue changes in ``changes_path`` (default
        ``RUN_DIR/catalogue_changes.json``); False keeps changes in memory only.
        """
        from .recommenders.genrec import GenRec

        if decode is not None:
            check_mode(decode)
        decoding = DecodingConfig.of(decoding or DecodingConfig(batch_size=16), mode=decode, beams=beams,
                                     batch_size=batch_size, **settings)
        if isinstance(dataset, str | Path):
            dataset = Dataset(dataset)
        run_dir = Path(run_dir)
        model = GenRec.load(run_dir, dataset=dataset, decoding=decoding, threads=threads, device=device)
        store = None
        changes = CatalogueChanges()
        if persist:
            store = ChangeStore(changes_path or run_dir / CHANGES_FILE, fingerprint(model.dataset.catalogue, model.dataset.name))
            changes = store.load()
        rec = cls(model, run_dir, store, changes)
        rec._replay(changes)
        return rec

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, revision: str | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False,
                        **options) -> Recommender:
        """Load a run folder, or a run on the Hugging Face Hub (``owner/name``, as
        ``genrec push`` uploads it), downloaded with ``huggingface_hub.snapshot_download``
        (``revision``, ``cache_dir``, ``local_files_only`` are passed to it).

        `options` are those of :meth:`load`. A download lives in the Hub cache, which is
        never written to: its catalogue changes are kept in memory unless ``changes_path``
        names a file (``persist`` defaults to False for a Hub id).
        """
        path = Path(name_or_path).expanduser()
        if path.exists():
            return cls.load(path, **options)
        repo_id = str(name_or_path)
        if repo_id.count("/") != 1 or repo_id.startswith((".", "/", "~")):
            raise GenrecError(f"{repo_id!r} is neither a folder nor a Hugging Face Hub id (owner/name)",
                              "pass a run folder (from `genrec train` or save_pretrained) or a Hub id such as user/genrec-ml-1m")
        try:
            from huggingface_hub import snapshot_download
        except ImportError:  # a dependency of transformers, so only a broken install lands here
            raise GenrecError("loading from the Hub needs huggingface_hub", "pip install huggingface_hub") from None
        try:
            folder = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        except Exception as e:  # noqa: BLE001  (the Hub's errors are many; each is reported with its own words)
            raise GenrecError(f"cannot download {repo_id!r} from the Hugging Face Hub: {type(e).__name__}: {e}",
                              "check the id, the network and your login (`hf auth login` for a private repo); "
                              "offline, a run already downloaded loads with local_files_only=True") from None
        options.setdefault("persist", options.get("changes_path") is not None)
        return cls.load(folder, **options)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write this recommender as a portable run folder that :meth:`from_pretrained`
        loads on any machine, without the dataset folder or the backbone cache.

        The folder is the run without its resumable state (``checkpoints/``, ``best/``),
        with its catalogue copy (``catalogue.parquet``: the catalogue it was loaded with,
        written now for a run trained before runs kept one) and, as
        ``catalogue_changes.json``, the items added and removed in effect now, wherever they
        were kept (the run folder, another file, memory only): the saved folder loads with
        the same live catalogue. The changes stay a separate file, not merged into the
        catalogue copy, because a removed item keeps its index and the changes file is
        what ``add_items``/``remove_items`` go on writing. Decoding settings are not saved;
        give them to :meth:`from_pretrained`. `path` is written atomically; it may be new,
        empty or an earlier run folder (replaced), never the run itself.
        """
        from .training.rundir import RunDir

        with self._model_lock:
            with RunDir(self.run_dir).export(path, dataset=self.dataset) as tmp:
                (tmp / CHANGES_FILE).unlink(missing_ok=True)
                if self._changes:
                    ChangeStore(tmp / CHANGES_FILE, fingerprint(self.dataset.catalogue, self.dataset.name)).save(self._changes)
        return Path(path)

    def _replay(self, changes: CatalogueChanges) -> None:
        where = f" (from {self._store.path})" if self._store else ""
        dataset_ids = self.dataset.catalogue.index_of_id
        missing = [i for i in changes.removed if i not in dataset_ids]
        if missing:
            raise GenrecError(f"removed item ids {missing[:5]} are not in the dataset{where}", "the file is damaged; move it away")
        self._rec.remove_items([dataset_ids[i] for i in changes.removed])
        if changes.added:
            ids, titles = list(changes.added), list(changes.added.values())
            try:
                self._rec.check_new_items(ids, titles)
            except GenrecError as e:
                raise GenrecError(f"cannot re-apply the catalogue changes{where}: {e.problem}", "the file was edited by hand? move it away") from e
            self._rec.add_items(ids, titles)

    # ------------------------------------------------------------------ properties

    @property
    def model(self):
        """The underlying :class:`~genrec.recommenders.genrec.GenRec` recommender."""
        return self._rec

    @property
    def catalogue(self) -> LiveCatalogue:
        """The live catalogue: the recommender's own (``model.catalogue``), to read; a reader
        that needs several lookups to agree holds ``catalogue.lock``."""
        return self._rec.catalogue

    @property
    def dataset(self) -> Dataset:
        return self._rec.dataset

    @property
    def decoding(self) -> DecodingConfig:
        """The default decoding settings (a request may pass others)."""
        return self._rec.decoding

    @property
    def default_decode(self) -> DecodeMode:
        return self._rec.decoding.mode

    @property
    def beams(self) -> int:
        return self._rec.decoding.beams

    def __len__(self) -> int:
        """Items that may be recommended now."""
        return self.catalogue.n_live

    def info(self) -> dict:
        """What is loaded: backbone, adapter, dataset, catalogue size, decoding."""
        from ._version import __version__
        from .training.rundir import RunDir

        run = RunDir(self.run_dir).info()
        cfg = self._rec.cfg
        return {
            "run": str(self.run_dir),
            "backbone": run.get("backbone", {}).get("name") or cfg.backbone,
            "adapter": str(self.run_dir / "adapter"),
            "adapter_step": run.get("adapter_step"),
            "item_repr": cfg.item_repr,
            "dataset": {"name": self.dataset.name, "path": str(self.dataset.path), "n_items": len(self.dataset.catalogue)},
            "catalogue_size": len(self),
            "items_added": len(self._changes.added),
            "items_removed": len(self._changes.removed),
            "changes_file": str(self._store.path) if self._store else None,
            "decode": self.default_decode,
            "beams": self.beams,
            "decoding": self.decoding.describe(),
            "max_history": self._rec.max_history,
            "genrec_version": __version__,
        }

    def item(self, item_id: str) -> CatalogueItem:
        """The live item with this id; UnknownItemError (with close ids) if there is none."""
        with self.catalogue.lock:
            i = self.catalogue.live_index(str(item_id))
            if i is None:
                raise self._unknown_ids([str(item_id)])
            return CatalogueItem(self.catalogue.item_ids[i], self.catalogue.titles[i])

    # ------------------------------------------------------------------ recommending

    def recommend(self, history: Sequence[str | int], k: int = 10, decode: DecodeMode | None = None,
                  exclude_seen: bool = True, on_unknown: OnUnknown = "error",
                  decoding: DecodingConfig | None = None,
                  candidates: CandidateEntries | None = None) -> Recommendations:
        """The top-`k` items for one history (titles or item ids, oldest first).

        ``decode`` switches the mode for this call (beam, exact, free, rerank; the
        assistant is used in beam and rerank decoding only); ``decoding`` replaces the
        loaded :class:`~genrec.decoding.DecodingConfig` for this call. Fewer than `k` items come
        back when the decoder finds fewer (exact decoding's search budget ran out, free
        decoding wrote text that is no title, exclusion left fewer); the result's
        ``shortfall`` then says which. Errors: empty history, unknown entries (see the
        module doc), k outside 1..catalogue size or above the beam width (beam and free
        decoding).

        ``candidates`` (titles or item ids): rank only these items, the top `k` of them by
        :meth:`score` (fewer when fewer are left after excluding the history; ``shortfall``
        says so); the beam width does not limit k then.
        """
        return self.recommend_many([history], k, decode, exclude_seen, on_unknown, decoding, candidates)[0]

    def recommend_many(self, histories: Sequence[Sequence[str | int]], k: int = 10, decode: DecodeMode | None = None,
                       exclude_seen: bool = True, on_unknown: OnUnknown = "error",
                       decoding: DecodingConfig | None = None,
                       candidates: CandidateEntries | Sequence[CandidateEntries] | None = None) -> list[Recommendations]:
        """:meth:`recommend` for many histories in one decoding call (faster than one by one);
        ``candidates`` is one list for every history or one list per history."""
        decoding = self.check_request(k, decode, decoding, candidates=candidates is not None)
        resolved = self.resolve_many(histories, on_unknown)
        cands = None if candidates is None else self._candidates_per_history(candidates, len(histories))
        ranked = self.rank([r.indices for r in resolved], k, decoding, exclude_seen, candidates=cands)
        return [Recommendations(items, r.unknown) for items, r in zip(ranked, resolved, strict=True)]

    def score(self, history: Sequence[str | int], candidates: CandidateEntries, decode: DecodeMode | None = None,
              on_unknown: OnUnknown = "error", decoding: DecodingConfig | None = None) -> Recommendations:
        """Each candidate's score after `history` (both titles or item ids), in the order
        given, higher better: the ranking ``recommend(..., candidates=)`` sorts by (seen
        items are scored too). Errors: those of :meth:`recommend`, an unknown candidate
        (``UnknownItemError`` with close titles, whatever ``on_unknown``), a removed one,
        an empty list.
        """
        decoding = self.decoding_for(decode, decoding)
        resolved = self.resolve(history, on_unknown)
        cands = self.resolve_candidates(candidates)
        result = self.score_indices([resolved.indices], [cands], decoding)[0]
        result.unknown = resolved.unknown
        return result

    def decoding_for(self, decode: DecodeMode | None = None, decoding: DecodingConfig | None = None) -> DecodingConfig:
        """The settings of a request: `decoding` (default: the loaded ones) in mode `decode`."""
        decoding = decoding or self.decoding
        if decode is not None and decode != decoding.mode:
            decoding = decoding.with_mode(decode)
        return decoding

    def check_request(self, k: int, decode: DecodeMode | None = None, decoding: DecodingConfig | None = None,
                      candidates: bool = False) -> DecodingConfig:
        """Validate k against the decoding settings of a request (the loaded ones, another
        ``decoding``, and/or another ``decode`` mode); returns the settings to use. With
        ``candidates`` k is only checked to be positive: candidates are scored, not searched
        for, and fewer than k of them is a short list, not an error."""
        decoding = self.decoding_for(decode, decoding)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise GenrecError(f"k must be a positive integer, got {k!r}", "ask for 1 or more items, e.g. k=10")
        if candidates:
            return decoding
        n = len(self)
        if k > n:
            raise GenrecError(f"k={k} is larger than the catalogue ({n} items)", f"ask for at most {n} items")
        if decoding.max_k is not None and k > decoding.max_k:
            if decoding.mode == "rerank":
                raise GenrecError(
                    f"k={k} is larger than the rerank depth ({decoding.rerank_depth}): rerank decoding ranks only the assistant's top items",
                    f"ask for at most {decoding.rerank_depth} items, or load with rerank_depth >= {k}",
                )
            raise GenrecError(
                f"k={k} is larger than the beam width ({decoding.beams}) of {decoding.mode} decoding",
                f"ask for at most {decoding.beams} items, load with beams >= {k}, or use decode='exact'",
            )
        return decoding

    def resolve(self, history: Sequence[str | int], on_unknown: OnUnknown = "error") -> Resolved:
        return self.resolve_many([history], on_unknown)[0]

    def resolve_many(self, histories: Sequence[Sequence[str | int]], on_unknown: OnUnknown = "error") -> list[Resolved]:
        """Map every entry to a catalogue index; unknown entries are handled by `on_unknown`."""
        if on_unknown not in ("error", "skip"):
            raise GenrecError(f"on_unknown={on_unknown!r} is not error or skip", "use on_unknown='error' or 'skip'")
        if isinstance(histories, str) or not isinstance(histories, Sequence):
            raise GenrecError("histories must be a list of histories", "pass e.g. [['Heat (1995)', 'Casino (1995)']]")
        with self.catalogue.lock:
            out = [self._lookup(history, f"history {n}" if len(histories) > 1 else "the history",
                                "give at least one title or item id the user interacted with")
                   for n, history in enumerate(histories)]
        bad = [r for r in out if r.unknown and (on_unknown == "error" or not r.indices)]
        if bad:  # suggestions scan the catalogue: outside the lock, they are advisory anyway
            unknown = list(dict.fromkeys(u for r in bad for u in r.unknown))
            raise UnknownItemError(unknown, {u: self.catalogue.suggest(u) for u in unknown})
        return out

    def resolve_candidates(self, candidates: CandidateEntries) -> list[int]:
        """Catalogue indices of candidate titles or item ids, in order (looked up as history
        entries are). Unknown entries raise UnknownItemError with close titles, removed
        items and an empty list a GenrecError."""
        with self.catalogue.lock:
            found = self._lookup(candidates, "the candidate list",
                                 "give at least one title or item id to rank, or no candidates (None) to rank the whole catalogue")
            removed = [self.catalogue.item_ids[i] for i in found.indices if not self.catalogue.is_live(i)]
        unknown = found.unknown
        if unknown:
            unknown = list(dict.fromkeys(unknown))
            raise UnknownItemError(unknown, {u: self.catalogue.suggest(u) for u in unknown})
        if removed:
            raise GenrecError(f"candidates {removed[:5]} were removed from the catalogue",
                              "leave removed items out of the candidates: they may no longer be recommended")
        return found.indices

    def _lookup(self, entries: Sequence[str | int], where: str, empty_fix: str) -> Resolved:
        """`entries` (titles or item ids) as catalogue indices and the unknown ones; a
        non-list, an empty list or an entry that is neither a string nor an int is refused,
        named by `where`. The caller holds the catalogue's lock."""
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
            raise GenrecError(f"{where} must be a list of titles or item ids, got {type(entries).__name__} {str(entries)[:60]!r}",
                              "wrap a single title in a list: ['Heat (1995)']")
        if not entries:
            raise GenrecError(f"{where} is empty", empty_fix)
        indices, unknown = [], []
        for entry in entries:
            if isinstance(entry, bool) or not isinstance(entry, str | int):
                raise GenrecError(f"{where} holds {entry!r}, not a title or item id", "use strings (titles or ids)")
            i = self.catalogue.lookup(str(entry))
            (unknown.append(str(entry)) if i is None else indices.append(i))
        return Resolved(indices, unknown)

    def _candidates_per_history(self, candidates, n_histories: int) -> list[list[int]]:
        """One flat list for every history, or one list per history, as catalogue indices."""
        if isinstance(candidates, Sequence) and not isinstance(candidates, str | bytes) and candidates and all(
                isinstance(c, Sequence) and not isinstance(c, str | bytes) for c in candidates):
            if len(candidates) != n_histories:
                raise GenrecError(f"{len(candidates)} candidate lists for {n_histories} histories",
                                  "give one candidate list per history, or one flat list for all of them")
            return [self.resolve_candidates(c) for c in candidates]
        return [self.resolve_candidates(candidates)] * n_histories

    def score_indices(self, histories: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]],
                      decoding: DecodingConfig | None = None) -> list[Recommendations]:
        """:meth:`score` for histories and candidate lists already given as catalogue indices."""
        decoding = decoding or self.decoding
        with self._model_lock:  # the catalogue (and the codec scoring reads) must not change meanwhile
            scores = self._rec.score([list(h) for h in histories], [list(c) for c in candidates], decoding=decoding)
        cat = self.catalogue
        return [Recommendations(RecommendedItem(cat.item_ids[i], cat.titles[i], float(s))
                                for i, s in zip(cands, row.tolist(), strict=False))
                for cands, row in zip(candidates, scores, strict=True)]

    def rank(self, histories: Sequence[Sequence[int]], k: int, decoding: DecodingConfig | DecodeMode | None = None,
             exclude_seen: bool = True, candidates: Sequence[Sequence[int]] | None = None) -> list[Recommendations]:
        """Top-k for histories already given as catalogue indices (see :meth:`resolve`),
        with `decoding` (a config, a mode, or the loaded one), among `candidates` (catalogue
        indices per history, see :meth:`resolve_candidates`) if given; a list shorter than
        k carries the reason in ``shortfall``."""
        if decoding is None or isinstance(decoding, str):
            decoding = self.check_request(k, decoding, candidates=candidates is not None)
        rec = self._rec
        mode = decoding.mode
        with self._model_lock:
            # GenRec.recommend holds the one path from history to ranked items (prompt,
            # exclusion, removed-item filtering, one decoder per config, candidate scoring)
            ranked = rec.recommend([list(h) for h in histories], k=k, exclude_seen=exclude_seen, decoding=decoding,
                                   candidates=None if candidates is None else [list(c) for c in candidates])
            exhausted = list(rec.last_stats.get("exhausted") or []) if mode == "exact" and candidates is None else []
        cat = self.catalogue
        out = []
        for u, (row_items, row_scores) in enumerate(zip(ranked.items, ranked.scores, strict=True)):
            seen: set[int] = set()
            row = Recommendations()
            removed = repeated = 0
            for i, s in zip(row_items.tolist(), row_scores.tolist(), strict=True):
                # markers (no item / free text that is no title), repeats of free decoding,
                # and items removed since are never shown
                if i < 0 or i in seen or not cat.is_live(i):
                    removed += i >= 0 and not cat.is_live(i)
                    repeated += i in seen
                    continue
                seen.add(i)
                row.append(RecommendedItem(cat.item_ids[i], cat.titles[i], float(s)))
            if len(row) < k and candidates is not None:
                row.shortfall = (f"only {len(row)} of {k} items: the candidates hold {len(row)} distinct items"
                                 + (" outside the history (exclude_seen=False keeps seen ones)" if exclude_seen else ""))
            elif len(row) < k:
                row.shortfall = _shortfall(
                    mode, k, len(row), invalid=int((row_items == INVALID).sum()), removed=removed + repeated,
                    exhausted=u < len(exhausted) and exhausted[u], max_expansions=decoding.max_expansions,
                )
            out.append(row)
        return out

    # ------------------------------------------------------------------ catalogue updates

    def add_items(self, items: Iterable[Mapping[str, str] | tuple[str, str]]) -> list[CatalogueItem]:
        """Add items (``{"item_id", "title"}`` each) so they can be recommended now.

        Titles are cleaned (HTML entities, whitespace) as `genrec prepare` does.
        DuplicateItemError if an id or title is already live or repeats in `items`, or a
        title writes the same tokens as a live one (``GenRec.check_new_items``). The change
        is persisted before it takes effect; if writing fails, or the recommender fails to
        take the items, nothing changes.
        """
        parsed = _parse_new_items(items)
        if not parsed:
            return []
        ids, titles = [i for i, _ in parsed], [t for _, t in parsed]
        with self._model_lock:
            self._rec.check_new_items(ids, titles)  # a refusal writes nothing
            changes = self._changes.after_add(parsed)
            self._commit(changes, lambda: self._rec.add_items(ids, titles))
        return [CatalogueItem(i, t) for i, t in parsed]

    def remove_items(self, item_ids: Iterable[str]) -> None:
        """Stop recommending these items (live item ids; UnknownItemError otherwise).

        A removed item may still appear in histories. Persisted before it takes effect.
        """
        ids = list(dict.fromkeys(str(i) for i in item_ids))
        if not ids:
            return
        with self._model_lock:
            with self.catalogue.lock:
                indices = [self.catalogue.live_index(i) for i in ids]
            missing = [i for i, n in zip(ids, indices, strict=True) if n is None]
            if missing:
                raise self._unknown_ids(missing)
            changes = self._changes.after_remove(ids, self.dataset.catalogue.index_of_id)
            self._commit(changes, lambda: self._rec.remove_items(indices))  # type: ignore[arg-type]

    def _commit(self, changes: CatalogueChanges, apply) -> None:
        """Persist `changes`, then `apply` them to the recommender (all or nothing there);
        if that fails, the file is written back: it must not name changes the model never took."""
        self._save(changes)
        try:
            apply()
        except BaseException:
            self._save(self._changes)
            raise
        self._changes = changes

    def _save(self, changes: CatalogueChanges) -> None:
        if self._store is not None:
            self._store.save(changes)

    def _unknown_ids(self, ids: list[str]) -> UnknownItemError:
        return UnknownItemError(ids, {i: self.catalogue.suggest_ids(i) for i in ids})


def _shortfall(mode: str, k: int, n: int, invalid: int, removed: int, exhausted: bool, max_expansions: int) -> str:
    """Why a list holds `n` < `k` items, in words a caller can act on."""
    why = []
    if exhausted:
        why.append(f"exact decoding used up its search budget ({max_expansions} expanded nodes) before it found "
                   f"{k} items; load with a larger max_expansions, or use beam decoding")
    if invalid:
        why.append(f"{invalid} of the generated outputs are no catalogue title (free decoding is unconstrained; "
                   "beam and exact decoding stay in the catalogue)")
    if removed:
        why.append(f"{removed} outputs repeat an item or name a removed one")
    if not why:
        why.append(f"{mode} decoding found no more items outside the history (keep_seen / exclude_seen=False allows them)")
    return f"only {n} of {k} items: " + "; ".join(why)


def _parse_new_items(items) -> list[tuple[str, str]]:
    if isinstance(items, Mapping) or isinstance(items, str):
        raise GenrecError("add_items takes a list of items", "pass e.g. [{'item_id': 'x1', 'title': 'New Film (2024)'}]")
    out, problems = [], []
    for n, entry in enumerate(items):
        if isinstance(entry, Mapping):
            extra = set(entry) - {"item_id", "title"}
            if extra or "item_id" not in entry or "title" not in entry:
                problems.append(f"item {n}: needs exactly the keys item_id and title, got {sorted(entry)}")
                continue
            item_id, title = entry["item_id"], entry["title"]
        elif isinstance(entry, tuple | list) and len(entry) == 2:
            item_id, title = entry
        else:
            problems.append(f"item {n}: {entry!r} is not {{item_id, title}}")
            continue
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id).strip():
            problems.append(f"item {n}: item_id {item_id!r} must be a non-empty string")
            continue
        item_id = str(item_id)
        if len(item_id) > MAX_ID_LENGTH or any(c in item_id for c in "\n\r\t\0"):
            problems.append(f"item {n}: item_id {item_id[:40]!r} must be at most {MAX_ID_LENGTH} characters without control characters")
            continue
        cleaned = clean_title(title) if isinstance(title, str) else None
        if not cleaned:
            problems.append(f"item {n}: title {title!r} must be non-empty text")
            continue
        if len(cleaned) > MAX_TITLE_LENGTH:
            problems.append(f"item {n}: the title is {len(cleaned)} characters; at most {MAX_TITLE_LENGTH} are allowed")
            continue
        out.append((item_id, cleaned))
    if problems:
        raise GenrecError("cannot add these items: " + "; ".join(problems), "give each item a non-empty item_id and title")
    return out
