"""The live catalogue of a loaded run, and its changes persisted next to the run.

One object holds the live catalogue: :class:`LiveCatalogue` (item ids and titles by
index, the removed indices, the id and title lookups). The GenRec recommender owns it
(``GenRec.catalogue``) and changes it together with what decodes from it, the codec and
the trie, all or nothing (``GenRec.add_items`` / ``remove_items``); the Python API
(:mod:`genrec.api`) resolves histories against it and persists the changes, and the HTTP
service only serves that API, so this module sits with the data, below all three.

GenRec (Ji et al. 2023) identifies items by their titles, so an item added after
training is recommendable at once: its title's tokens join the decoder's trie
(DESIGN.md, "Serving": the cold-start promise of title-based generation). The changes
are recorded as the *net* changes against the dataset's catalogue in
``RUN_DIR/catalogue_changes.json``::

    {"format": 1, "dataset": {"name", "n_items", "sha256"},
     "added": [{"item_id", "title"}, ...], "removed": ["<dataset item id>", ...]}

The whole file is rewritten on every change through a temporary file that is renamed
over it (``_io.write_json``), so a process killed at any moment leaves either the old
or the new state, both valid. Net changes rather than an append-only log keep the file
no larger than the catalogue however long a server runs; indices are private to a
process, so replaying "remove, then add" on load gives the same items and titles.

Changes hold the catalogue's ``lock`` (re-entrant), and so does a reader that needs
more than one lookup to agree (resolving a history): a reader never sees half a change.
An addition is all or nothing by itself (what it overwrites is recorded first and put
back if it fails midway), so its owner applies it last, after the codec and the trie.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._io import read_json, write_json
from ..errors import GenrecError
from .catalogue import YEAR_AT_END, Catalogue, clean_title

CHANGES_FILE = "catalogue_changes.json"
CHANGES_FORMAT = 1


class PersistError(GenrecError):
    """The catalogue changes could not be written (the server's fault, not the request's)."""


class DuplicateItemError(GenrecError):
    """An added item's id or title is already in the catalogue."""


