"""Fixtures shared across test packages: small prepared datasets built offline, in-process."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from genrec.data import Dataset, SourceData, prepare

#: 30 made-up films: five three-film series (so titles share words) and fifteen singles
TINY_TITLES = [
    *(f"Star Quest{s} ({1980 + i})" for i, s in enumerate(["", " 2", " 3"])),
    *(f"Night River{s} ({1990 + i})" for i, s in enumerate(["", " II", " III"])),
    *(f"Blue King{s} ({2000 + i})" for i, s in enumerate(["", " Returns", " Forever"])),
    *(f"Lost Summer{s} ({1995 + i})" for i, s in enumerate(["", " Again", " Ends"])),
    *(f"Red Ghost{s} ({1985 + i})" for i, s in enumerate(["", " Rising", " Falls"])),
    "Matrix, The (1999)", "Heat (1995)", "Casino (1995)", "Fargo (1996)", "Brazil (1985)",
    "Clerks (1994)", "Speed (1994)", "Babe (1995)", "Alien (1979)", "Twister (1996)",
    "City of Love (2001)", "War Story (1970)", "Dark City (1998)", "Girl and Man (2003)", "Up (2009)",
]


def tiny_source(n_users: int = 20, seed: int = 0) -> SourceData:
    """Users who mostly walk the catalogue in order (item i then i+1), with some noise.

    The order gives sequential models something to learn; the popular head (low indices
    are visited more) gives popularity something to rank.
    """
    rng = np.random.default_rng(seed)
    n_items = len(TINY_TITLES)
    rows = []
    for u in range(n_users):
        length = int(rng.integers(6, 14))
        item = int(rng.integers(0, 8))
        for t in range(length):
            rows.append((f"u{u:02d}", f"i{item:02d}", 1_000 + 10 * t))
            item = (item + 1) % n_items if rng.random() < 0.8 else int(rng.integers(0, n_items))
    inter = pl.DataFrame(rows, schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64}, orient="row")
    items = pl.DataFrame({"item_id": [f"i{i:02d}" for i in range(n_items)], "title": TINY_TITLES})
    return SourceData(inter, items, name="tiny", format="table", domain="movies")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Dataset:
    """A 20-user, 30-item synthetic dataset (leave-one-out, repeats kept), prepared once."""
    out = tmp_path_factory.mktemp("tiny") / "ds"
    prepare(tiny_source(), out)
    return Dataset(out)
