"""Portable runs (issue 14 item 1): a copied run recommends without the dataset folder or
the backbone cache it was trained with; save_pretrained, from_pretrained and `genrec push`.

The run is the tiny random LLaMA trained for one step (as tests/conftest.py's
`tiny_run`), but on a private copy of the tiny dataset, so a test may take the dataset
away. "Another machine" is simulated by a copy of the run whose recorded paths point
nowhere. The Hub is offline: the upload is replaced by a writer of the Hugging Face
cache layout (``models--OWNER--NAME/refs/main`` and ``snapshots/COMMIT/``), which the real
``snapshot_download`` then reads in offline mode.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from genrec.errors import GenrecError
from tests._util import requires_packaged

pytestmark = [requires_packaged, pytest.mark.usefixtures("one_thread")]

HISTORIES = [["Heat (1995)", "Fargo (1996)"], ["i00", "i01", "i02"], ["Up (2009)"]]
K = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A private dataset, a run trained on it, and the run's recommendations there."""
    from genrec import Recommender
    from genrec.data import prepare
    from genrec.training.config import TrainConfig
    from genrec.training.loop import train
    from tests.conftest import tiny_source

    root = tmp_path_factory.mktemp("portable")
    data, run = root / "data", root / "run"
    prepare(tiny_source(), data)
    cfg = TrainConfig.build({"backbone": "tiny-random-llama", "max_steps": 1, "batch_size": 4, "effective_batch": 4,
                             "max_users": 4, "warmup_steps": 0})
    train(data, run, cfg)
    rec = Recommender.load(run, persist=False)
    return {"data": data, "run": run, "before": _lists(rec), "before_exact": _lists(rec, decode="exact")}


def _lists(rec, **kw) -> list[list[tuple[str, float]]]:
    return [[(i.item_id, round(i.score, 5)) for i in r] for r in rec.recommend_many(HISTORIES, k=K, **kw)]


@contextlib.contextmanager
def dataset_gone(data: Path):
    """The dataset folder the run was trained on is not there (renamed, then put back)."""
    away = data.with_name(data.name + ".gone")
    data.rename(away)
    try:
        yield
    finally:
        away.rename(data)


def elsewhere(run: Path, dest: Path) -> Path:
    """A copy of `run` as on another machine: the backbone cache path it recorded is not there."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints"))
    info = json.loads((dest / "run.json").read_text())
    info["backbone"]["path"] = "/nonexistent/other-machine/genrec-cache/backbones/tiny-random-llama-s0"
    (dest / "run.json").write_text(json.dumps(info))
    return dest


def test_a_run_keeps_its_catalogue_and_names_its_backbone(trained):
    from genrec.data import Dataset

    run, data = trained["run"], trained["data"]
    info = json.loads((run / "run.json").read_text())
    assert info["backbone"]["name"] == "tiny-random-llama" and info["backbone"]["kind"] == "alias"
    assert len(info["backbone"]["sha256"]) == 64
    manifest = info["dataset"]["manifest"]
    assert (manifest["name"], manifest["domain"], manifest["max_history"]) == ("tiny", "movies", 10)
    copy = pl.read_parquet(run / "catalogue.parquet")
    ds = Dataset(data)
    assert copy["item_id"].to_list() == list(ds.catalogue.item_ids)
    assert copy["title"].to_list() == list(ds.catalogue.titles)
    assert copy["train_count"].to_list() == ds.item_popularity().tolist()


def test_a_copied_run_recommends_the_same_without_its_dataset_or_backbone_cache(trained, tmp_path):
    from genrec import Recommender

    copy = elsewhere(trained["run"], tmp_path / "moved" / "run")
    with dataset_gone(trained["data"]):
        rec = Recommender.from_pretrained(copy, persist=False)
        assert _lists(rec) == trained["before"]
        assert _lists(rec, decode="exact") == trained["before_exact"]
        assert rec.info()["dataset"]["path"] == str(copy / "catalogue.parquet")
        # the popularity assistant is fitted on the training counts the copy keeps
        fused = Recommender.load(copy, persist=False, assist="popularity", assist_weight=0.5)
        # a SASRec assistant the run has not stored must be trained on interactions: asked for by name
        with pytest.raises(GenrecError, match="interactions"):
            Recommender.load(copy, persist=False, assist="sasrec", assist_weight=0.5)
    assert _lists(fused) == _lists(Recommender.load(trained["run"], persist=False, assist="popularity", assist_weight=0.5))


def test_a_backbone_found_by_name_with_other_weights_is_reported(trained, tmp_path):
    from genrec import Recommender

    copy = elsewhere(trained["run"], tmp_path / "run")
    info = json.loads((copy / "run.json").read_text())
    info["backbone"]["sha256"] = "0" * 64
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="not the one the run was trained on"):
        Recommender.load(copy, persist=False)


def test_a_local_backbone_folder_that_is_gone_is_a_clear_error(trained, tmp_path):
    from genrec import Recommender

    copy = elsewhere(trained["run"], tmp_path / "run")
    info = json.loads((copy / "run.json").read_text())
    info["backbone"] = {"name": "/models/my-llama", "kind": "local", "path": "/models/my-llama", "sha256": "ab" * 32}
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(GenrecError, match="local folder /models/my-llama, which is not on this machine"):
        Recommender.load(copy, persist=False)


def _as_old_run(run: Path, dest: Path) -> Path:
    """`run` as genrec wrote it before runs were portable: no catalogue copy, bare records."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "catalogue.parquet"))
    info = json.loads((dest / "run.json").read_text())
    info["dataset"] = {k: info["dataset"][k] for k in ("path", "name", "n_items", "split")}
    info["backbone"] = {k: info["backbone"][k] for k in ("name", "path")}
    (dest / "run.json").write_text(json.dumps(info))
    return dest


