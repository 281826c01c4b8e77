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
file (or a title field) the data set is refused unless ``id_titles`` says the item ids
are the titles (as in an ``.inter`` whose ``item_id`` is "Toy Story (1995)").

Pre-split benchmark files (RecBole's ``benchmark_filename``, used by UniSRec and several
LLM-recommendation data sets): ``NAME.train.inter``, ``NAME.valid.inter`` (optional) and
``NAME.test.inter`` are one data set whose split is kept (column ``split``). Files with
``item_id_list:token_seq`` hold windows: the items before the target ``item_id``,
oldest first, at most RecBole's ``MAX_ITEM_LIST_LENGTH``. Each user's sequence is rebuilt
by chaining the windows (train, valid, test; shorter lists first), each list checked
against what is already rebuilt; the events of a list that starts a user's sequence are
training history. Without ``user_id`` every test row is a user, and a valid row is
matched to it by its items. Order is list position unless ``timestamp_list`` and
``timestamp`` give times. When several users' sequences start with a list at the longest
length, the lists were cut and the events before them are lost: the notes say so
(``caveat``). Files without ``item_id_list`` hold one event a row, split by file.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SPLIT_TYPE, SourceData, items_from_interactions
from ._recbole_windows import PARTS, Window, chain_windows
from ._text import check_utf8, decode_text, first_bad_line, malformed, open_lines, read_bytes

TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_FIELDS = ("movie_title", "title", "item_name")
YEAR_FIELDS = ("release_year", "year")
GENRE_FIELDS = ("class", "genre", "genres")
_ID_TITLES_FIX = (
    "add a title field to the .item file, or pass --id-titles (Python: id_titles=True) "
    "if the item ids are the titles, as in an item_id such as \"Toy Story (1995)\""
)
_FIX = "RecBole atomic files are tab-separated with a header of field:type names (recbole.io, Atomic Files)"


def _find(folder: Path, name: str, suffix: str) -> Path | None:
    for p in (folder / f"{name}.{suffix}", folder / f"{name}.{suffix}.gz"):
        if p.is_file():
            return p
    return None


def _name_and_part(stem: str) -> tuple[str, str]:
    """``"x.train"`` -> ``("x", "train")``; ``"x"`` -> ``("x", "")`` (one unsplit file)."""
    base, dot, part = stem.rpartition(".")
    return (base, part) if dot and base and part in PARTS else (stem, "")


def _locate(path: Path) -> tuple[str, dict[str, Path], Path | None]:
    """(data set name, its .inter files by part, "" for an unsplit one; .item file or None)."""
    if path.is_file():
        base = path.name.removesuffix(".gz")
        if not base.endswith(".inter"):
            raise DataFormatError(
                f"{path} is not a RecBole .inter file",
                "pass the folder holding <name>.inter (and <name>.item), or the .inter file",
            )
        folder, (name, part) = path.parent, _name_and_part(base.removesuffix(".inter"))
        if not part:
            return name, {"": path}, _find(folder, name, "item")
    else:
        folder = path
        stems = {p.name.removesuffix(".gz").removesuffix(".inter")
                 for p in path.iterdir() if p.name.endswith((".inter", ".inter.gz"))}
        if not stems:
            raise DataFormatError(
                f"{path} holds no RecBole interaction file (looked for <name>.inter and <name>.inter.gz)",
                "pass the folder of a RecBole data set, e.g. one holding ml-1m.inter and ml-1m.item",
            )
        sets: dict[str, tuple[str, bool]] = {}  # label -> (name, split in files)
        for stem in stems:
            name, part = _name_and_part(stem)
            sets[f"{name}.{{train,valid,test}}" if part else name] = (name, bool(part))
        chosen = [label for label, (name, _) in sets.items() if name == path.name]
        if len(sets) > 1 and len(chosen) != 1:
            raise DataFormatError(
                f"{path} holds several RecBole data sets ({', '.join(sorted(sets))})",
                "pass the .inter file of the one to read",
            )
        name, split = sets[chosen[0] if len(sets) > 1 else next(iter(sets))]
        if not split:
            return name, {"": _find(path, name, "inter")}, _find(path, name, "item")
    files = {p: f for p in PARTS if (f := _find(folder, f"{name}.{p}", "inter")) is not None}
    missing = [f"{name}.{p}.inter" for p in ("train", "test") if p not in files]
    if missing:
        raise DataFormatError(
            f"{folder} holds {', '.join(f.name for f in files.values())} but no {' or '.join(missing)}",
            "RecBole's benchmark files come as NAME.train.inter, NAME.valid.inter and NAME.test.inter "
            "in one folder; add the missing one, or pass an unsplit NAME.inter",
        )
    return name, files, _find(folder, name, "item")


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


