"""RecBole's pre-split sequential benchmark files, NAME.{train,valid,test}.inter with
item_id_list + item_id, read as one data set with its split kept (issue 12, item 10),
and RecBole folders without titles (item 11). Through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.data import Dataset
from tests._util import fixture_dir

_register()
runner = CliRunner()
FIXTURES = fixture_dir("recbole")


def prepare(args, code=0):
    r = runner.invoke(app, ["prepare", "recbole", *map(str, args)])
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


def sequences(out):
    ds = Dataset(out)
    s, ids = ds.sequences, ds.catalogue.item_ids
    return {u: ([ids[i] for i in s.user_items(k)], int(s.n_train[k]), int(s.n_valid[k]))
            for k, u in enumerate(s.user_ids)}


def examples(out, part):
    ds = Dataset(out)
    ids = ds.catalogue.item_ids
    return sorted((r["user_id"], [ids[i] for i in r["history"]], ids[r["target"]])
                  for r in ds.examples(part).iter_rows(named=True))


def test_the_three_files_are_one_data_set_with_their_split(tmp_path):
    out = tmp_path / "ds"
    printed = prepare([FIXTURES / "shelf", "--out", out, "--max-history", 3])
    # each user's sequence rebuilt from the windows: u1's train rows come out of order,
    # u2 has no train row (its valid list is its training history), u3 repeats b4
    assert sequences(out) == {
        "u1": (["b1", "b2", "b3", "b4", "b5", "b6"], 4, 1),
        "u2": (["b7", "b1", "b8"], 1, 1),
        "u3": (["b4", "b2", "b4", "b6"], 2, 1),
    }
    # the examples are the files' rows: history = item_id_list, target = item_id
    assert examples(out, "test") == [
        ("u1", ["b3", "b4", "b5"], "b6"), ("u2", ["b7", "b1"], "b8"), ("u3", ["b4", "b2", "b4"], "b6"),
    ]
    assert examples(out, "valid") == [
        ("u1", ["b2", "b3", "b4"], "b5"), ("u2", ["b7"], "b1"), ("u3", ["b4", "b2"], "b4"),
    ]
    assert examples(out, "train") == [
        ("u1", ["b1"], "b2"), ("u1", ["b1", "b2"], "b3"), ("u1", ["b1", "b2", "b3"], "b4"), ("u3", ["b4"], "b2"),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == "given" and manifest["settings"]["split"] == "given"
    notes = manifest["source_notes"]
    assert notes["split_files"] == "shelf.train.inter, shelf.valid.inter, shelf.test.inter"
    assert (notes["rows_train"], notes["rows_valid"], notes["rows_test"]) == (4, 3, 3)
    assert notes["order"] == "list position" and notes["users_capped"] == 0 and "caveat" not in notes
    cat = Dataset(out).catalogue
    assert cat.titles[cat.index_of_id["b1"]] == "The Quiet Orchard"
    assert "note:" not in printed


def test_any_of_the_three_files_reads_all_three(tmp_path):
    prepare([FIXTURES / "shelf", "--out", tmp_path / "a"])
    prepare([FIXTURES / "shelf" / "shelf.test.inter", "--out", tmp_path / "b"])
    assert sequences(tmp_path / "a") == sequences(tmp_path / "b")


def test_the_given_split_can_be_replaced(tmp_path):
    prepare([FIXTURES / "shelf", "--out", tmp_path / "ds", "--split", "leave-one-out"])
    # same sequences; leave-one-out puts one event in valid and test for every user here too
    assert sequences(tmp_path / "ds")["u1"] == (["b1", "b2", "b3", "b4", "b5", "b6"], 4, 1)
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["split"] == "leave-one-out"


def test_split_given_needs_a_source_that_has_one(tmp_path):
    out = prepare([FIXTURES / "shop", "--out", tmp_path / "ds", "--split", "given"], code=2)
    assert "carries no split" in out


def test_capped_lists_without_user_ids_and_with_times(tmp_path):
    out = tmp_path / "ds"
    printed = prepare([FIXTURES / "attic", "--out", out])
    # no user_id: every test row is a user, the valid row whose items end its list joins it
    assert sequences(out) == {
        "test-1": (["a3", "a4", "a5"], 1, 1),
        "test-2": (["c2", "c3", "c4"], 1, 1),
        "test-3": (["c5", "c6"], 1, 0),
    }
    ds = Dataset(out)
    assert ds.sequences.timestamps.tolist() == [1000, 1100, 1200, 500, 600, 700, 800, 900]
    notes = ds.manifest["source_notes"]
    assert notes["order"] == "timestamp_list" and notes["longest_item_id_list"] == 2
    assert notes["users_capped"] == 2 and "histories are capped" in notes["caveat"]
    assert "note:" in printed and "capped" in printed


def test_a_list_that_does_not_continue_the_user_is_named(tmp_path):
    folder = tmp_path / "shelf"
    shutil.copytree(FIXTURES / "shelf", folder)
    test = folder / "shelf.test.inter"
    test.write_text(test.read_text().replace("u3\tb4 b2 b4\tb6", "u3\tb4 b4 b2\tb6"))
    out = prepare([folder, "--out", tmp_path / "ds"], code=2)
    assert "shelf.test.inter line 4" in out and "does not continue" in out and "fix:" in out
    assert not (tmp_path / "ds").exists()


def test_a_missing_test_file_is_named(tmp_path):
    folder = tmp_path / "shelf"
    shutil.copytree(FIXTURES / "shelf", folder)
    (folder / "shelf.test.inter").unlink()
    out = prepare([folder, "--out", tmp_path / "ds"], code=2)
    assert "no shelf.test.inter" in out


# --- item 11: titles ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["shelf", "ml-titles"])
def test_no_item_file_is_refused_unless_ids_are_titles(tmp_path, kind):
    folder = tmp_path / kind
    shutil.copytree(FIXTURES / kind, folder)
    (folder / f"{kind}.item").unlink(missing_ok=True)
    out = prepare([folder, "--out", tmp_path / "ds"], code=2)
    assert f"no {kind}.item file" in out and "--id-titles" in out
    prepare([folder, "--out", tmp_path / "ds", "--id-titles"])
    cat = Dataset(tmp_path / "ds").catalogue
    assert cat.titles == cat.item_ids


def test_an_item_file_without_a_title_field_is_refused(tmp_path):
    folder = tmp_path / "shelf"
    shutil.copytree(FIXTURES / "shelf", folder)
    (folder / "shelf.item").write_text("item_id:token\tprice:float\nb1\t3\n")
    out = prepare([folder, "--out", tmp_path / "ds"], code=2)
    assert "no title field" in out and "--id-titles" in out


def test_id_titles_is_for_recbole_only(tmp_path):
    r = runner.invoke(app, ["prepare", "bundled", "--out", str(tmp_path / "ds"), "--id-titles"])
    assert r.exit_code == 2 and "recbole format only" in r.output, r.output
