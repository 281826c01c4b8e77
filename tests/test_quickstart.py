"""`genrec quickstart` end to end at toy scale (tiny random LLaMA, a few users)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genrec.cli import _register, app

_register()
runner = CliRunner()


def test_quickstart_prints_the_comparison_and_writes_every_step(tmp_path):
    out = tmp_path / "qs"
    r = runner.invoke(app, ["quickstart", "--out", str(out), "--users", "20", "--train-steps", "2",
                            "--sasrec-minutes", "0.05", "--backbone", "tiny-random-llama"])
    assert r.exit_code == 0, r.output
    for method in ("popularity", "sasrec", "genrec"):
        assert f"│ {method}" in r.stdout
        metrics = json.loads((out / f"eval-{method}" / "metrics.json").read_text())
        assert metrics["n_users"] == 20 and metrics["split"] == "test"
    genrec = json.loads((out / "eval-genrec" / "metrics.json").read_text())
    assert genrec["valid_rate"] == 1.0 and genrec["settings"]["method_config"]["decode"] == "beam"
    # the same seeded users for every method
    users = {m: json.loads((out / f"eval-{m}" / "metrics.json").read_text())["settings"]["subset"] for m in ("popularity", "genrec")}
    assert users["popularity"] == users["genrec"]
    assert (out / "run" / "adapter").is_dir() and (out / "comparison" / "plot.png").is_file()
    said = " ".join(r.stdout.split())  # the console wraps long lines
    assert "2 steps" in said and "evaluated on 20 of 671 test users" in said
    assert "full fine-tuning, item tokens" in said  # what the cpu preset trains


def test_quickstart_refuses_more_users_than_the_test_split(tmp_path):
    r = runner.invoke(app, ["quickstart", "--out", str(tmp_path / "qs"), "--users", "5000", "--backbone", "tiny-random-llama"])
    assert r.exit_code == 2
    assert "5000 is more than the 671 test users" in r.output
