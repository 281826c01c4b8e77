"""RecBole atomic files (Zhao et al., RecBole 1.x; recbole.io "Atomic Files").

A data set is a folder with ``<name>.inter`` (interactions) and optionally ``<name>.item``
(item features), either possibly gzipped. Both are tab-separated with a header of
``field:type`` names, types ``token``, ``token_seq`` (space-separated tokens), ``float``
and ``float_seq``. Fields used:

- ``.inter``: ``user_id``, ``item_id``, ``rating``, ``timestamp``;
- ``.item``: the title from ``movie_title``, ``title`` or ``item_name``; the year from
  ``release_year`` or ``year``; genres from ``class``, ``genre`` or ``genres`` (split on
  spaces whatever the declared type: RecBole's ML-1M declares ``genre:token`` and
  writes "Animation Children's Comedy"); ``brand``; ``categories``.

RecBole's MovieLens sets strip the year from ``movie_title`` (ML-100K's "Toy Story",
year 1995 in ``release_year``); for movie sets the title is written back as GroupLens
writes it, "Toy Story (1995)", which also tells remakes apart. Without an ``.item``
file (or a title field) the item ids are the titles, as in ML-1M's ``.inter`` where
``item_id`` is "Toy Story (1995)".
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData, items_from_interactions
from ._text import check_utf8, decode_text, first_bad_line, malformed, open_lines, read_bytes

TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_FIELDS = ("movie_title", "title", "item_name")
YEAR_FIELDS = ("release_year", "year")
GENRE_FIELDS = ("class", "genre", "genres")
_FIX = "RecBole atomic files are tab-separated with a header of field:type names (recbole.io, Atomic Files)"


def _find(folder: Path, name: str, suffix: str) -> Path | None:
    for p in (folder / f"{name}.{suffix}", folder / f"{name}.{suffix}.gz"):
        if p.is_file():
            return p
    return None


def _locate(path: Path) -> tuple[str, Path, Path | None]:
    """(data set name, .inter file, .item file or None)."""
    if path.is_file():
        base = path.name.removesuffix(".gz")
        if not base.endswith(".inter"):
            raise DataFormatError(
                f"{path} is not a RecBole .inter file",
                "pass the folder holding <name>.inter (and <name>.item), or the .inter file",
            )
        name = base.removesuffix(".inter")
        return name, path, _find(path.parent, name, "item")
    inters = sorted({p.name.removesuffix(".gz").removesuffix(".inter")
                     for p in path.iterdir() if p.name.endswith((".inter", ".inter.gz"))})
    if not inters:
        raise DataFormatError(
            f"{path} holds no RecBole interaction file (looked for <name>.inter and <name>.inter.gz)",
            "pass the folder of a RecBole data set, e.g. one holding ml-1m.inter and ml-1m.item",
        )
    if len(inters) > 1:
        if path.name not in inters:
            raise DataFormatError(
                f"{path} holds several RecBole data sets ({', '.join(inters)})",
                "pass the .inter file of the one to read",
            )
        inters = [path.name]
    name = inters[0]
    return name, _find(path, name, "inter"), _find(path, name, "item")


def _header(path: Path) -> list[tuple[str, str]]:
    with closing(open_lines(path)) as lines:
        first = next(lines, b"")
    fields = decode_text(first).rstrip("\r\n").split("\t")
    out, bad = [], []
    for f in fields:
        name, sep, kind = f.partition(":")
        if not sep or kind not in TYPES:
            bad.append(f)
        out.append((name, kind))
    if bad or not first.strip():
        raise DataFormatError(
            f"{path} has no RecBole header (bad fields: {', '.join(repr(b) for b in bad) or 'empty line'})",
            _FIX + f"; types are {', '.join(TYPES)}",
        )
    return out


def _read(path: Path, numeric: tuple[str, ...]) -> pl.DataFrame:
    """Read an atomic file as text columns named by field; name the first bad line on failure."""
    header = _header(path)
    names = [n for n, _ in header]
    try:
        # quote_char=None: RecBole never quotes, and titles hold quotes
        df = pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False, encoding="utf8-lossy")
        df.columns = names
        df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
        required = [c for c in names if c in ("user_id", "item_id")]
        casts = [pl.col(c).cast(pl.Float64, strict=True) for c in numeric if c in names]
        if casts:
            df.select(casts)  # raises on a non-number
        if required and df.select(pl.any_horizontal(pl.col(required).is_null()).any()).item():
            raise pl.exceptions.ComputeError("a required field is empty")
        check_utf8(df, lambda: read_bytes(path), str(path))
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError,
            pl.exceptions.ShapeError, pl.exceptions.NoDataError) as e:
        raise _bad_line(path, header, numeric, e) from e
    # a short line reads as empty trailing fields; an empty number may be either, so look
    present = [c for c in numeric if c in names]
    if present and df.select(pl.any_horizontal(pl.col(present).is_null()).any()).item():
        error = _bad_line(path, header, numeric, None)
        if error is not None:
            raise error
    return df


def _bad_line(
    path: Path, header: list[tuple[str, str]], numeric: tuple[str, ...], error: Exception | None
) -> DataFormatError | None:
    """The error naming the first malformed line; None when every line is well formed."""
    index = {n: i for i, (n, _) in enumerate(header)}
    wanted = [index[c] for c in numeric if c in index]
    ids = [index[c] for c in ("user_id", "item_id") if c in index]

    def check(line: str) -> str | None:
        parts = line.split("\t")
        if len(parts) != len(header):
            return f"{len(parts)} tab-separated fields, the header has {len(header)}"
        for i in ids:
            if not parts[i]:
                return f"{header[i][0]} is empty"
        for i in wanted:
            try:
                if parts[i]:
                    float(parts[i])
            except ValueError:
                return f"{header[i][0]} is {parts[i]!r}, not a number"
        return None

    lines = decode_text(read_bytes(path)).splitlines()
    found = first_bad_line(lines[1:], check, start=2)
    if found is not None:
        return malformed(str(path), found, _FIX)
    if error is None:
        return None
    return DataFormatError(f"{path} cannot be parsed: {str(error).splitlines()[0]}", _FIX)


def _items(path: Path, movies: bool) -> pl.DataFrame:
    fields = [n for n, _ in _header(path)]
    years = [f for f in YEAR_FIELDS if f in fields]
    # a year is a token ("unkonwn" for ML-100K's item 267), so non-numbers become null
    df = _read(path, ())
    if "item_id" not in df.columns:
        raise DataFormatError(f"{path} has no item_id field (fields: {', '.join(fields)})", _FIX)
    title = next((f for f in TITLE_FIELDS if f in fields), None)
    genre = next((f for f in GENRE_FIELDS if f in fields), None)
    year = pl.col(years[0]).cast(pl.Float64, strict=False).cast(pl.Int32, strict=False) if years else pl.lit(None, pl.Int32)
    if title is None:
        title_expr = pl.col("item_id")
    else:
        raw = pl.col(title).str.strip_chars()
        title_expr = pl.when(raw == "").then(None).otherwise(raw)
        if movies:
            # GroupLens writes "Title (Year)"; RecBole's copies dropped the year
            has_year = raw.str.contains(r"\(\d{4}\)\s*$")
            title_expr = (
                pl.when(title_expr.is_not_null() & ~has_year & year.is_not_null())
                .then(pl.format("{} ({})", raw, year))
                .otherwise(title_expr)
            )
    return df.select(
        pl.col("item_id"),
        title_expr.alias("title"),
        year.alias("year"),
        (pl.col(genre).fill_null("").str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
         if genre else pl.lit(None, pl.List(pl.Utf8))).alias("genres"),
        (pl.col("brand") if "brand" in fields else pl.lit(None, pl.Utf8)).alias("brand"),
        (pl.col("categories") if "categories" in fields else pl.lit(None, pl.Utf8)).alias("category"),
    )


def read_recbole(path: str | Path, **options) -> SourceData:
    """Read a RecBole data set (folder or ``.inter`` file) into the canonical tables."""
    if options:
        raise DataFormatError(
            f"the recbole format takes no options (got {', '.join(sorted(options))})",
            "drop --map / --items for recbole; they belong to the table format",
        )
    name, inter_path, item_path = _locate(Path(path))
    fields = [n for n, _ in _header(inter_path)]
    missing = [f for f in ("user_id", "item_id") if f not in fields]
    if missing:
        raise DataFormatError(
            f"{inter_path} has no {' or '.join(missing)} field (fields: {', '.join(fields)})", _FIX
        )
    df = _read(inter_path, tuple(f for f in ("rating", "timestamp") if f in fields))
    cols = [pl.col("user_id"), pl.col("item_id")]
    if "timestamp" in fields:
        cols.append(pl.col("timestamp").cast(pl.Float64).cast(pl.Int64).alias("timestamp"))
    if "rating" in fields:
        cols.append(pl.col("rating").cast(pl.Float64).alias("rating"))
    interactions = df.select(cols)
    item_fields = [n for n, _ in _header(item_path)] if item_path else []
    movies = name.startswith("ml-") or "movie_title" in item_fields
    items = _items(item_path, movies) if item_path else items_from_interactions(interactions)
    notes: dict[str, int | str] = {
        "inter_fields": ",".join(fields),
        "item_fields": ",".join(item_fields) if item_fields else "(no .item file: titles are the item ids)",
    }
    return SourceData(interactions, items, name=name, format="recbole",
                      domain="movies" if movies else "items", notes=notes)
