"""The data set shipped inside genrec: MovieLens ml-latest-small, 2016 snapshot.

671 users, 9,066 movies, 100,004 ratings (GroupLens; terms in ``data/bundled/TERMS.md``).
The file joins ratings with titles: ``userId,movieId,title,year,genres,rating,timestamp``.
Titles are written as GroupLens writes them in ``movies.csv`` ("Title (Year)").
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..tables import SourceData

BUNDLED_NAME = "ml-latest-small-2016"
_COLUMNS = ["userId", "movieId", "title", "year", "genres", "rating", "timestamp"]


def bundled_path() -> Path:
    return Path(str(resources.files("genrec.data").joinpath(f"bundled/{BUNDLED_NAME}.csv.gz")))


def read_bundled(path: str | Path | None = None) -> SourceData:
    """Read the bundled file (or a file in the same joined format at `path`)."""
    src = Path(path) if path is not None else bundled_path()
    try:
        df = pl.read_csv(
            src,
            schema_overrides={
                "userId": pl.Utf8, "movieId": pl.Utf8, "title": pl.Utf8, "year": pl.Float64,
                "genres": pl.Utf8, "rating": pl.Float64, "timestamp": pl.Int64,
            },
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as e:
        raise DataFormatError(
            f"{src} is not a CSV file in the bundled format: {e}",
            f"the file needs the columns {','.join(_COLUMNS)}",
        ) from e
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{src} has no column {', '.join(missing)}",
            f"the file needs the columns {','.join(_COLUMNS)}",
        )
    interactions = df.select(
        pl.col("userId").alias("user_id"),
        pl.col("movieId").alias("item_id"),
        pl.col("timestamp"),
        pl.col("rating"),
    )
    year = pl.col("year").cast(pl.Int32, strict=False)
    items = (
        df.group_by("movieId", maintain_order=True)
        .first()
        .select(
            pl.col("movieId").alias("item_id"),
            pl.when(pl.col("title").is_null() | (pl.col("title").str.strip_chars() == ""))
            .then(None)
            .when(year.is_not_null())
            .then(pl.format("{} ({})", pl.col("title"), year))
            .otherwise(pl.col("title"))
            .alias("title"),
            year.alias("year"),
            pl.when(pl.col("genres") == "(no genres listed)")
            .then(pl.lit([], dtype=pl.List(pl.Utf8)))
            .otherwise(pl.col("genres").str.split("|"))
            .alias("genres"),
        )
    )
    return SourceData(interactions, items, name=BUNDLED_NAME, format="bundled", domain="movies")
