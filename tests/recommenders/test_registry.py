from __future__ import annotations

import pytest

from genrec.errors import ConfigError, GenrecError
from genrec.recommenders import METHODS, IndexRecommender, build_method
from genrec.recommenders.last_item import LastItemBM25
from genrec.recommenders.popularity import Popularity


def test_methods_map_names_to_recommender_classes():
    assert {"popularity", "sasrec", "last-item"} <= set(METHODS)
    for name in METHODS:
        cls = METHODS[name]
        assert issubclass(cls, IndexRecommender) and cls.name == name


def test_build_method_fits_with_options(tiny_dataset):
    rec = build_method("last-item", tiny_dataset, {"n_last": 3})
    assert isinstance(rec, LastItemBM25) and rec.config.n_last == 3
    assert rec.recommend([[0]], k=2).items.shape == (1, 2)


def test_build_method_errors_are_actionable(tiny_dataset, tmp_path):
    with pytest.raises(GenrecError, match="unknown method 'bpr'"):
        build_method("bpr", tiny_dataset)
    with pytest.raises(ConfigError, match="n_lats: unknown key"):
        build_method("last-item", tiny_dataset, {"n_lats": 3})
    with pytest.raises(GenrecError, match="takes no options"):
        build_method("popularity", tiny_dataset, {"epochs": 3})
    with pytest.raises(GenrecError, match="does not exist"):
        build_method("popularity", tiny_dataset, {"model": tmp_path / "missing"})


def test_build_method_loads_a_saved_model(tiny_dataset, tmp_path):
    Popularity().fit(tiny_dataset).save(tmp_path / "pop")
    rec = build_method("popularity", tiny_dataset, {"model": tmp_path / "pop"})
    assert (rec.counts == tiny_dataset.item_popularity()).all()
    with pytest.raises(GenrecError, match="cannot change a saved"):
        build_method("popularity", tiny_dataset, {"model": tmp_path / "pop", "n_last": 2})


class FromOptions(Popularity):
    """A method that builds itself from options, as the fine-tuned LLM does from `run`."""

    name = "from-options"
    built_with: dict = {}

    @classmethod
    def from_options(cls, dataset, options, progress=None):
        rec = cls().fit(dataset)
        rec.built_with = dict(options)
        return rec


def test_a_method_can_build_itself_from_options(tiny_dataset, monkeypatch):
    monkeypatch.setitem(METHODS._entries, "from-options", "tests.recommenders.test_registry:FromOptions")
    rec = build_method("from-options", tiny_dataset, {"run": "runs/x", "unused": None})
    assert isinstance(rec, FromOptions) and rec.built_with == {"run": "runs/x"}
