"""--out never destroys what is there: every command that writes a folder refuses a file,
an input, the current folder or one above it, and a non-empty folder that is not an
earlier output of the same kind; replacing one of the same kind takes --overwrite.

All through the CLI (issue 12, item 1). A refusal must exit 2 with a fix and leave every
file as it was, and leave no temporary folder behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from tests._util import REPO, refused

_register()
runner = CliRunner()
TABLE = REPO / "tests" / "fixtures" / "table"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_leftovers(parent: Path) -> None:
    hidden = [p.name for p in parent.iterdir() if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name)]
    assert not hidden, hidden


@pytest.fixture
def csv(tmp_path) -> Path:
    p = tmp_path / "events.tsv"
    shutil.copy(TABLE / "events.tsv", p)
    return p


def test_prepare_keeps_a_foreign_folder(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    refused(["prepare", "bundled", "--out", str(d)], "not empty", "keep")
    assert (d / "keep.txt").read_text() == "x"
    # --overwrite does not change that: only an earlier dataset may be replaced
    refused(["prepare", "bundled", "--out", str(d), "--overwrite"], "not empty")
    assert (d / "keep.txt").read_text() == "x"
    no_leftovers(tmp_path)


def test_prepare_keeps_a_run_and_an_evaluation(tmp_path, csv):
    run = tmp_path / "runs" / "genrec"
    run.mkdir(parents=True)
    (run / "run.json").write_text('{"status": "finished"}')
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    before = snapshot(run)
    refused(["prepare", "table", str(csv), "--out", str(run)], "training run")
    refused(["prepare", "table", str(csv), "--out", str(run), "--overwrite"], "training run")
    assert snapshot(run) == before
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "metrics.json").write_text("{}")
    refused(["prepare", "table", str(csv), "--out", str(ev), "--overwrite"], "evaluation")
    assert (ev / "metrics.json").read_text() == "{}"


def test_out_may_not_be_an_input_or_a_file(tmp_path, csv):
    before = csv.read_bytes()
    refused(["prepare", "table", str(csv), "--out", str(csv)], "is a file")
    assert csv.read_bytes() == before
    # a folder holding the input
    refused(["prepare", "table", str(csv), "--out", str(tmp_path), "--overwrite"], "input")
    assert csv.read_bytes() == before
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    refused(["prepare", "bundled", "--out", str(other)], "is a file")
    assert other.read_text() == "mine"


def test_out_may_not_be_the_current_folder_or_above(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    refused(["prepare", "bundled", "--out", "."], "current folder")
    refused(["prepare", "bundled", "--out", ".."], "current folder")
    assert list(work.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["work"]


def test_an_earlier_dataset_is_replaced_only_with_overwrite(tmp_path, csv):
    out = tmp_path / "ds"
    r = runner.invoke(app, ["prepare", "table", str(csv), "--out", str(out)])
    assert r.exit_code == 0, r.output
    before = snapshot(out)
    refused(["prepare", "table", str(csv), "--out", str(out), "--max-history", "2"], "already holds a dataset", "--overwrite")
    assert snapshot(out) == before
    r = runner.invoke(app, ["prepare", "table", str(csv), "--out", str(out), "--max-history", "2", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["max_history"] == 2
    no_leftovers(tmp_path)


def test_evaluate_and_compare_keep_their_inputs(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset.path, data)
    before = snapshot(data)
    refused(["evaluate", str(data), "--method", "popularity", "--out", str(data)], "input")
    refused(["evaluate", str(data), "--method", "popularity", "--out", str(tmp_path), "--overwrite"], "input")
    refused(["evaluate", str(data), "--method", "popularity", "--out", str(tmp_path / "e"), "--save-model", str(data)], "input")
    assert snapshot(data) == before
    args = ["evaluate", str(data), "--method", "popularity", "--resamples", "10"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b")]).exit_code == 0
    a = snapshot(tmp_path / "a")
    refused([*args, "--out", str(tmp_path / "a")], "already holds an evaluation")
    refused(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "a"), "--overwrite"], "input")
    refused(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(data), "--overwrite"], "dataset")
    assert snapshot(tmp_path / "a") == a and snapshot(data) == before
    r = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c"), "--resamples", "10"])
    assert r.exit_code == 0, r.output
    refused(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")], "already holds a comparison")
    r = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c"), "--resamples", "10", "--overwrite"])
    assert r.exit_code == 0, r.output
    no_leftovers(tmp_path)


def test_train_and_quickstart_keep_foreign_folders(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset.path, data)
    before = snapshot(data)
    refused(["train", str(data), "--out", str(data), "--overwrite", "--backbone", "tiny-random-llama"], "input")
    assert snapshot(data) == before
    d = tmp_path / "mine"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    refused(["quickstart", "--out", str(d), "--overwrite", "--backbone", "tiny-random-llama"], "not empty")
    refused(["quickstart", "--out", str(data), "--overwrite", "--backbone", "tiny-random-llama"], "dataset")
    assert (d / "keep.txt").read_text() == "x" and snapshot(data) == before
