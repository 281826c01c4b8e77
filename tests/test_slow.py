"""The real pipeline on the real backbone: minutes on 2 cores, so marked slow
(`python -m pytest -m slow`; CI runs it when time allows)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from tests._util import requires_packaged

_register()
runner = CliRunner()

pytestmark = [pytest.mark.slow, requires_packaged]


def test_smollm2_trains_with_the_cpu_preset_and_recommends_catalogue_items(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    r = runner.invoke(app, ["prepare", "bundled", "--out", str(data)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", str(data), "--out", str(run), "--backbone", "smollm2-135m", "--preset", "cpu",
                            "--max-steps", "8", "--set", "batch_size=8", "--set", "effective_batch=8", "--set", "eval_every=8",
                            "--set", "eval_users=16"])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if e["kind"] == "train"]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert any(e["kind"] == "eval" for e in log)
    r = runner.invoke(app, ["evaluate", str(data), "--run", str(run), "--limit", "16", "--out", str(tmp_path / "eval"),
                            "--resamples", "50"])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_users"] == 16 and metrics["valid_rate"] == 1.0
    r = runner.invoke(app, ["recommend", "--run", str(run), "Toy Story (1995)", "Heat (1995)", "-k", "5", "--json"])
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)["items"]
    assert len(items) == 5 and "Heat (1995)" not in [i["title"] for i in items]
