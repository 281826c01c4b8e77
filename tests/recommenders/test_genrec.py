"""GenRec through the recommender contract: a tiny random LLaMA (the packaged SmolLM2
tokenizer) trained for two steps on the 30-item dataset. Its lists are arbitrary but
deterministic, which is all the contract asks; the beam is wider than the catalogue, so
every k the suite asks for up to the width is answered in full."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from genrec.errors import GenrecError
from genrec.recommenders.genrec import GenRec
from genrec.training.config import TrainConfig
from tests._util import requires_packaged
from tests.recommenders.conformance import RecommenderTests

pytestmark = requires_packaged

_ROOT = Path(tempfile.mkdtemp(prefix="genrec-conformance-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
BEAMS = 40  # the catalogue has 30 items


class TestGenRec(RecommenderTests):
    def make(self) -> GenRec:
        cfg = TrainConfig.build({"backbone": "tiny-random-llama", "max_steps": 2, "batch_size": 4, "effective_batch": 4,
                                 "max_users": 4, "warmup_steps": 0, "seed": 3})
        return GenRec(Path(tempfile.mkdtemp(dir=_ROOT)) / "run", beams=BEAMS, train_config=cfg)

    def reload(self, fitted, path, dataset) -> GenRec:
        return GenRec.load(path, dataset, beams=fitted.beams)


def test_fit_needs_a_config_and_a_folder(tiny_dataset):
    with pytest.raises(GenrecError, match="train_config and run_dir"):
        GenRec(beams=5).fit(tiny_dataset)
