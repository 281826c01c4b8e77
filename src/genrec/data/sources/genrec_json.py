"""The JSON data released with GenRec (Ji et al., 2023, github.com/rutgerswiselab/GenRec).

The file is a list of ``{"instruction", "input", "output"}`` records: ``input`` is one
user's history of item titles joined by a bare ``","``, ``output`` the next title.
Each record becomes one user (``u0000000``, ``u0000001``, ... so string order is file
order) whose sequence is the history, then the output; there are no timestamps, so the
order is the position. Items are identified by their titles. A folder may be given when
it holds one ``*.json`` file; with several (GenRec's repository has ``<domain>_train``,
``_valid`` and ``_test`` files whose records can be windows of the same users) the file
must be named, since each record would otherwise count as another user.

Titles contain commas (13.5% of the Toys targets), so splitting ``input`` on commas
breaks them apart. The history is recovered against the catalogue of known titles (every
``output`` in the file, plus ``titles=`` given by the caller) by dynamic programming over
the comma-separated pieces: the segmentation that covers the most pieces with known
titles wins, then the one with the fewest items. Pieces no known title covers are glued
to the item before them when they begin with a space (or are empty): the join added no
space, and titles almost never begin with one, so ", 100 Pieces" continues a title.
The counts of what was recovered go into the notes. Titles keep their HTML entities here
(matching is on the raw strings); the catalogue unescapes them later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData

_FIX = 'the file must be a JSON list of {"instruction": ..., "input": ..., "output": ...} records'


def _continues(piece: str) -> bool:
    """A piece that cannot begin an unknown title: it follows a comma inside one."""
    return piece == "" or piece[0].isspace()


def split_history(text: str, known: set[str], max_pieces: int) -> tuple[list[str], int]:
    """Split a comma-joined history into titles; returns (titles, pieces glued blindly).

    `max_pieces` is the most comma-separated pieces any known title has. Known titles
    may start anywhere (a few real titles begin with a space); an unknown title starts
    at the first piece or at a piece that does not look like a continuation.
    """
    if text == "":
        return [], 0
    pieces = text.split(",")
    n = len(pieces)
    # best[i]: (pieces covered by known titles, -items) for the first i pieces
    neg = (-1, 0)
    best: list[tuple[int, int]] = [(0, 0)] + [neg] * n
    back = [0] * (n + 1)
    for i in range(1, n + 1):
        # known titles ending at piece i-1
        for j in range(max(0, i - max_pieces), i):
            if best[j] == neg:
                continue
            if ",".join(pieces[j:i]) in known:
                cand = (best[j][0] + (i - j), best[j][1] - 1)
                if cand > best[i]:
                    best[i], back[i] = cand, j
        # one unknown title ending at piece i-1: it starts at the nearest piece that is not
        # a continuation (or at the first piece) and takes every continuation after it
        j = i - 1
        while j > 0 and _continues(pieces[j]):
            j -= 1
        cand = (best[j][0], best[j][1] - 1)
        if cand > best[i]:
            best[i], back[i] = cand, j
    titles: list[str] = []
    glued = 0
    i = n
    while i > 0:
        j = back[i]
        title = ",".join(pieces[j:i])
        if title not in known:
            glued += i - j - 1
        titles.append(title)
        i = j
    titles.reverse()
    return [t for t in titles if t != ""], glued


def _records(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", _FIX) from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path} is not UTF-8 text: {e}", _FIX) from e
    if not isinstance(data, list):
        raise DataFormatError(f"{path} holds a JSON {type(data).__name__}, not a list of records", _FIX)
    for k, rec in enumerate(data):
        if not isinstance(rec, dict) or not isinstance(rec.get("input"), str) or not isinstance(
            rec.get("output"), str
        ):
            shown = json.dumps(rec, ensure_ascii=False)[:120]
            raise DataFormatError(f"{path} record {k} has no string input and output: {shown}", _FIX)
    if not data:
        raise DataFormatError(f"{path} holds no records", _FIX)
    return data


def read_genrec_json(path: str | Path, titles: Iterable[str] | None = None, **options) -> SourceData:
    """Read GenRec's released JSON (one record per user) into the canonical tables."""
    if options:
        raise DataFormatError(
            f"the genrec-json format takes no options (got {', '.join(sorted(options))})",
            "drop --map / --items for genrec-json; they belong to the table format",
        )
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if len(files) != 1:
            found = f"{len(files)} *.json files ({', '.join(f.name for f in files)})" if files else "no *.json file"
            raise DataFormatError(f"{path} is a folder with {found}",
                                  "pass GenRec's JSON file itself, e.g. .../toys_test.json")
        path = files[0]
    records = _records(path)
    known = {r["output"] for r in records} | set(titles or ())
    known.discard("")
    max_pieces = max(t.count(",") for t in known) + 1 if known else 1
    comma_known = {t for t in known if "," in t}
    width = max(7, len(str(len(records) - 1)))
    users: list[str] = []
    items: list[str] = []
    histories_with_comma = comma_items = glued_total = unknown_items = n_history = 0
    for k, rec in enumerate(records):
        history, glued = split_history(rec["input"], known, max_pieces)
        glued_total += glued
        n_history += len(history)
        hits = sum(t in comma_known for t in history)
        comma_items += hits
        histories_with_comma += hits > 0
        unknown_items += sum(t not in known for t in history)
        seq = history + [rec["output"]]
        users.extend([f"u{k:0{width}d}"] * len(seq))
        items.extend(seq)
    interactions = pl.DataFrame({"user_id": users, "item_id": items}, schema={"user_id": pl.Utf8, "item_id": pl.Utf8})
    catalogue = interactions.select(pl.col("item_id").unique(maintain_order=True))
    catalogue = catalogue.with_columns(pl.col("item_id").alias("title"))
    notes: dict[str, int | str] = {
        "records": len(records),
        "known_titles": len(known),
        "known_titles_with_commas": len(comma_known),
        "history_items": n_history,
        "comma_titles_recovered": comma_items,
        "histories_with_comma_titles": histories_with_comma,
        "history_items_not_known": unknown_items,
        "pieces_glued_to_previous_title": glued_total,
    }
    return SourceData(interactions, catalogue, name=path.stem, format="genrec-json", domain="products", notes=notes)
