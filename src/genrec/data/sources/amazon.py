"""Amazon product reviews: the 2014, 2018 and 2023 releases (McAuley et al.; Ni et al.
2019; Hou et al. 2024), one record per line, possibly gzipped.

- 2014: ``reviews_<Category>.json.gz`` or ``reviews_<Category>_5.json.gz`` (5-core) with
  ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``; ``meta_<Category>.json.gz``
  with ``asin``, ``title``, ``brand``, ``categories`` (a list of category paths). The 2014
  meta lines are Python dict literals (single quotes), not JSON: a line JSON rejects is
  read with ``ast.literal_eval``.
- 2018: ``<Category>.json.gz`` or ``<Category>_5.json.gz``, same review fields; meta in
  ``meta_<Category>.json.gz`` with ``category`` (one path).
- 2023: ``<Category>.jsonl`` (or ``.jsonl.gz``) with ``user_id``, ``parent_asin``,
  ``asin``, ``rating``, ``timestamp`` (milliseconds; stored here as seconds like every
  other source); ``meta_<Category>.jsonl`` with ``parent_asin``, ``title``, ``store``
  (the brand), ``categories``, ``main_category``. The item is the ``parent_asin``: the
  product, not its colour or size variant.

PATH is a folder holding one category's reviews and meta files, or the reviews file
(the meta file is then found beside it by name, or given with ``items_path``). Meta
files list every product; only lines of reviewed products are parsed. Malformed lines
are skipped and counted in the notes; a file with no readable line is an error. Titles
keep their HTML entities here: the catalogue unescapes them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData
from ._text import open_lines

try:  # orjson parses a review line several times faster; json is the fallback
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

_REVIEWS = re.compile(r"^(?:reviews_)?(?P<cat>.+?)(?:_5)?\.(?:json|jsonl)(?:\.gz)?$")
_META = re.compile(r"^meta_(?P<cat>.+?)\.(?:json|jsonl)(?:\.gz)?$")
_META_SUFFIXES = (".json.gz", ".json", ".jsonl", ".jsonl.gz")
_FIX = (
    "pass an Amazon reviews file as published (one JSON object or Python dict per line: "
    "reviews_<Category>.json.gz, <Category>.json.gz or <Category>.jsonl)"
)
_FIX_META = (
    "use the category's meta file as published (meta_<Category>.json.gz or meta_<Category>.jsonl: "
    "one product per line with asin or parent_asin and title)"
)


def _record(line: bytes) -> dict | None:
    """One line as a dict: JSON, else a Python literal (2014 meta); None if neither."""
    try:
        rec = _loads(line)
    except ValueError:
        try:
            rec = ast.literal_eval(line.decode("utf-8", errors="replace"))
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return None
    return rec if isinstance(rec, dict) else None


def _category(path: Path) -> str:
    m = _META.match(path.name) or _REVIEWS.match(path.name)
    return m.group("cat") if m else path.name.split(".")[0]


def _locate(path: Path, items_path: Path | None) -> tuple[Path, Path]:
    """(reviews file, meta file)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        reviews = [p for p in files if _REVIEWS.match(p.name) and not p.name.startswith("meta_")]
        if not reviews:
            raise DataFormatError(
                f"{path} holds no Amazon reviews file (looked for reviews_<Category>[_5].json[.gz], "
                "<Category>[_5].json[.gz] and <Category>.jsonl[.gz])",
                "pass the folder with the downloaded reviews and meta files, or the reviews file",
            )
        if len(reviews) > 1:
            raise DataFormatError(
                f"{path} holds several reviews files ({', '.join(p.name for p in reviews)})",
                "pass the reviews file to read instead of the folder",
            )
        path = reviews[0]
    elif path.name.startswith("meta_"):
        raise DataFormatError(
            f"{path} is a meta (product) file, not a reviews file",
            "pass the reviews file (or the folder); its meta file is found beside it",
        )
    if items_path is not None:
        meta = Path(items_path)
        if not meta.is_file():
            raise DataFormatError(f"the meta file {meta} does not exist", "check the --items path")
        return path, meta
    cat = _category(path)
    for suffix in _META_SUFFIXES:
        meta = path.parent / f"meta_{cat}{suffix}"
        if meta.is_file():
            return path, meta
    looked = ", ".join(f"meta_{cat}{suffix}" for suffix in _META_SUFFIXES)
    raise DataFormatError(
        f"no meta file for {path.name} (looked for {looked} beside it); the titles are in it",
        "download the category's meta file next to the reviews, or give it with --items",
    )


def _no_records(path: Path, first_bad: int | None, fix: str = _FIX) -> DataFormatError:
    where = f" (first bad line: {first_bad})" if first_bad else " (it is empty)"
    return DataFormatError(f"{path} has no readable Amazon record{where}", fix)