class LiveCatalogue(Catalogue):
    """A :class:`Catalogue` that grows and shrinks: dataset items first, added items after.

    Indices are never reused: a removed item keeps its slot (a history may still name
    it, and the model may still read its title in a prompt), and re-adding an item id
    gives it a new index. ``lookup`` finds removed items too (for histories);
    ``live_index`` only live ones (for recommending, showing and removing).
    """

    def __init__(self, item_ids: Sequence[str], titles: Sequence[str]):
        super().__init__(list(item_ids), list(titles))
        self.removed: set[int] = set()
        #: items of the catalogue it started from (the dataset's)
        self.n_base = len(self.titles)
        self.lock = threading.RLock()

    @property
    def n_live(self) -> int:
        return len(self.titles) - len(self.removed)

    @property
    def changed(self) -> bool:
        """Whether items were added or removed since it was made."""
        return bool(self.removed) or len(self.titles) != self.n_base

    def is_live(self, index: int) -> bool:
        return 0 <= index < len(self.titles) and index not in self.removed

    def lookup(self, key: str) -> int | None:
        """An index for an item id or a title (exact, then whitespace-cleaned, then case-insensitive)."""
        found = super().lookup(key)
        if found is None:
            cleaned = clean_title(key)
            if cleaned and cleaned != key:
                found = super().lookup(cleaned)
        return found

    def live_index(self, item_id: str) -> int | None:
        i = self.index_of_id.get(item_id)
        return i if i is not None and i not in self.removed else None

    def suggest(self, key: str, n: int = 3) -> list[str]:
        """Live titles close to `key`: containing it, else similar with or without the year."""
        import difflib

        live = [t for i, t in enumerate(self.titles) if i not in self.removed] if self.removed else self.titles
        needle = key.casefold().strip()
        contains = [t for t in live if needle in t.casefold()][:n]
        if contains:
            return contains
        # "Heet" is far from "Heat (1995)" as a whole string but close to "heat"
        stems: dict[str, list[str]] = {}
        for t in live:
            stems.setdefault(YEAR_AT_END.sub("", t).casefold(), []).append(t)
        close = difflib.get_close_matches(YEAR_AT_END.sub("", needle), list(stems), n=n, cutoff=0.6)
        found = [t for s in close for t in stems[s]]
        return (found or difflib.get_close_matches(key, live, n=n, cutoff=0.6))[:n]

    def suggest_ids(self, item_id: str, n: int = 3) -> list[str]:
        """Live item ids close to `item_id`."""
        import difflib

        live = [i for k, i in enumerate(self.item_ids) if k not in self.removed]
        return difflib.get_close_matches(item_id, live, n=n, cutoff=0.6)

    # ------------------------------------------------------------------ changes

    def check_new(self, items: Sequence[tuple[str, str]]) -> None:
        """Refuse new ``(item_id, title)`` pairs that would be ambiguous, naming every problem
        in one DuplicateItemError: an id or title already live or given twice, or an id that
        reads as another item's title (a history entry is looked up as an item id first, then
        as a title, so either would change what it means). Changes nothing."""
        problems = []
        seen_ids, seen_titles = set(), set()
        with self.lock:
            for item_id, title in items:
                if self.live_index(item_id) is not None:
                    problems.append(f"item id {item_id!r} is already in the catalogue")
                elif item_id in seen_ids:
                    problems.append(f"item id {item_id!r} is given twice")
                t = self.index_of_title.get(title)
                if t is not None and self.is_live(t):
                    problems.append(f"title {title!r} is already the title of item {self.item_ids[t]!r}")
                elif title in seen_titles:
                    problems.append(f"title {title!r} is given twice")
                named = self.lookup(item_id)
                if named is not None and self.item_ids[named] != item_id:
                    problems.append(f"item id {item_id!r} is the title of item {self.item_ids[named]!r}: "
                                    "histories naming that title would mean the new item")
                elif item_id.casefold() in {x.casefold() for _, x in items if x != title}:
                    problems.append(f"item id {item_id!r} is the title of another new item")
                if title in self.index_of_id and self.index_of_id[title] != t:
                    problems.append(f"title {title!r} is the id of item {title!r}: histories would never reach the new item by its title")
                seen_ids.add(item_id)
                seen_titles.add(title)
        if problems:
            raise DuplicateItemError("; ".join(problems), "titles and item ids identify items: give each new item its own, "
                                                          "and no id that reads as another item's title")

    def add(self, item_ids: Sequence[str], titles: Sequence[str], indices: Sequence[int] | None = None) -> list[int]:
        """Append items at the next free indices (``indices``, if given, must be those: the
        owner's codec and trie took them); returns the indices. All or nothing: if it fails
        midway, the lists and lookups are as they were."""
        item_ids, titles = list(item_ids), list(titles)
        if len(item_ids) != len(titles):
            raise GenrecError(f"{len(item_ids)} item ids for {len(titles)} titles", "give one title per item id")
        with self.lock:
            start = len(self.titles)
            new = list(range(start, start + len(titles)))
            if indices is not None and [int(i) for i in indices] != new:
                raise GenrecError("catalogue indices are out of step with the recommender", "this is a bug in genrec")
            # what this addition overwrites (a removed item answered for a re-added id or title)
            was_id = {i: self.index_of_id.get(i) for i in item_ids}
            was_title = {t: self.index_of_title.get(t) for t in titles}
            was_lower = None if self._lower is None else {t.casefold(): self._lower.get(t.casefold()) for t in titles}
            try:
                for i, t, n in zip(item_ids, titles, new, strict=True):
                    self.item_ids.append(i)
                    self.titles.append(t)
                    # the newest item answers for its id and title (an older one with them was removed),
                    # and for its title in any case unless a live item does
                    self.index_of_id[i] = n
                    self.index_of_title[t] = n
                    if self._lower is not None and not self.is_live(self._lower.get(t.casefold(), -1)):
                        self._lower[t.casefold()] = n
            except BaseException:
                del self.item_ids[start:]
                del self.titles[start:]
                for table, was in ((self.index_of_id, was_id), (self.index_of_title, was_title), (self._lower, was_lower)):
                    for key, value in (was or {}).items():
                        if value is None:
                            table.pop(key, None)  # type: ignore[union-attr]
                        else:
                            table[key] = value  # type: ignore[index]
                raise
        return new

    def remove(self, indices: Iterable[int]) -> None:
        """Mark items removed (removing a removed item again changes nothing)."""
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < len(self.titles)]
        if bad:
            raise GenrecError(f"items {bad[:5]} are not in the catalogue (indices 0..{len(self.titles) - 1})",
                              "remove items by their catalogue index")
        with self.lock:
            self.removed.update(indices)


