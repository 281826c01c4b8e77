"""The canonical dataset folder that `genrec prepare` writes and everything else reads.

Layout (``FORMAT_VERSION`` 1)::

    manifest.json       counts, settings, catalogue report
    items.parquet       index, item_id, title, year, genres, brand, category
    sequences.parquet   user_id, items (chronological indices), timestamps, n_train, n_valid
    train.parquet       user_id, history, target, position   (sliding windows)
    valid.parquet       (same columns)
    test.parquet        (same columns)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from .._io import atomic_dir, check_out, read_json, write_json
from .._version import __version__
from ..config import Config
from ..errors import GenrecError
from .catalogue import Catalogue, clean_catalogue
from .sequences import (
    Repeats,
    Sequences,
    SplitName,
    build_sequences,
    filter_events,
    order_events,
    window_examples,
)
from .tables import Domain, SourceData

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")


class PrepareConfig(Config):
    """Settings of `genrec prepare` (all recorded in the manifest)."""

    split: SplitName | None = Field(None, description="leave-one-out (last event test, second-last validation), temporal (global 8:1:1 time cut) or given (the split a source carries: RecBole's NAME.train/valid/test.inter); default: given when the source carries one, else leave-one-out")
    max_history: int = Field(10, ge=1, description="at most this many preceding events in an example's history (the paper's data: 10)")
    min_rating: float | None = Field(None, description="keep only interactions rated at least this (default: keep all)")
    user_core: int = Field(0, ge=0, description="k-core: keep users with at least this many interactions (0 = off)")
    item_core: int = Field(0, ge=0, description="k-core: keep items with at least this many interactions (0 = off)")
    repeats: Repeats = Field("keep", description="repeated (user, item) events: keep all, or only the first or last")
    name: str | None = Field(None, description="dataset name in the manifest (default: from the source)")
    domain: Domain | None = Field(None, description="movies, products, games or items; chooses prompt wording (default: from the source)")


class Dataset:
    """A prepared dataset folder, read lazily."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "manifest.json").is_file():
            raise GenrecError(
                f"{self.path} is not a genrec dataset folder (no manifest.json)",
                "create one with `genrec prepare FORMAT PATH --out DIR`",
            )
        self.manifest = read_json(self.path / "manifest.json")
        version = self.manifest.get("genrec_format")
        if version != FORMAT_VERSION:
            raise GenrecError(
                f"{self.path} was written in dataset format {version!r}; this genrec reads format {FORMAT_VERSION}",
                "prepare the dataset again with this version of genrec",
            )

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def domain(self) -> Domain:
        return self.manifest.get("domain", "items")

    @cached_property
    def items(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / "items.parquet")

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.items["item_id"].to_list(), self.items["title"].to_list())

    @cached_property
    def sequences(self) -> Sequences:
        return Sequences.from_arrow(pq.read_table(self.path / "sequences.parquet"))

    def examples(self, split: Literal["train", "valid", "test"]) -> pl.DataFrame:
        if split not in SPLITS:
            raise GenrecError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
        df = pl.read_parquet(self.path / f"{split}.parquet")
        return df.with_columns(pl.col("user_id").cast(pl.Utf8))

    def train_sequences(self) -> list[np.ndarray]:
        """Each user's training part (chronological item indices)."""
        s = self.sequences
        return [s.user_items(u)[: s.n_train[u]] for u in range(s.n_users)]

    def item_popularity(self) -> np.ndarray:
        """Interaction counts per item over the training parts only."""
        s = self.sequences
        counts = np.zeros(len(self.catalogue), dtype=np.int64)
        for u in range(s.n_users):
            np.add.at(counts, s.user_items(u)[: s.n_train[u]], 1)
        return counts


