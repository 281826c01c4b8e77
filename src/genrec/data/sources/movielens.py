"""MovieLens as GroupLens ships it (Harper & Konstan, 2015; files.grouplens.org).

Three layouts exist:

- ml-100k: ``u.data`` (tab-separated ``user item rating timestamp``) and ``u.item``
  (``|``-separated, Latin-1: ``id|title|release date|video date|IMDb URL|19 genre flags``;
  the genre names are in ``u.genre``);
- ml-1m and ml-10m: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) and
  ``movies.dat`` (``MovieID::Title::Genres``, genres ``|``-separated; Latin-1 in ml-1m,
  UTF-8 in ml-10m);
- ml-latest-small, ml-20m, ml-25m, ml-32m: ``ratings.csv``
  (``userId,movieId,rating,timestamp``) and ``movies.csv`` (``movieId,title,genres``,
  titles quoted when they hold commas; ``(no genres listed)`` means none).

PATH is the folder (or a folder one level above it, as unzipping often leaves
``ml-25m/ml-25m/``) or the zip file GroupLens publishes, read in place. Titles are kept
as GroupLens writes them ("Matrix, The (1999)"); the year is taken from the title's
trailing "(YYYY)". Ratings files are parsed by polars: ML-25M's 25 million lines take
seconds. The ``::`` separator is read as the one-character separator ``:`` with the
empty fields between the colons ignored (ratings hold no colons; titles do, so
``movies.dat``, a few thousand lines, is split in Python).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData
from ._text import check_utf8, decode_text, field_checker, first_bad_line, malformed, year_from_title

#: the two files that identify each layout: (ratings, movies)
LAYOUTS: dict[str, tuple[str, str]] = {
    "100k": ("u.data", "u.item"),
    "dat": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}

#: ml-100k's genre flag order, used when ``u.genre`` is absent
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)

_FIX_LINE = "the file is not as GroupLens ships it; download the data set again (`genrec prepare movielens --download NAME`)"


@dataclass
class _Release:
    """Where one release's files are: a folder or members of the zip."""

    name: str
    layout: str
    folder: Path | None = None
    archive: zipfile.ZipFile | None = None
    prefix: str = ""  # member-name prefix inside the zip

    def label(self, file: str) -> str:
        if self.archive is not None:
            return f"{self.archive.filename}:{self.prefix}{file}"
        return str(self.folder / file)

    def exists(self, file: str) -> bool:
        if self.archive is not None:
            return f"{self.prefix}{file}" in self.archive.NameToInfo
        return (self.folder / file).is_file()

    def source(self, file: str) -> Path | bytes:
        """A path polars can map, or the member's bytes (zip members are read, not extracted)."""
        if self.archive is not None:
            return self.archive.read(f"{self.prefix}{file}")
        return self.folder / file

    def read_bytes(self, file: str) -> bytes:
        src = self.source(file)
        return src if isinstance(src, bytes) else src.read_bytes()


def _layout_of(present: set[str]) -> str | None:
    for layout, (ratings, movies) in LAYOUTS.items():
        if ratings in present and movies in present:
            return layout
    return None


def _looked_for() -> str:
    return "; ".join(f"{r} + {m}" for r, m in LAYOUTS.values())


def _locate(path: Path) -> _Release:
    if path.is_file() and zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        by_dir: dict[str, set[str]] = {}
        for member in archive.namelist():
            head, _, base = member.rpartition("/")
            if head.count("/") <= 1:  # the zip's folder, or one nested level below it
                by_dir.setdefault(f"{head}/" if head else "", set()).add(base)
        for prefix in sorted(by_dir, key=lambda p: (p.count("/"), p)):
            layout = _layout_of(by_dir[prefix])
            if layout:
                return _Release(path.name.removesuffix(".zip"), layout, archive=archive, prefix=prefix)
        archive.close()
        raise DataFormatError(
            f"the zip {path} holds no MovieLens files (looked for {_looked_for()})",
            "pass a zip as GroupLens publishes it, e.g. ml-1m.zip",
        )
    if path.is_file():
        if path.name not in {f for pair in LAYOUTS.values() for f in pair}:
            raise DataFormatError(
                f"{path} is not a MovieLens file or zip",
                f"pass the folder (with {_looked_for()}) or the zip GroupLens publishes",
            )
        path = path.parent
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir())
    for folder in candidates:
        layout = _layout_of({p.name for p in folder.iterdir() if p.is_file()})
        if layout:
            return _Release(folder.name, layout, folder=folder)
    for folder in candidates:  # half a release: name the file that is missing
        present = {p.name for p in folder.iterdir() if p.is_file()}
        for ratings, movies in LAYOUTS.values():
            if (ratings in present) != (movies in present):
                have, missing = (ratings, movies) if ratings in present else (movies, ratings)
                raise DataFormatError(
                    f"{folder} holds {have} but not {missing}, which a MovieLens release has beside it",
                    f"put {missing} from the same release into {folder}",
                )
    raise DataFormatError(
        f"{path} holds no MovieLens files (looked for {_looked_for()}, "
        "in the folder and one level below)",
        "pass the folder that unzipping ml-100k.zip, ml-1m.zip, ml-25m.zip etc. gives, or the zip itself",
    )


