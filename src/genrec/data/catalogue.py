"""Catalogue hygiene: titles are the item identifiers, so they must be clean and unique.

GenRec (Ji et al., 2023) identifies items by their titles alone. A title the model can
write must therefore map to exactly one item: HTML entities are unescaped (Amazon titles
carry ``&amp;``), whitespace is normalised, items without a title are dropped, and
duplicate titles are disambiguated deterministically: by year, then by brand, then by a
short item-id suffix. MovieLens forms such as "Matrix, The (1999)" are kept as the
source writes them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

import polars as pl

_WS = re.compile(r"\s+")
#: a title's trailing "(1995)", or a series range "(2006-2007)" / "(2006–)" as ML-25M writes
#: them; group 1 is the (first) year. The one rule for readers, methods and the live catalogue.
YEAR_AT_END_PATTERN = r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$"
YEAR_AT_END = re.compile(YEAR_AT_END_PATTERN)
_CONTROL = dict.fromkeys(
    c for c in range(0x20) if chr(c) not in "\t\n\r"
)


def clean_title(text: str | None) -> str | None:
    """Unescape HTML entities (repeatedly: ``&amp;amp;`` occurs), normalise whitespace."""
    if text is None:
        return None
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = unicodedata.normalize("NFC", text).translate(_CONTROL)
    text = _WS.sub(" ", text).strip()
    return text or None


@dataclass
class DuplicateReport:
    """How duplicate titles were resolved; recorded in the manifest."""

    groups: int = 0
    items: int = 0
    by_year: int = 0
    by_brand: int = 0
    by_id: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "groups": self.groups,
            "items_renamed": self.items,
            "by_year": self.by_year,
            "by_brand": self.by_brand,
            "by_id": self.by_id,
            "examples": self.examples,
        }


def _short_suffix(item_id: str, others: list[str]) -> str:
    """The shortest tail (at least 4 characters) of `item_id` that no other id shares."""
    if len(item_id) <= 8:
        return item_id
    for n in range(4, len(item_id) + 1):
        tail = item_id[-n:]
        if not any(o != item_id and o.endswith(tail) for o in others):
            return tail
    return item_id


def disambiguate(items: pl.DataFrame, max_examples: int = 10) -> tuple[pl.DataFrame, DuplicateReport]:
    """Make every title unique; items must have non-null, cleaned titles.

    Every member of a group of equal titles is renamed (none is privileged), in order:
    ``"Title (Year)"`` when the year tells them apart and is not in the title already,
    then ``"Title - Brand"``, then ``"Title [id]"``. A renamed title never collides
    with another item's title.
    """
    report = DuplicateReport()
    ids = items["item_id"].to_list()
    titles = items["title"].to_list()
    years = items["year"].to_list()
    brands = items["brand"].to_list()
    original = list(titles)

    def groups_of(ts: list[str]) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {}
        for i, t in enumerate(ts):
            seen.setdefault(t, []).append(i)
        return {t: ix for t, ix in seen.items() if len(ix) > 1}

    dup = groups_of(titles)
    report.groups = len(dup)
    renamed: set[int] = set()
    taken = set(titles)

    def attempt(members: list[int], make, counter: str) -> list[int]:
        """Rename `members` with `make(i)` where that yields a unique title; return the rest."""
        proposals = {i: make(i) for i in members}
        counts: dict[str, int] = {}
        for p in proposals.values():
            if p is not None:
                counts[p] = counts.get(p, 0) + 1
        rest = []
        for i, p in proposals.items():
            if p is None or counts[p] > 1 or (p in taken and p != titles[i]):
                rest.append(i)
                continue
            titles[i] = p
            taken.add(p)
            renamed.add(i)
            setattr(report, counter, getattr(report, counter) + 1)
        return rest

    for title, members in sorted(dup.items()):
        def by_year(i: int, title: str = title) -> str | None:
            y = years[i]
            if y is None or f"({y})" in title:
                return None
            return f"{title} ({y})"

        def by_brand(i: int, title: str = title) -> str | None:
            b = clean_title(brands[i]) if brands[i] else None
            if not b or b.lower() in title.lower():
                return None
            return f"{title} - {b}"

        member_ids = [ids[i] for i in members]

        def by_id(i: int, title: str = title, member_ids: list[str] = member_ids) -> str:
            return f"{title} [{_short_suffix(ids[i], member_ids)}]"

        rest = attempt(members, by_year, "by_year")
        rest = attempt(rest, by_brand, "by_brand")
        rest = attempt(rest, by_id, "by_id")
        for i in rest:  # the id suffix collided with a real title: use the full id
            titles[i] = f"{title} [{ids[i]}]"
            renamed.add(i)
            report.by_id += 1
    report.items = len(renamed)
    for i in sorted(renamed)[:max_examples]:
        report.examples.append({"item_id": ids[i], "was": original[i], "now": titles[i]})
    out = items.with_columns(pl.Series("title", titles, dtype=pl.Utf8))
    assert out["title"].n_unique() == out.height, "titles must be unique after disambiguation"
    return out, report


def clean_catalogue(items: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """Clean titles, drop items without one, and disambiguate duplicates.

    Returns the cleaned items and a report with ``dropped_items`` (by reason) and
    ``duplicate_titles``.
    """
    n_in = items.height
    items = items.unique(subset="item_id", keep="first", maintain_order=True)
    repeated_ids = n_in - items.height
    items = items.with_columns(
        pl.col("title").map_elements(clean_title, return_dtype=pl.Utf8, skip_nulls=True),
        pl.col("brand").map_elements(clean_title, return_dtype=pl.Utf8, skip_nulls=True),
    )
    untitled = items.filter(pl.col("title").is_null())
    items = items.filter(pl.col("title").is_not_null())
    items, dups = disambiguate(items)
    return items, {
        "untitled": untitled.height,
        "untitled_examples": untitled["item_id"].head(10).to_list(),
        "repeated_item_rows": repeated_ids,
        "duplicate_titles": dups.as_dict(),
    }


@dataclass
class Catalogue:
    """Dense item indices ↔ item ids ↔ titles. Titles are unique."""

    item_ids: list[str]
    titles: list[str]

    def __post_init__(self) -> None:
        self.index_of_id = {i: n for n, i in enumerate(self.item_ids)}
        self.index_of_title = {t: n for n, t in enumerate(self.titles)}
        self._lower: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.titles)

    def lookup(self, key: str) -> int | None:
        """An index for an item id or an exact title (then a case-insensitive title)."""
        if key in self.index_of_id:
            return self.index_of_id[key]
        if key in self.index_of_title:
            return self.index_of_title[key]
        if self._lower is None:
            self._lower = {}
            for t, n in self.index_of_title.items():
                self._lower.setdefault(t.casefold(), n)
        return self._lower.get(key.casefold())