def _items(path: Path, movies: bool, id_titles: bool) -> pl.DataFrame:
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
        if not id_titles:
            raise DataFormatError(
                f"{path} has no title field ({', '.join(TITLE_FIELDS)}; fields: {', '.join(fields)})",
                _ID_TITLES_FIX,
            )
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


def read_recbole(path: str | Path, *, id_titles: bool = False, **options) -> SourceData:
    """Read a RecBole data set (folder or ``.inter`` file) into the canonical tables.

    `id_titles`: without an ``.item`` title, the item ids are the titles (else refused).
    """
    if options:
        raise DataFormatError(
            f"the recbole format takes no options (got {', '.join(sorted(options))})",
            "drop --map / --items for recbole; they belong to the table format",
        )
    name, inter_paths, item_path = _locate(Path(path))
    if "" in inter_paths:
        interactions, notes = _read_inter(inter_paths[""])
    else:
        interactions, notes = _read_parts(inter_paths)
    item_fields = [n for n, _ in _header(item_path)] if item_path else []
    movies = name.startswith("ml-") or "movie_title" in item_fields
    if item_path is None and not id_titles:
        folder = next(iter(inter_paths.values())).parent
        raise DataFormatError(f"{folder} has no {name}.item file, so the items have no titles", _ID_TITLES_FIX)
    items = _items(item_path, movies, id_titles) if item_path else items_from_interactions(interactions)
    notes["item_fields"] = ",".join(item_fields) if item_fields else "(no .item file: titles are the item ids, --id-titles)"
    return SourceData(interactions, items, name=name, format="recbole",
                      domain="movies" if movies else "items", notes=notes)


def _read_inter(path: Path) -> tuple[pl.DataFrame, dict[str, int | str]]:
    """One unsplit ``.inter`` file: an event a row."""
    fields = [n for n, _ in _header(path)]
    missing = [f for f in ("user_id", "item_id") if f not in fields]
    if missing:
        raise DataFormatError(f"{path} has no {' or '.join(missing)} field (fields: {', '.join(fields)})", _FIX)
    df = _read(path, tuple(f for f in ("rating", "timestamp") if f in fields))
    cols = [pl.col("user_id"), pl.col("item_id")]
    if "timestamp" in fields:
        cols.append(pl.col("timestamp").cast(pl.Float64).cast(pl.Int64).alias("timestamp"))
    if "rating" in fields:
        cols.append(pl.col("rating").cast(pl.Float64).alias("rating"))
    return df.select(cols), {"inter_fields": ",".join(fields)}


def _read_parts(paths: dict[str, Path]) -> tuple[pl.DataFrame, dict[str, int | str]]:
    """RecBole's benchmark files, one data set with its split kept (column ``split``)."""
    fields = {part: [n for n, _ in _header(p)] for part, p in paths.items()}
    windows = ["item_id_list" in f for f in fields.values()]
    if any(windows) != all(windows):
        raise DataFormatError(
            f"only some of {', '.join(p.name for p in paths.values())} have an item_id_list field",
            "the benchmark files of one data set share one layout",
        )
    notes: dict[str, int | str] = {
        "split_files": ", ".join(p.name for p in paths.values()),
        "inter_fields": ",".join(fields["test"]),
    }
    if not windows[0]:  # an event a row; the file says the split
        frames = []
        for part, p in paths.items():
            df, _ = _read_inter(p)
            frames.append(df.with_columns(pl.lit(part).cast(SPLIT_TYPE).alias("split")))
            notes[f"rows_{part}"] = df.height
        inter = pl.concat(frames, how="diagonal_relaxed").with_row_index("order")
        return inter.with_columns(pl.col("order").cast(pl.Int64)), notes
    rows: list[Window] = []
    for part, p in paths.items():
        if "item_id" not in fields[part] or ("user_id" in fields[part]) != ("user_id" in fields["test"]):
            raise DataFormatError(
                f"{p} has fields {', '.join(fields[part])}; {paths['test'].name} has {', '.join(fields['test'])}",
                "the benchmark files hold item_id_list:token_seq and item_id:token, and user_id:token in all or none",
            )
        timed = "timestamp_list" in fields[part] and "timestamp" in fields[part]
        df = _read(p, ("timestamp",) if timed else ())
        users = df["user_id"].to_list() if "user_id" in df.columns else [None] * df.height
        lists = df["item_id_list"].fill_null("").str.split(" ").to_list()
        times = (df["timestamp_list"].fill_null("").to_list(), df["timestamp"].to_list()) if timed else None
        for i, (user, items, target) in enumerate(zip(users, lists, df["item_id"].to_list(), strict=True)):
            rows.append(Window(user, [t for t in items if t], target, part, p, i + 2,
                               (times[0][i], times[1][i]) if times else None))
        notes[f"rows_{part}"] = df.height
    inter, report = chain_windows(rows)
    notes.update(report)
    return inter, notes