#: how each layout's ratings lines are split: separator, and whether a header line comes first
_RATINGS_SPLIT = {"100k": ("\t", False), "dat": ("::", False), "csv": (",", True)}
#: user, item, rating and timestamp are all numbers in every GroupLens ratings file
_RATING_NUMERIC = {0: int, 1: int, 2: float, 3: int}


def _parse_failure(release: _Release, file: str, error: Exception | None) -> DataFormatError:
    """Name the first bad line of a ratings file polars rejected (slow scan, failures only)."""
    sep, header = _RATINGS_SPLIT[release.layout]
    lines = decode_text(release.read_bytes(file)).splitlines()
    found = first_bad_line(lines[1:] if header else lines, field_checker(sep, 4, _RATING_NUMERIC),
                           start=2 if header else 1)
    if found is not None:
        return malformed(release.label(file), found, _FIX_LINE)
    detail = f": {str(error).splitlines()[0]}" if error else ""
    return DataFormatError(f"{release.label(file)} cannot be parsed{detail}", _FIX_LINE)


def _read_ratings(release: _Release) -> pl.DataFrame:
    file = LAYOUTS[release.layout][0]
    src = release.source(file)
    try:
        if release.layout == "dat":
            # "1::2::5::978300760" split on ":" gives seven fields, every second one empty
            schema = {"user_id": pl.Utf8, "_a": pl.Utf8, "item_id": pl.Utf8, "_b": pl.Utf8,
                      "rating": pl.Float64, "_c": pl.Utf8, "timestamp": pl.Int64}
            df = pl.read_csv(src, separator=":", has_header=False, schema=schema, quote_char=None)
            shifted = df.select(pl.any_horizontal(pl.col("_a", "_b", "_c").is_not_null()).any()).item()
            df = df.select("user_id", "item_id", "timestamp", "rating")
        elif release.layout == "100k":
            schema = {"user_id": pl.Utf8, "item_id": pl.Utf8, "rating": pl.Float64, "timestamp": pl.Int64}
            df = pl.read_csv(src, separator="\t", has_header=False, schema=schema, quote_char=None)
            shifted = False
        else:
            df = pl.read_csv(
                src,
                schema_overrides={"userId": pl.Utf8, "movieId": pl.Utf8, "rating": pl.Float64,
                                  "timestamp": pl.Int64},
            )
            missing = [c for c in ("userId", "movieId", "rating", "timestamp") if c not in df.columns]
            if missing:
                raise DataFormatError(
                    f"{release.label(file)} has no column {', '.join(missing)} (header: {df.columns})",
                    "ratings.csv needs the header userId,movieId,rating,timestamp",
                )
            df = df.select(
                pl.col("userId").alias("user_id"), pl.col("movieId").alias("item_id"), "timestamp", "rating"
            )
            shifted = False
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, pl.exceptions.NoDataError) as e:
        raise _parse_failure(release, file, e) from e
    if df.null_count().sum_horizontal().item():  # cheap: null counts are kept per column
        # a blank line parses as a row of nulls: drop those (the line scan skips them too);
        # any other empty field is a short line
        df = df.filter(~pl.all_horizontal(pl.all().is_null()))
        shifted = shifted or df.select(pl.any_horizontal(pl.all().is_null()).any()).item()
    if shifted:
        raise _parse_failure(release, file, None)
    return df


def _genre_list(genres: pl.Expr) -> pl.Expr:
    return (
        pl.when(genres.is_null() | (genres == "(no genres listed)") | (genres == ""))
        .then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(genres.str.split("|"))
    )


