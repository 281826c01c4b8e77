from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrec.errors import ConfigError, GenrecError
from genrec.recommenders.sasrec import SASRec, SASRecConfig, SASRecModel, _left_pad, _length_grouped_batches
from tests.recommenders.conformance import RecommenderTests

TINY = dict(hidden=16, blocks=1, heads=2, max_len=12, batch_size=8, epochs=3, patience=2, threads=1, seed=3)


class TestSASRec(RecommenderTests):
    def make(self) -> SASRec:
        return SASRec(SASRecConfig(**TINY))


def test_learns_the_walk_order(tiny_dataset):
    # the tiny users mostly go from item i to item i+1: a trained model puts the
    # successor of the last item first far more often than chance (1 in 30)
    rec = SASRec(SASRecConfig(**{**TINY, "epochs": 60, "patience": 60, "lr": 1e-2, "dropout": 0.0})).fit(tiny_dataset)
    titles = tiny_dataset.catalogue.titles
    n = len(titles)
    hits = 0
    for start in range(n - 4):
        hist = [start, start + 1, start + 2]
        top = rec.recommend([hist], k=1).items[0, 0]
        hits += int(top == start + 3)
    assert hits / (n - 4) > 0.35  # 0.62 seen here; an untrained model gets 0.04
    assert rec.log[-1]["loss"] < rec.log[0]["loss"]


def test_padding_and_long_histories_do_not_change_scores(tiny_dataset):
    rec = SASRec(SASRecConfig(**TINY)).fit(tiny_dataset)
    short, long = [3, 4], list(range(20))  # long is cut to the last max_len=12 items
    together = rec.score([short, long])
    alone = np.concatenate([rec.score([short]), rec.score([long[-12:]])])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_no_attention_to_padding_or_the_future():
    torch.manual_seed(0)
    model = SASRecModel(10, SASRecConfig(hidden=8, blocks=2, heads=1, dropout=0.0, max_len=6)).eval()
    x = torch.tensor([[0, 0, 3, 4, 5, 6]])
    y = x.clone()
    y[0, 0] = 7  # change a padding slot: with a key mask it is never attended
    z = x.clone()
    z[0, 5] = 9  # change the last item: earlier positions must not see it
    with torch.no_grad():
        a, c = model(x), model(z)
        assert torch.allclose(a[0, 2:5], c[0, 2:5], atol=1e-6)
        assert not torch.allclose(a[0, 5], c[0, 5])
        assert torch.isfinite(a).all()


def test_left_pad_and_length_grouping():
    assert _left_pad([np.array([1, 2]), np.array([5, 6, 7, 8])], 3).tolist() == [[0, 2, 3], [7, 8, 9]]
    lengths = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 10])
    batches = _length_grouped_batches(lengths, 3, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert max(len(b) for b in batches) == 3


def test_save_writes_state_dict_and_config(tiny_dataset, tmp_path):
    rec = SASRec(SASRecConfig(**TINY)).fit(tiny_dataset)
    rec.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["method"] == "sasrec" and meta["config"]["hidden"] == 16
    assert meta["n_items"] == len(tiny_dataset.catalogue)
    assert 1 <= meta["best_epoch"] <= TINY["epochs"] and len(meta["log"]) >= 1
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_load_rejects_another_catalogue(tiny_dataset, tmp_path):
    rec = SASRec(SASRecConfig(**TINY)).fit(tiny_dataset)
    rec.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["n_items"] += 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(GenrecError, match="trained on"):
        SASRec.load(tmp_path / "m", tiny_dataset)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="dropout"):
        SASRecConfig.build({"dropout": 1.5})
    with pytest.raises(GenrecError, match="divisible"):
        SASRecModel(5, SASRecConfig(hidden=10, heads=3))