def test_an_older_run_loads_as_before_and_save_pretrained_makes_it_portable(trained, tmp_path):
    from genrec import Recommender

    old = _as_old_run(trained["run"], tmp_path / "old")
    rec = Recommender.load(old, persist=False)  # from the dataset folder, as always
    assert _lists(rec) == trained["before"]
    saved = rec.save_pretrained(tmp_path / "saved")
    info = json.loads((saved / "run.json").read_text())
    assert len(info["backbone"]["sha256"]) == 64 and info["dataset"]["manifest"]["max_history"] == 10
    with dataset_gone(trained["data"]):
        with pytest.raises(GenrecError, match="no copy of its catalogue") as e:
            Recommender.load(old, persist=False)
        assert "dataset=DATA_DIR" in e.value.fix
        assert _lists(Recommender.from_pretrained(saved, persist=False)) == trained["before"]


def test_save_pretrained_carries_the_live_catalogue_and_refuses_unsafe_places(trained, tmp_path):
    from genrec import Recommender

    rec = Recommender.load(trained["run"], persist=False)  # changes in memory only
    rec.add_items([{"item_id": "new-1", "title": "Heat Returns (2026)"}])
    rec.remove_items(["i20"])
    expect = [[(i.item_id, round(i.score, 5)) for i in r] for r in rec.recommend_many([["Fargo (1996)"]], k=K)]
    saved = rec.save_pretrained(tmp_path / "saved")
    assert not (saved / "checkpoints").exists() and (saved / "adapter").is_dir()
    assert not (trained["run"] / "catalogue_changes.json").exists()  # the run itself is untouched
    with dataset_gone(trained["data"]):
        back = Recommender.from_pretrained(saved)
        assert back.item("new-1").title == "Heat Returns (2026)"
        with pytest.raises(GenrecError):
            back.item("i20")
        got = [[(i.item_id, round(i.score, 5)) for i in r] for r in back.recommend_many([["Fargo (1996)"]], k=K)]
        assert got == expect
    with pytest.raises(GenrecError, match="is the run itself"):
        rec.save_pretrained(trained["run"])
    with pytest.raises(GenrecError, match="inside the run"):
        rec.save_pretrained(trained["run"] / "saved")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(GenrecError, match="not empty"):
        rec.save_pretrained(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


@pytest.fixture
def fake_hub(monkeypatch, tmp_path) -> SimpleNamespace:
    """HfApi's create_repo/upload_folder write the Hugging Face cache layout under the
    returned folder (what a download would leave); the Hub itself is offline."""
    import hashlib

    import huggingface_hub
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    pushed: dict = {}

    def create_repo(self, repo_id, *, private=None, exist_ok=False, **kw):
        pushed["private"] = private
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, delete_patterns=None, **kw):
        commit = hashlib.sha1(repr(sorted(p.name for p in Path(folder_path).rglob("*"))).encode()).hexdigest()
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        shutil.copytree(folder_path, repo / "snapshots" / commit)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        pushed.update(repo_id=repo_id, message=commit_message, delete_patterns=delete_patterns)
        return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{commit}",
                                          commit_message=commit_message or "", commit_description="", oid=commit)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache.mkdir()
    return SimpleNamespace(cache=cache, pushed=pushed)


