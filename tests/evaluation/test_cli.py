"""`genrec evaluate` and `genrec compare` end to end on the tiny dataset."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genrec.cli import _register, app

_register()
runner = CliRunner()


def test_evaluate_compare_and_a_saved_model(tiny_dataset, tmp_path):
    data = str(tiny_dataset.path)
    r = runner.invoke(app, ["evaluate", data, "--method", "popularity", "--out", str(tmp_path / "pop"), "--resamples", "100"])
    assert r.exit_code == 0, r.output
    assert "HR@10" in r.output and "MRR@10" in r.output and "MRR@20" in r.output
    m = json.loads((tmp_path / "pop" / "metrics.json").read_text())
    assert m["method"] == "popularity" and m["n_users"] == 20 and m["split"] == "test"

    r = runner.invoke(
        app,
        ["evaluate", data, "--method", "sasrec", "--out", str(tmp_path / "sas"), "--save-model", str(tmp_path / "model"),
         "--epochs", "2", "--threads", "1", "--set", "hidden=16", "--set", "max_len=10", "--resamples", "100", "--k-max", "10"],
    )
    assert r.exit_code == 0, r.output
    first = json.loads((tmp_path / "sas" / "metrics.json").read_text())
    assert first["settings"]["method_config"]["hidden"] == 16 and len(first["hr@k"]) == 10
    assert first["settings"]["fit"]["epochs_run"] == 2 and first["settings"]["fit"]["stopped"] == "epochs"
    assert "Training: 2 epochs" in (tmp_path / "sas" / "report.md").read_text()
    r = runner.invoke(app, ["evaluate", data, "--method", "sasrec", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "sas2"), "--resamples", "100", "--k-max", "10"])
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "sas2" / "metrics.json").read_text())
    assert again["hr@k"] == first["hr@k"] and again["ndcg@10"] == first["ndcg@10"]

    assert "MRR@10" in r.output and "MRR@20" not in r.output  # ranked to 10: one MRR

    r = runner.invoke(app, ["compare", str(tmp_path / "pop"), str(tmp_path / "sas"), "--out", str(tmp_path / "cmp"), "--resamples", "100", "--holm"])
    assert r.exit_code == 0, r.output
    assert "Paired differences" in r.output
    # popularity ranked to 20, SASRec to 10: said, and MRR compared at 10
    assert "warning: the evaluations ranked to different depths" in " ".join(r.output.split())
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert comparison["paired_users"] == 20 and "mrr@10" in comparison["paired"]["sasrec"]
    assert "p_holm" in comparison["paired"]["sasrec"]["mrr@10"]


def test_errors_exit_2_with_a_fix(tiny_dataset, tmp_path):
    data = str(tiny_dataset.path)
    r = runner.invoke(app, ["evaluate", data, "--method", "bpr", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown method" in r.output and "fix:" in r.output
    r = runner.invoke(app, ["evaluate", data, "--method", "sasrec", "--set", "hiden=3", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "hiden" in r.output
    r = runner.invoke(app, ["evaluate", data, "--split", "train", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--split" in r.output
    assert not (tmp_path / "x").exists()
