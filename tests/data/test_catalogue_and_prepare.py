"""Catalogue hygiene, the manifest, filters, atomic output, and `genrec items` / `genrec show`."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.data import Dataset, PrepareConfig, SourceData, prepare
from genrec.data.catalogue import clean_catalogue, clean_title
from genrec.errors import GenrecError
from tests.conftest import tiny_source

_register()
runner = CliRunner()


def test_titles_are_unescaped_and_whitespace_normalised():
    assert clean_title("Tom &amp;amp; Jerry\t (1992) ") == "Tom & Jerry (1992)"
    assert clean_title("Am\u0065\u0301lie\n(2001)") == "Amélie (2001)"  # NFC, newline → space
    assert clean_title("   ") is None and clean_title(None) is None


def test_untitled_items_are_dropped_and_duplicates_disambiguated():
    items = pl.DataFrame({
        "item_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "title": ["Heat", "Heat", "Crash", "Crash", "Lamp", "Lamp", None, "&nbsp;"],
        "year": [1995, 1986, 1996, 1996, None, None, None, None],
        "brand": [None, None, "Cronenberg", "Haggis", None, None, None, None],
    }, schema_overrides={"year": pl.Int32})
    src = SourceData(pl.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [1]}), items, name="t", format="table")
    cleaned, report = clean_catalogue(src.items)
    titles = dict(zip(cleaned["item_id"].to_list(), cleaned["title"].to_list(), strict=True))
    assert titles == {
        "a": "Heat (1995)", "b": "Heat (1986)",  # the year tells them apart
        "c": "Crash - Cronenberg", "d": "Crash - Haggis",  # same year: the brand does
        "e": "Lamp [e]", "f": "Lamp [f]",  # nothing else: the id
    }
    assert report["untitled"] == 2 and sorted(report["untitled_examples"]) == ["g", "h"]
    dups = report["duplicate_titles"]
    assert (dups["groups"], dups["items_renamed"], dups["by_year"], dups["by_brand"], dups["by_id"]) == (3, 6, 2, 2, 2)


def test_manifest_records_counts_and_settings(tmp_path):
    manifest = prepare(tiny_source(), tmp_path / "ds", PrepareConfig(max_history=4))
    for key in ("name", "format", "n_users", "n_items", "n_interactions", "examples", "split", "max_history",
                "duplicate_titles", "dropped_items"):
        assert key in manifest, key
    assert manifest["max_history"] == 4 and manifest["split"] == "leave-one-out" and manifest["n_users"] == 20
    assert set(manifest["examples"]) >= {"train", "valid", "test"} and manifest["examples"]["test"] == 20
    ds = Dataset(tmp_path / "ds")
    assert max(len(h) for h in ds.examples("train")["history"].to_list()) == 4


def test_filters_and_an_empty_result_leave_the_earlier_output_intact(tmp_path):
    out = tmp_path / "ds"
    first = prepare(tiny_source(), out)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(GenrecError) as e:
        prepare(tiny_source(), out, PrepareConfig(user_core=1000))
    assert "no interactions" in str(e.value).lower() or "empty" in str(e.value).lower()
    assert (out / "manifest.json").read_bytes() == before  # the failed run changed nothing
    cored = prepare(tiny_source(), tmp_path / "cored", PrepareConfig(user_core=10))
    assert 0 < cored["n_users"] < first["n_users"]


def test_items_and_show_commands(tiny_dataset):
    r = runner.invoke(app, ["items", str(tiny_dataset.path), "--search", "star quest", "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert {i["title"] for i in found} == {"Star Quest (1980)", "Star Quest 2 (1981)", "Star Quest 3 (1982)"}
    assert all({"item_id", "title"} <= set(i) for i in found)
    r = runner.invoke(app, ["show", str(tiny_dataset.path)])
    assert r.exit_code == 0 and "n_users" in r.stdout and "Response" in r.stdout
    r = runner.invoke(app, ["items", str(tiny_dataset.path / "nope")])
    assert r.exit_code == 2