def test_push_writes_a_model_card_and_from_pretrained_loads_the_hub_snapshot(trained, fake_hub, tmp_path):
    from genrec import Recommender
    from genrec.cli import _register, app

    _register()
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({
        "method": "genrec", "dataset": "tiny", "split": "test", "n_users": 20, "n_examples": 20,
        "hr@5": 0.25, "ndcg@5": 0.125, "mrr@10": 0.1, "validity": 1.0, "ci": {"hr@5": [0.05, 0.45]}}))
    r = CliRunner().invoke(app, ["push", str(trained["run"]), "me/genrec-tiny", "--eval", str(evaluation), "--private"])
    assert r.exit_code == 0, r.output
    assert "commit" in r.stdout and fake_hub.pushed["private"] is True and fake_hub.pushed["delete_patterns"] == "*"
    snapshot = next((fake_hub.cache / "models--me--genrec-tiny" / "snapshots").iterdir())
    card = (snapshot / "README.md").read_text()
    assert "license: apache-2.0" in card and "# GenRec on tiny (tiny-random-llama)" in card
    assert "| items | 30 |" in card and "| users | 20 |" in card
    assert "| hr@5 | 0.2500 | [0.0500, 0.4500] |" in card and "max_steps: 1" in card
    assert 'Recommender.from_pretrained("me/genrec-tiny")' in card and "rec.recommend(['" in card
    assert json.loads((snapshot / "eval" / "metrics.json").read_text())["hr@5"] == 0.25
    assert not (snapshot / "checkpoints").exists()
    info = json.loads((snapshot / "run.json").read_text())
    assert info["dataset"]["path"] is None and info["backbone"]["path"] is None  # no paths of this machine
    assert json.loads((snapshot / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-random-llama"
    with dataset_gone(trained["data"]):
        rec = Recommender.from_pretrained("me/genrec-tiny", cache_dir=fake_hub.cache)
        assert _lists(rec) == trained["before"]
        rec.add_items([{"item_id": "new-1", "title": "Heat Returns (2026)"}])  # in memory: the cache is not written
    assert not (snapshot / "catalogue_changes.json").exists()
    with pytest.raises(GenrecError, match="cannot download 'me/not-there'"):
        Recommender.from_pretrained("me/not-there", cache_dir=fake_hub.cache)


def test_push_out_writes_the_folder_without_pushing_and_checks_its_inputs(trained, tmp_path):
    from genrec.cli import _register, app

    _register()
    runner = CliRunner()
    r = runner.invoke(app, ["push", str(trained["run"]), "me/x", "--out", str(tmp_path / "folder")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "folder" / "README.md").is_file() and (tmp_path / "folder" / "catalogue.parquet").is_file()
    r = runner.invoke(app, ["push", str(trained["run"]), "not-a-hub-id"])
    assert r.exit_code == 2 and "not a Hugging Face Hub id" in r.output
    r = runner.invoke(app, ["push", str(trained["run"]), "me/x", "--eval", str(tmp_path)])
    assert r.exit_code == 2 and "no metrics.json" in r.output
    assert np.all([not p.name.startswith(".") for p in tmp_path.iterdir()])  # no staging folder left behind


def test_weights_hash_reads_hub_cache_blob_names_and_equals_hashing_the_content(tmp_path):
    import hashlib

    from genrec.model.backbone import backbone_kind, weights_sha256

    content = b"not really safetensors"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.safetensors").write_bytes(content)
    # the Hugging Face cache: snapshots/COMMIT/model.safetensors -> ../../blobs/SHA256 (here, a blob with other bytes:
    # a match proves the name was read, not the content)
    blob = tmp_path / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir()
    blob.write_bytes(b"other bytes")
    snap = tmp_path / "snapshots" / "c0ffee"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(blob)
    assert weights_sha256(plain) == weights_sha256(snap) is not None
    assert weights_sha256(tmp_path / "blobs") is None  # no weight files
    assert [backbone_kind(n) for n in ("smollm2-135m", "HuggingFaceTB/SmolLM2-135M", str(plain), "/gone/model")] == \
        ["alias", "hub", "local", "local"]
