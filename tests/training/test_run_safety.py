"""A run is never lost to a failed replacement, a non-finite number, or a torn log line
(issue 12, items 2, 3 and 6). Training runs on the tiny random LLaMA."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.errors import GenrecError
from genrec.training.config import TrainConfig
from genrec.training.loop import train
from genrec.training.rundir import RunDir
from tests._util import requires_packaged

pytestmark = requires_packaged
_register()
runner = CliRunner()

BASE = {"backbone": "tiny-random-llama", "max_users": 8, "windows": "recent", "windows_per_user": 2,
        "batch_size": 4, "effective_batch": 8, "warmup_steps": 0, "save_every": 2, "threads": 1,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
#: the same settings on the command line
SETTINGS = ["max_users=8", "windows=recent", "windows_per_user=2", "batch_size=4", "effective_batch=8", "warmup_steps=0",
            "save_every=2", "threads=1", "lora.r=4"]
ARGS = ["--backbone", "tiny-random-llama", *(a for kv in SETTINGS for a in ("--set", kv))]


def cfg(**kw) -> TrainConfig:
    return TrainConfig.build({**BASE, **kw})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def strict_json(line: str):
    def no(c):
        raise AssertionError(f"non-standard JSON constant {c} in {line!r}")

    return json.loads(line, parse_constant=no)


def test_a_failed_overwrite_keeps_the_old_run(bundled_dir, tmp_path):
    run = tmp_path / "run"
    train(bundled_dir, run, cfg(max_steps=1))
    before = snapshot(run)
    # one user gives 2 examples: fewer than one step of effective_batch=8
    r = runner.invoke(app, ["train", str(bundled_dir), "--out", str(run), "--overwrite", *ARGS, "--set", "max_users=1", "--set", "max_steps=2"])
    assert r.exit_code == 2, r.output
    assert "cannot fill one step" in r.output and "Traceback" not in r.output
    assert snapshot(run) == before
    # a replacement that succeeds takes the old run's place, and nothing is left beside it
    r = runner.invoke(app, ["train", str(bundled_dir), "--out", str(run), "--overwrite", *ARGS, "--set", "max_steps=2"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "run.json").read_text())["steps_done"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_interrupted_overwrite_keeps_the_old_run(bundled_dir, tmp_path):
    run = tmp_path / "run"
    train(bundled_dir, run, cfg(max_steps=1))
    before = snapshot(run)

    def interrupt(step):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(bundled_dir, run, cfg(max_steps=3), overwrite=True, on_step=interrupt)
    assert snapshot(run) == before


def test_non_finite_settings_are_refused(bundled_dir, tmp_path):
    for value in ("inf", ".inf", "nan", "1e999"):
        r = runner.invoke(app, ["train", str(bundled_dir), "--out", str(tmp_path / "run"), *ARGS, "--set", f"lr={value}"])
        assert r.exit_code == 2, r.output
        assert "lr: Input should be a finite number" in r.output
    r = runner.invoke(app, ["prepare", "bundled", "--out", str(tmp_path / "ds"), "--min-rating", "nan"])
    assert r.exit_code == 2 and "finite" in r.output, r.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "ds").exists()


def test_a_non_finite_loss_stops_training_and_keeps_the_checkpoints(bundled_dir, tmp_path, monkeypatch):
    from genrec.training import losses

    calls = {"n": 0}
    forward = losses.SummedLoss.forward

    def poisoned(self, *a, **k):
        calls["n"] += 1
        out = forward(self, *a, **k)
        return out * float("nan") if calls["n"] > 6 else out  # 2 micro-batches a step: step 4 breaks

    monkeypatch.setattr(losses.SummedLoss, "forward", poisoned)
    run = tmp_path / "run"
    with pytest.raises(GenrecError, match="loss became nan at step 4"):
        train(bundled_dir, run, cfg(max_steps=6))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["steps_done"] == 3
    assert (run / "checkpoints" / "step-2" / "state.json").is_file()
    assert not (run / "checkpoints" / "step-4").exists() and not (run / "adapter").exists()
    lines = (run / "train_log.jsonl").read_text().splitlines()
    assert [strict_json(line)["step"] for line in lines] == [1, 2, 3]


def test_the_log_is_standard_json_and_survives_a_torn_line(tmp_path):
    run = RunDir(tmp_path)
    run.log({"kind": "train", "step": 1, "loss": float("nan"), "lr": float("inf")})
    line = (tmp_path / "train_log.jsonl").read_text().splitlines()[0]
    assert strict_json(line) == {"kind": "train", "step": 1, "loss": None, "lr": None}
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 2, "lo')  # killed mid-write
    run.log({"kind": "train", "step": 3, "loss": 1.0})
    assert [e["step"] for e in run.read_log()] == [1, 3]
    run.truncate_log(2)
    assert [strict_json(x)["step"] for x in (tmp_path / "train_log.jsonl").read_text().splitlines()] == [1]


def test_resume_needs_a_checkpoint_and_tolerates_a_torn_log(bundled_dir, tmp_path):
    run = tmp_path / "run"
    train(bundled_dir, run, cfg(max_steps=2))
    with open(run / "train_log.jsonl", "a") as f:
        f.write('{"kind": "tra')
    # resuming a finished run at its last checkpoint: the torn line must not crash it
    r = runner.invoke(app, ["train", str(bundled_dir), "--out", str(run), "--resume"])
    assert r.exit_code == 0, r.output
    shutil.rmtree(run / "checkpoints")
    r = runner.invoke(app, ["train", str(bundled_dir), "--out", str(run), "--resume"])
    assert r.exit_code == 2 and "no complete checkpoint" in r.output, r.output
    # steps were never repeated in the log
    steps = [e["step"] for e in RunDir(run).read_log()]
    assert steps == sorted(set(steps))