def _read_reviews(path: Path) -> tuple[pl.DataFrame, dict[str, Any], str]:
    users: list[str] = []
    items: list[str] = []
    times: list[int | None] = []
    ratings: list[float | None] = []
    bad, first_bad, edition = 0, None, ""
    for n, line in enumerate(open_lines(path), 1):
        if not line.strip():
            continue
        rec = _record(line)
        try:
            if rec is None:
                raise KeyError
            if "reviewerID" in rec:  # 2014 and 2018
                user, item = rec["reviewerID"], rec["asin"]
                ts, rating = rec.get("unixReviewTime"), rec.get("overall")
                edition = edition or "2014/2018"
            else:  # 2023: the product is the parent item; timestamps are milliseconds
                user, item = rec["user_id"], rec.get("parent_asin") or rec["asin"]
                ts, rating = rec.get("timestamp"), rec.get("rating")
                ts = int(ts) // 1000 if ts is not None else None
                edition = edition or "2023"
            if not user or not item:
                raise KeyError
            users.append(str(user))
            items.append(str(item))
            times.append(int(ts) if ts is not None else None)
            ratings.append(float(rating) if rating is not None else None)
        except (KeyError, TypeError, ValueError):
            bad += 1
            first_bad = first_bad or n
    if not users:
        raise _no_records(path, first_bad)
    df = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": times, "rating": ratings},
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64, "rating": pl.Float64},
    )
    notes: dict[str, Any] = {"reviews_malformed_lines": bad}
    if first_bad:
        notes["reviews_first_malformed_line"] = first_bad
    return df, notes, edition


def _category_text(rec: dict) -> str | None:
    cats = rec.get("categories") or rec.get("category")
    if isinstance(cats, list) and cats and isinstance(cats[0], list):
        cats = cats[0]  # 2014: several category paths; the first is the main one
    if isinstance(cats, list):
        parts = [str(c) for c in cats if c]
        if parts:
            return " > ".join(parts)
    elif isinstance(cats, str) and cats:
        return cats
    main = rec.get("main_category")
    return str(main) if main else None


def _read_meta(path: Path, wanted: set[str], key: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    # the product id is found with a regex first, so unreviewed products are never parsed
    id_pattern = re.compile(rb"[\"']" + key.encode() + rb"[\"']\s*:\s*[\"']([^\"']+)[\"']")
    ids, titles, brands, cats = [], [], [], []
    bad, first_bad, parsed = 0, None, 0
    for n, line in enumerate(open_lines(path), 1):
        if not line.strip():
            continue
        m = id_pattern.search(line)
        if m is not None and m.group(1).decode("utf-8", errors="replace") not in wanted:
            continue
        rec = _record(line)
        item = (rec.get(key) or rec.get("parent_asin") or rec.get("asin")) if rec is not None else None
        if item is None:
            bad += 1
            first_bad = first_bad or n
            continue
        parsed += 1
        item = str(item)
        if item not in wanted:
            continue
        title = rec.get("title")
        brand = rec.get("brand") or rec.get("store")
        ids.append(item)
        titles.append(str(title) if title else None)
        brands.append(str(brand) if brand else None)
        cats.append(_category_text(rec))
    if parsed == 0 and bad:
        raise _no_records(path, first_bad, _FIX_META)
    df = pl.DataFrame(
        {"item_id": ids, "title": titles, "brand": brands, "category": cats},
        schema={"item_id": pl.Utf8, "title": pl.Utf8, "brand": pl.Utf8, "category": pl.Utf8},
    )
    notes: dict[str, Any] = {"meta_malformed_lines": bad}
    if first_bad:
        notes["meta_first_malformed_line"] = first_bad
    return df, notes


def domain_of(category: str) -> str:
    """"games" for video game categories; everything else (Toys_and_Games too) is products."""
    low = category.lower()
    return "games" if "video_games" in low or low in ("games", "videogames") else "products"


def read_amazon(path: str | Path, items_path: str | Path | None = None, **options) -> SourceData:
    """Read one category of Amazon reviews (2014, 2018 or 2023) into the canonical tables."""
    if options:
        raise DataFormatError(
            f"the amazon format takes no options besides --items (got {', '.join(sorted(options))})",
            "drop --map for amazon; it belongs to the table format",
        )
    reviews_path, meta_path = _locate(Path(path), Path(items_path) if items_path else None)
    interactions, notes, edition = _read_reviews(reviews_path)
    wanted = set(interactions["item_id"].unique().to_list())
    key = "parent_asin" if edition == "2023" else "asin"
    items, meta_notes = _read_meta(meta_path, wanted, key)
    if items.height == 0:
        raise DataFormatError(
            f"none of the {len(wanted):,} reviewed products is in {meta_path}",
            "use the meta file of the same category and release as the reviews",
        )
    category = _category(reviews_path)
    notes.update(meta_notes)
    notes.update({"edition": edition, "category": category,
                  "reviewed_items_without_meta": len(wanted - set(items["item_id"].to_list()))})
    name = f"amazon-{category}"
    return SourceData(interactions, items, name=name, format="amazon",
                      domain=domain_of(category), notes=notes)  # type: ignore[arg-type]
