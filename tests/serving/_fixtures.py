"""Fixtures shared by tests/test_api.py and tests/serving/: one tiny trained run per session.

The run is the tiny random LLaMA (real SmolLM2 tokenizer) trained for one step on the
30-item synthetic dataset of tests/conftest.py: its recommendations are arbitrary but
deterministic, which is all the serving code needs. Tests that change the catalogue
load a private copy of the run folder, so its catalogue_changes.json starts empty.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

__all__ = ["one_thread", "recommender", "run_copy", "tiny_run"]

_RUN: dict[str, Path] = {}  # the run is trained once even when two modules import these fixtures


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    if "run" not in _RUN:
        from genrec.training.config import TrainConfig
        from genrec.training.loop import train

        run = tmp_path_factory.mktemp("serving") / "run"
        cfg = TrainConfig.build({"backbone": "tiny-random-llama", "max_steps": 1, "batch_size": 4, "effective_batch": 4,
                                 "max_users": 4, "warmup_steps": 0})
        train(tiny_dataset.path, run, cfg)
        _RUN["run"] = run
    return _RUN["run"]


@pytest.fixture(scope="module", autouse=True)
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
