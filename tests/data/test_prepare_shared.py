"""`prepare` on the real data sets in ../shared/data (skipped where that folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from genrec.data import Dataset, prepare, read_source
from genrec.data.sources.genrec_json import split_history

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared data folder {SHARED} is absent"),
]


def needs(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def ml1m(tmp_path_factory) -> tuple[dict, Dataset]:
    out = tmp_path_factory.mktemp("ml1m") / "ds"
    manifest = prepare(read_source("recbole", needs("ml-1m")), out)
    return manifest, Dataset(out)


def test_ml1m_counts(ml1m):
    manifest, ds = ml1m
    assert (manifest["n_users"], manifest["n_items"], manifest["n_interactions"]) == (6040, 3706, 1_000_209)
    assert manifest["examples"]["test"] == 6040
    assert manifest["domain"] == "movies"
    assert manifest["duplicate_titles"]["groups"] == 0
    # the .item titles, with the year put back, are the .inter ids (before the catalogue
    # unescapes one "&#8230;")
    source_items = read_source("recbole", needs("ml-1m")).items
    assert source_items.filter(pl.col("item_id") != pl.col("title")).height == 0
    assert ds.items.filter(pl.col("item_id") != pl.col("title"))["title"].to_list() == [
        "And God Created Woman (Et Dieu…Créa la Femme) (1956)"
    ]


def test_ml100k_counts(tmp_path):
    manifest = prepare(read_source("recbole", needs("ml-100k")), tmp_path / "ds")
    assert (manifest["n_users"], manifest["n_items"], manifest["n_interactions"]) == (943, 1682, 100_000)
    assert Dataset(tmp_path / "ds").catalogue.titles[0] == "Toy Story (1995)"


def test_ml1m_no_leakage(ml1m):
    """No test target, nor anything after it, is in a training or validation example."""
    _, ds = ml1m
    s = ds.sequences
    lengths = s.lengths()
    users = pl.DataFrame({"user_id": s.user_ids, "u": np.arange(s.n_users)})
    # chronological within every user
    step = np.diff(s.timestamps)
    same_user = np.ones(len(step), dtype=bool)
    same_user[s.offsets[1:-1] - 1] = False
    assert (step[same_user] >= 0).all()
    for split in ("train", "valid", "test"):
        ex = ds.examples(split).join(users, on="user_id", how="left", maintain_order="left")
        u = ex["u"].to_numpy()
        pos = ex["position"].to_numpy().astype(np.int64)
        last = lengths[u] - 1  # the test target's position
        if split == "train":
            assert (pos < s.n_train[u]).all() and (pos < last - s.n_valid[u]).all()
        elif split == "valid":
            assert (pos == s.n_train[u]).all() and (pos < last).all()
        else:
            assert (pos == last).all()
        glob = s.offsets[u] + pos
        assert (s.items[glob] == ex["target"].to_numpy()).all()
        # every history is exactly the events right before its target, nothing later
        hist_len = ex["history"].list.len().to_numpy().astype(np.int64)
        assert (hist_len >= 1).all() and (hist_len <= ds.manifest["max_history"]).all()
        starts = np.repeat(glob - hist_len, hist_len)
        within = np.arange(hist_len.sum()) - np.repeat(np.cumsum(hist_len) - hist_len, hist_len)
        expected = s.items[starts + within]
        assert (ex["history"].explode().to_numpy() == expected).all()
    assert ds.examples("test").height == 6040


def test_toys_comma_titles_are_recovered(tmp_path):
    path = needs("amazon-toys-genrec/toys_test.json")
    src = read_source("genrec-json", path)
    records = json.loads(path.read_text(encoding="utf-8"))
    known = {r["output"] for r in records}
    comma = {t for t in known if "," in t}
    # every occurrence of a known comma title between commas of an input must come back whole
    longest = max(t.count(",") for t in known) + 1
    occurrences = histories = 0
    for r in records:
        pieces = r["input"].split(",")
        found = sum(
            ",".join(pieces[j:i]) in comma
            for j in range(len(pieces))
            for i in range(j + 2, min(len(pieces), j + longest) + 1)
        )
        occurrences += found
        histories += found > 0
        recovered = [t for t in split_history(r["input"], known, longest)[0] if t in comma]
        assert len(recovered) == found, r["input"]
    assert src.notes["comma_titles_recovered"] == occurrences == 1133
    assert src.notes["histories_with_comma_titles"] == histories == 853
    manifest = prepare(src, tmp_path / "ds")
    assert manifest["n_users"] == 5126
    assert manifest["examples"]["test"] == 5126
    ds = Dataset(tmp_path / "ds")
    assert "Zing Air Zano, Orange" in set(ds.catalogue.titles)


def test_toys_folder_reads_like_its_file():
    folder = needs("amazon-toys-genrec")
    by_folder, by_file = read_source("genrec-json", folder), read_source("genrec-json", folder / "toys_test.json")
    assert by_folder.interactions.equals(by_file.interactions)
    assert by_folder.notes == by_file.notes