def prepare(source: SourceData, out: str | Path, config: PrepareConfig | None = None, progress=None,
            overwrite: bool = True, inputs: Sequence[str | Path | None] = ()) -> dict:
    """Build a dataset folder at `out` from `source`; returns the manifest.

    The folder is written atomically: a failure leaves an existing `out` untouched.
    `out` must pass ``_io.check_out`` (`inputs`: the files read, which it may not
    replace); an earlier dataset there is replaced only with `overwrite`.
    """
    check_out(out, "dataset", inputs, overwrite)
    config = config or PrepareConfig()
    if config.split == "given" and not source.presplit:
        raise GenrecError(
            f"--split given, but the {source.format} source {source.name!r} carries no split",
            "use --split leave-one-out or temporal (the given split comes with RecBole's NAME.train/valid/test.inter)",
        )
    # a source's own split is kept unless another is asked for (then its events are re-split)
    config = config.model_copy(update={"split": config.split or ("given" if source.presplit else "leave-one-out")})
    t0 = time.perf_counter()
    step = progress or (lambda msg: None)

    step("catalogue")
    inter = source.interactions
    n_raw = inter.height
    if n_raw == 0:
        raise GenrecError(f"the source {source.name!r} has no interactions", "check the input file")
    # Only items someone interacted with enter the catalogue (Amazon meta files list millions).
    used = inter.select("item_id").unique()
    items = source.items.join(used, on="item_id", how="semi")
    items, catalogue_report = clean_catalogue(items)
    known = items.select("item_id")
    before = inter.height
    if known.height < used.height:  # else every used item kept its title: skip a full copy
        inter = inter.join(known, on="item_id", how="semi", maintain_order="left")
    dropped_events = before - inter.height

    step("filters")
    inter, filter_report = filter_events(
        inter, config.min_rating, config.user_core, config.item_core, config.repeats
    )
    if inter.height == 0:
        raise GenrecError(
            "no interactions are left after filtering "
            f"(min_rating={config.min_rating}, user_core={config.user_core}, item_core={config.item_core})",
            "lower --min-rating or the k-core thresholds",
        )
    items = items.join(inter.select("item_id").unique(), on="item_id", how="semi", maintain_order="left")
    items = items.with_row_index("index").with_columns(pl.col("index").cast(pl.Int32))

    step("sequences")
    ordered = order_events(inter, by_split=config.split == "given")
    seqs = build_sequences(ordered, items.select("item_id", "index"), config.split)
    n_interactions = inter.height
    del ordered, inter  # tens of millions of rows at ML-25M scale; the windows below need the room

    with atomic_dir(out, overwrite, kind="dataset", inputs=inputs) as tmp:
        step("writing")
        items.write_parquet(tmp / "items.parquet")
        pq.write_table(seqs.to_arrow(), tmp / "sequences.parquet")
        counts = {}
        for part in SPLITS:
            table = window_examples(seqs, part, config.max_history)
            counts[part] = table.num_rows
            pq.write_table(table, tmp / f"{part}.parquet")
        if counts["test"] == 0:
            raise GenrecError(
                "the split produced no test examples (every user has a single event?)",
                "use data with at least two events per user, or a k-core filter such as --user-core 3",
            )
        lengths = seqs.lengths()
        manifest = {
            "genrec_format": FORMAT_VERSION,
            "genrec_version": __version__,
            "name": config.name or source.name,
            "format": source.format,
            "domain": config.domain or source.domain,
            "n_users": seqs.n_users,
            "n_items": items.height,
            "n_interactions": int(n_interactions),
            "examples": counts,
            "split": config.split,
            "max_history": config.max_history,
            "duplicate_titles": catalogue_report["duplicate_titles"],
            "dropped_items": {
                "untitled": catalogue_report["untitled"],
                "untitled_examples": catalogue_report["untitled_examples"],
                "repeated_item_rows": catalogue_report["repeated_item_rows"],
                "events_of_dropped_items": dropped_events,
            },
            "filters": filter_report,
            "sequence_length": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
            },
            "source_notes": source.notes,
            "settings": config.model_dump(mode="json"),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(tmp / "manifest.json", manifest)
    return manifest
