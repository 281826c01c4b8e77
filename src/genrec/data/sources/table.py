"""A generic interactions table: CSV, TSV or Parquet, with a column mapping.

The format comes from the suffix: ``.csv``, ``.tsv`` (also ``.txt`` tab-separated) and
their ``.gz`` forms, ``.parquet``/``.pq``. ``columns`` maps canonical fields to the
file's column names (``genrec prepare table --map user=customer_id``); without a mapping
the canonical names are looked for: ``user_id`` or ``user``, ``item_id`` or ``item``,
``timestamp``, ``rating``, ``title``, ``year``, ``genres`` (``|``-separated), ``brand``,
``category``. Titles come from the interactions table or from a separate items table
(``items_path``, same mapping: an item column and a title column); without any title
column the item ids are the titles. Timestamps are integer seconds, or dates/times
(ISO 8601 strings, or Parquet date/datetime columns) converted to Unix seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData, items_from_interactions

#: canonical field -> the column names looked for when the mapping does not name one
DEFAULTS: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "user"),
    "item": ("item_id", "item"),
    "timestamp": ("timestamp",),
    "rating": ("rating",),
    "title": ("title",),
    "year": ("year",),
    "genres": ("genres",),
    "brand": ("brand",),
    "category": ("category",),
}
_ITEM_FIELDS = ("title", "year", "genres", "brand", "category")


def _kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".tsv", ".tab", ".txt")):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    raise DataFormatError(
        f"cannot tell the format of {path} from its name",
        "name the file .csv, .tsv or .parquet (optionally .csv.gz / .tsv.gz)",
    )


def _read(path: Path, text_columns: set[str]) -> pl.DataFrame:
    """Read a table; id columns stay text so "007" stays "007"."""
    kind = _kind(path)
    try:
        if kind == "parquet":
            return pl.read_parquet(path)
        sep = "\t" if kind == "tsv" else ","
        # TSV files do not quote; CSV files quote fields holding commas
        quote = None if kind == "tsv" else '"'
        header = pl.read_csv(path, separator=sep, quote_char=quote, n_rows=0).columns
        overrides = {c: pl.Utf8 for c in header if c in text_columns}
        return pl.read_csv(path, separator=sep, quote_char=quote, schema_overrides=overrides,
                           infer_schema_length=10_000)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as e:
        raise DataFormatError(
            f"{path} cannot be read as {kind.upper()}: {str(e).splitlines()[0]}",
            "check the file's format and separator (CSV: comma, TSV: tab)",
        ) from e


def _resolve(path: Path, df: pl.DataFrame, columns: dict[str, str], fields: tuple[str, ...],
             required: tuple[str, ...]) -> dict[str, str]:
    """field -> column in `df`, from the mapping or the defaults."""
    out: dict[str, str] = {}
    for field in fields:
        if field in columns:
            col = columns[field]
            if col not in df.columns:
                raise DataFormatError(
                    f"{path} has no column {col!r} (mapped to {field}); its columns are: {', '.join(df.columns)}",
                    f"map {field} to one of those, e.g. --map {field}={df.columns[0]}",
                )
            out[field] = col
            continue
        found = next((c for c in DEFAULTS[field] if c in df.columns), None)
        if found is not None:
            out[field] = found
        elif field in required:
            raise DataFormatError(
                f"{path} has no {field} column (looked for {', '.join(DEFAULTS[field])}); "
                f"its columns are: {', '.join(df.columns)}",
                f"name it with --map {field}=COLUMN",
            )
    return out


#: an ISO 8601 date, optionally with a time and a zone: the only text dates accepted, since
#: 05/01/2024 is 5 January in one country and 1 May in another
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
#: 9999-12-31T23:59:59 in Unix seconds: a larger "timestamp" is not one
_MAX_SECONDS = 253_402_300_799
_FORMATS = "Unix seconds (e.g. 1714557600) or ISO 8601 dates (e.g. 2024-05-01 or 2024-05-01T10:00:00)"


def _bad_timestamp(path: Path, col: pl.Series, bad: pl.Series, what: str) -> DataFormatError:
    k = int(bad.arg_max())  # the first bad row
    return DataFormatError(
        f"{path}: timestamp {col[k]!r} (row {k + 1}) is {what}; timestamps must be {_FORMATS}",
        "convert the column, e.g. 05/01/2024 to 2024-05-01 (genrec does not guess day or month first)",
    )


def _timestamps(path: Path, col: pl.Series) -> pl.Series:
    """Unix seconds from integers, floats, dates or ISO 8601 strings; anything else is refused."""
    dtype = col.dtype
    if dtype.is_integer():
        return col.cast(pl.Int64)
    if dtype.is_float():
        bad = (~col.is_finite() | (col.abs() > _MAX_SECONDS)).fill_null(False)
        if bad.any():
            raise _bad_timestamp(path, col, bad, "not a finite number of seconds before the year 10000")
        return col.cast(pl.Int64)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("ms")).dt.epoch("s")
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("s")
    if dtype == pl.Utf8:
        text = col.str.strip_chars()
        as_int = text.cast(pl.Int64, strict=False)
        if as_int.null_count() == col.null_count():
            return as_int
        as_float = text.cast(pl.Float64, strict=False)  # also "1.5", "nan", "1e300"
        if as_float.null_count() == col.null_count():
            return _timestamps(path, as_float)
        iso = text.str.contains(_ISO).fill_null(False)
        is_number = as_float.is_not_null()
        if is_number.any() and iso.any():
            a, b = int(is_number.arg_max()), int(iso.arg_max())
            raise DataFormatError(
                f"{path}: the timestamp column mixes Unix seconds ({col[a]!r}, row {a + 1}) and "
                f"ISO 8601 dates ({col[b]!r}, row {b + 1})",
                "write every timestamp the same way: all Unix seconds or all ISO 8601 dates",
            )
        bad = col.is_not_null() & ~iso & ~is_number
        if bad.any():
            raise _bad_timestamp(path, col, bad, "neither a number of seconds nor an ISO 8601 date")
        try:
            parsed = text.str.to_datetime(strict=False, time_unit="ms")
        except pl.exceptions.PolarsError:  # no one format fits every row: parsed one by one below
            parsed = pl.Series(col.name, [None] * len(col), dtype=pl.Datetime("ms"))
        if parsed.dtype.time_zone is not None:  # type: ignore[union-attr]
            parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        seconds = parsed.dt.epoch("s")
        # polars infers one format from the first values; rows in another ISO 8601 form
        # (a bare date, a "Z" or "+02:00" suffix) are parsed one by one
        rest = (col.is_not_null() & seconds.is_null()).arg_true()
        if len(rest):
            fixed = pl.Series([_iso_seconds(v) for v in text.gather(rest).to_list()], dtype=pl.Int64)
            seconds = seconds.scatter(rest, fixed)
            bad = col.is_not_null() & seconds.is_null()
            if bad.any():
                raise _bad_timestamp(path, col, bad, "not a valid ISO 8601 date")
        return seconds
    raise DataFormatError(f"{path}: the timestamp column has type {dtype}", "use Unix seconds or ISO 8601 dates")


def _iso_seconds(text: str) -> int | None:
    """Unix seconds of an ISO 8601 date or time; times without a zone are taken as UTC."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _item_columns(df: pl.DataFrame, mapping: dict[str, str], id_col: str) -> pl.DataFrame:
    cols = [pl.col(id_col).cast(pl.Utf8).alias("item_id")]
    for field in _ITEM_FIELDS:
        if field not in mapping:
            continue
        c = pl.col(mapping[field])
        if field == "genres":
            c = c if isinstance(df.schema[mapping[field]], pl.List) else c.cast(pl.Utf8).str.split("|")
        elif field == "year":
            c = c.cast(pl.Int32, strict=False)
        else:
            c = c.cast(pl.Utf8)
        cols.append(c.alias("category" if field == "category" else field))
    return df.select(cols)


