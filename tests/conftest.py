"""Fixtures shared across test packages: small prepared datasets built offline, in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

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


# ---------------------------------------------------------------------- a tiny trained run

@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny random LLaMA (real SmolLM2 tokenizer) trained for one step on the tiny
    dataset, once per session: its recommendations are arbitrary but deterministic, which
    is all the API and serving tests need. Tests that change the catalogue persistently
    load a private copy (``run_copy``), so its catalogue_changes.json starts empty."""
    from genrec.training.config import TrainConfig
    from genrec.training.loop import train

    run = tmp_path_factory.mktemp("serving") / "run"
    cfg = TrainConfig.build({"backbone": "tiny-random-llama", "max_steps": 1, "batch_size": 4, "effective_batch": 4,
                             "max_users": 4, "warmup_steps": 0})
    train(tiny_dataset.path, run, cfg)
    return run


@pytest.fixture(scope="module")
def one_thread():
    """The tiny model gains nothing from threads; restore the setting for other tests."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run (without its checkpoints) for tests that persist changes."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


@pytest.fixture(scope="module")
def recommender(tiny_run):
    """A loaded run that keeps catalogue changes in memory only (tests that change it must undo)."""
    from genrec import Recommender

    return Recommender.load(tiny_run, persist=False)