@dataclass
class CatalogueChanges:
    """Net changes against the dataset's catalogue (immutable: updates return a new object)."""

    added: dict[str, str] = field(default_factory=dict)  # item id -> title, in order of addition
    removed: tuple[str, ...] = ()  # dataset item ids no longer recommended

    def after_add(self, items: Sequence[tuple[str, str]]) -> CatalogueChanges:
        added = dict(self.added)
        for item_id, title in items:
            added.pop(item_id, None)  # re-added: move to the end, as the indices go
            added[item_id] = title
        return CatalogueChanges(added, self.removed)

    def after_remove(self, item_ids: Sequence[str], dataset_ids: set[str] | dict[str, int]) -> CatalogueChanges:
        added = dict(self.added)
        removed = list(self.removed)
        for item_id in item_ids:
            added.pop(item_id, None)
            if item_id in dataset_ids and item_id not in removed:
                removed.append(item_id)
        return CatalogueChanges(added, tuple(removed))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def fingerprint(catalogue: Catalogue, name: str) -> dict:
    """What the changes were made against: a different catalogue makes them meaningless."""
    h = hashlib.sha256()
    h.update("\x1e".join(catalogue.item_ids).encode())  # two joins: a million items hash in well under a second
    h.update(b"\x1d")
    h.update("\x1e".join(catalogue.titles).encode())
    return {"name": name, "n_items": len(catalogue), "sha256": h.hexdigest()}


class ChangeStore:
    """Reads and atomically rewrites ``catalogue_changes.json`` for one dataset catalogue."""

    def __init__(self, path: str | Path, dataset: dict):
        self.path = Path(path)
        self.dataset = dataset

    def load(self) -> CatalogueChanges:
        if not self.path.is_file():
            return CatalogueChanges()
        data = read_json(self.path)
        fix_file = f"move {self.path} away to start from the dataset's catalogue"
        if not isinstance(data, dict) or data.get("format") != CHANGES_FORMAT:
            raise GenrecError(
                f"{self.path} is not a genrec catalogue-changes file of format {CHANGES_FORMAT}",
                fix_file,
            )
        was = data.get("dataset") or {}
        if was.get("sha256") != self.dataset["sha256"]:
            raise GenrecError(
                f"the catalogue changes in {self.path} were made on dataset {was.get('name')!r} "
                f"({was.get('n_items')} items), not on the loaded {self.dataset['name']!r} ({self.dataset['n_items']} items)",
                f"load the dataset they were made on, pass persist=False (--no-persist) to ignore them, or {fix_file}",
            )
        try:
            added = {str(e["item_id"]): str(e["title"]) for e in data["added"]}
            removed = tuple(str(i) for i in data["removed"])
        except (KeyError, TypeError) as e:
            raise GenrecError(f"{self.path} is damaged ({e!r} in 'added' or 'removed')", fix_file) from e
        return CatalogueChanges(added, removed)

    def save(self, changes: CatalogueChanges) -> None:
        data = {
            "format": CHANGES_FORMAT,
            "dataset": self.dataset,
            "added": [{"item_id": i, "title": t} for i, t in changes.added.items()],
            "removed": list(changes.removed),
        }
        try:
            write_json(self.path, data)
        except OSError as e:
            raise PersistError(
                f"cannot write the catalogue changes to {self.path}: {e.strerror or e}",
                "make the run folder writable, or load with persist=False (--no-persist) to keep changes in memory only",
            ) from e