def read_table(path: str | Path, columns: dict[str, str] | None = None,
               items_path: str | Path | None = None, **options) -> SourceData:
    """Read a CSV/TSV/Parquet interactions table (and an optional items table)."""
    if options:
        raise DataFormatError(
            f"the table format takes only --map and --items (got {', '.join(sorted(options))})",
            "see `genrec prepare --help`",
        )
    path = Path(path)
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(DEFAULTS))
    if unknown:
        raise DataFormatError(
            f"unknown field(s) in the column mapping: {', '.join(unknown)}",
            f"map these fields: {', '.join(DEFAULTS)} (e.g. --map user=customer_id)",
        )
    ids = {columns.get(f) for f in ("user", "item")} | {n for f in ("user", "item") for n in DEFAULTS[f]}
    df = _read(path, {c for c in ids if c})
    # with an items table, item fields are looked up there (the mapping serves both tables)
    fields = ("user", "item", "timestamp", "rating") + (_ITEM_FIELDS if items_path is None else ())
    m = _resolve(path, df, columns, fields, required=("user", "item"))
    inter_cols = [pl.col(m["user"]).cast(pl.Utf8).alias("user_id"), pl.col(m["item"]).cast(pl.Utf8).alias("item_id")]
    if "rating" in m:
        inter_cols.append(pl.col(m["rating"]).cast(pl.Float64, strict=False).alias("rating"))
    interactions = df.select(inter_cols)
    if "timestamp" in m:
        interactions = interactions.with_columns(_timestamps(path, df[m["timestamp"]]).alias("timestamp"))
    for field in ("user_id", "item_id"):
        if interactions[field].null_count():
            row = int(interactions[field].is_null().arg_max())
            raise DataFormatError(f"{path}: row {row + 1} has no {field.split('_')[0]}", "every row needs a user and an item")
    if items_path is not None:
        items_path = Path(items_path)
        if not items_path.is_file():
            raise DataFormatError(f"the items table {items_path} does not exist", "check the --items path")
        idf = _read(items_path, {c for c in ({columns.get("item")} | set(DEFAULTS["item"])) if c})
        im = _resolve(items_path, idf, columns, ("item", *_ITEM_FIELDS), required=("item",))
        if "title" not in im:
            raise DataFormatError(
                f"the items table {items_path} has no title column (looked for title); its columns are: "
                f"{', '.join(idf.columns)}",
                "name it with --map title=COLUMN",
            )
        items = _item_columns(idf, im, im["item"])
    elif any(f in m for f in _ITEM_FIELDS):
        items = _item_columns(df, m, m["item"]).unique(subset="item_id", keep="first", maintain_order=True)
        if "title" not in m:
            items = items.with_columns(pl.col("item_id").alias("title"))
    else:
        items = items_from_interactions(interactions)
    return SourceData(interactions, items, name=path.name.split(".")[0], format="table", domain="items",
                      notes={"columns": ", ".join(f"{k}={v}" for k, v in m.items())})
