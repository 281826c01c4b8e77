"""The canonical tables every source reader returns.

Readers differ in what they parse; everything after them sees the same two tables:

- ``interactions``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, may be
  null when the source has no time), ``rating`` (float64, null when absent) and ``order``
  (int64, the row's position in the source, used to break timestamp ties: stable source
  order, never item id). A source that comes split (RecBole's benchmark files) adds
  ``split`` (``SPLIT_TYPE``: train, valid or test per event), which `prepare` keeps.
- ``items``: ``item_id`` (str), ``title`` (str, null when missing), ``year`` (int32),
  ``genres`` (list of str), ``brand`` (str), ``category`` (str); the last four may be null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from ..errors import DataFormatError

Domain = Literal["movies", "products", "games", "items"]

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Utf8,
    "item_id": pl.Utf8,
    "timestamp": pl.Int64,
    "rating": pl.Float64,
    "order": pl.Int64,
}

#: the optional ``split`` column of a pre-split source's interactions
SPLIT_TYPE = pl.Enum(["train", "valid", "test"])

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Utf8,
    "title": pl.Utf8,
    "year": pl.Int32,
    "genres": pl.List(pl.Utf8),
    "brand": pl.Utf8,
    "category": pl.Utf8,
}


@dataclass
class SourceData:
    """What a reader returns: canonical interactions and items, plus provenance."""

    interactions: pl.DataFrame
    items: pl.DataFrame
    name: str
    format: str
    domain: Domain = "items"
    #: counts a reader wants recorded in the manifest (e.g. rows it skipped, and why)
    notes: dict[str, int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.interactions = conform(self.interactions, INTERACTION_SCHEMA, "interactions")
        self.items = conform(self.items, ITEM_SCHEMA, "items")

    @property
    def presplit(self) -> bool:
        """Whether the source says which split each event belongs to."""
        return "split" in self.interactions.columns


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType], what: str) -> pl.DataFrame:
    """Cast `df` to `schema`: required columns must exist, optional ones become null."""
    required = {"interactions": ("user_id", "item_id"), "items": ("item_id",)}[what]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"the {what} table has no column {', '.join(missing)} (columns: {df.columns})",
            "this is a bug in the reader, or map the columns with `genrec prepare table --map`",
        )
    if what == "interactions" and "order" not in df.columns:
        df = df.with_row_index("order").with_columns(pl.col("order").cast(pl.Int64))
    cols = []
    for name, dtype in schema.items():
        if name in df.columns:
            cols.append(pl.col(name).cast(dtype, strict=False))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    if what == "interactions" and "split" in df.columns:
        cols.append(pl.col("split").cast(SPLIT_TYPE))
    return df.select(cols)


def items_from_interactions(interactions: pl.DataFrame) -> pl.DataFrame:
    """A catalogue whose titles are the item ids (for sources where the id is the title)."""
    ids = interactions.select(pl.col("item_id").unique(maintain_order=True))
    return ids.with_columns(pl.col("item_id").alias("title"))