def _read_movies_100k(release: _Release) -> pl.DataFrame:
    names = list(ML100K_GENRES)
    if release.exists("u.genre"):
        pairs = [ln.split("|") for ln in decode_text(release.read_bytes("u.genre")).splitlines()]
        by_index = {int(p[1]): p[0] for p in pairs if len(p) == 2 and p[1].strip().isdigit()}
        if sorted(by_index) == list(range(len(by_index))) and by_index:
            names = [by_index[i] for i in range(len(by_index))]
    n_fields = 5 + len(names)
    ids, titles, dates, genres = [], [], [], []
    for n, line in enumerate(decode_text(release.read_bytes("u.item")).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        flags = parts[5:]
        if len(parts) != n_fields or not parts[0].strip() or any(f not in ("0", "1") for f in flags):
            raise malformed(
                release.label("u.item"),
                (n, line, f"{len(parts)} fields separated by '|', expected {n_fields} "
                          f"(id|title|release date|video release date|IMDb URL|{len(names)} genre flags)"),
                _FIX_LINE,
            )
        ids.append(parts[0])
        titles.append(parts[1] or None)
        dates.append(parts[2])
        # "unknown" is ml-100k's flag for "no genre", not a genre
        genres.append([g for g, f in zip(names, flags, strict=True) if f == "1" and g != "unknown"])
    df = pl.DataFrame(
        {"item_id": ids, "title": titles, "date": dates, "genres": genres},
        schema={"item_id": pl.Utf8, "title": pl.Utf8, "date": pl.Utf8, "genres": pl.List(pl.Utf8)},
    )
    # the release date ("01-Jan-1995") stands in where the title carries no year
    return df.with_columns(
        pl.coalesce(year_from_title(pl.col("title")),
                    pl.col("date").str.extract(r"(\d{4})\s*$", 1).cast(pl.Int32, strict=False)).alias("year")
    ).drop("date")


def _read_movies_dat(release: _Release) -> pl.DataFrame:
    ids, titles, genres = [], [], []
    label = release.label("movies.dat")
    for n, line in enumerate(decode_text(release.read_bytes("movies.dat")).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3 or not parts[0].strip():
            raise malformed(label, (n, line, f"{len(parts)} fields separated by '::', expected 3 "
                                             "(MovieID::Title::Genres)"), _FIX_LINE)
        ids.append(parts[0])
        titles.append(parts[1] or None)
        genres.append(parts[2])
    df = pl.DataFrame({"item_id": ids, "title": titles, "genres": genres},
                      schema={"item_id": pl.Utf8, "title": pl.Utf8, "genres": pl.Utf8})
    return df.with_columns(_genre_list(pl.col("genres")).alias("genres"), year_from_title(pl.col("title")).alias("year"))


def _read_movies_csv(release: _Release) -> pl.DataFrame:
    label = release.label("movies.csv")
    try:
        df = pl.read_csv(release.source("movies.csv"), infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as e:
        raise DataFormatError(f"{label} cannot be parsed: {str(e).splitlines()[0]}", _FIX_LINE) from e
    check_utf8(df, lambda: release.read_bytes("movies.csv"), label)
    missing = [c for c in ("movieId", "title", "genres") if c not in df.columns]
    if missing:
        raise DataFormatError(f"{label} has no column {', '.join(missing)} (header: {df.columns})",
                              "movies.csv needs the header movieId,title,genres")
    bad = df.with_row_index("_row").filter(pl.col("movieId").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise DataFormatError(f"{label} line {row['_row'] + 2} has no movieId", _FIX_LINE)
    return df.select(
        pl.col("movieId").alias("item_id"),
        pl.col("title"),
        year_from_title(pl.col("title")).alias("year"),
        _genre_list(pl.col("genres")).alias("genres"),
    )


def read_movielens(path: str | Path, **options) -> SourceData:
    """Read a MovieLens release (folder or GroupLens zip) into the canonical tables."""
    if options:
        raise DataFormatError(
            f"the movielens format takes no options (got {', '.join(sorted(options))})",
            "drop --map / --items for movielens; they belong to the table format",
        )
    release = _locate(Path(path))
    try:
        interactions = _read_ratings(release)
        reader = {"100k": _read_movies_100k, "dat": _read_movies_dat, "csv": _read_movies_csv}
        items = reader[release.layout](release)
    finally:
        if release.archive is not None:
            release.archive.close()
    notes: dict[str, int | str] = {"layout": "+".join(LAYOUTS[release.layout])}
    return SourceData(interactions, items, name=release.name, format="movielens", domain="movies", notes=notes)
