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
         "--set", "epochs=2", "--set", "threads=1", "--set", "hidden=16", "--set", "max_len=10", "--resamples", "100", "--k-max", "10"],
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


def test_evaluate_set_reaches_the_method_config(tiny_dataset, tmp_path, monkeypatch):
    from genrec.errors import GenrecError
    from genrec.recommenders.sasrec import SASRec, SASRecConfig

    seen = {}

    def fit(self, dataset, progress=None):  # stands in for training: the config it was given is the point
        seen["config"] = self.config
        raise GenrecError("stopped by the test")

    monkeypatch.setattr(SASRec, "fit", fit)
    r = runner.invoke(app, ["evaluate", str(tiny_dataset.path), "--method", "sasrec", "--set", "epochs=3",
                            "--set", "max-minutes=0.5", "--set", "device=cpu", "--seed", "7", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "stopped by the test" in r.output, r.output
    cfg = seen["config"]
    assert (cfg.epochs, cfg.max_minutes, cfg.device, cfg.seed) == (3, 0.5, "cpu", 7)  # --seed is the method's default seed
    assert cfg.hidden == SASRecConfig().hidden  # the rest as the config has them


def test_evaluate_settings_are_checked_before_anything_is_loaded(tiny_dataset, tmp_path):
    data = str(tiny_dataset.path)

    def refused(*args):
        r = runner.invoke(app, ["evaluate", data, *args, "--out", str(tmp_path / "x")])
        assert r.exit_code == 2, r.output
        assert not (tmp_path / "x").exists()
        return r.stderr

    # an unknown key: the closest settings of that method's config
    err = refused("--method", "sasrec", "--set", "epoch=3")
    assert "epoch: unknown key, did you mean epochs?" in err and "genrec evaluate --fields" in err
    err = refused("--run", str(tmp_path / "no-run"), "--set", "batchsize=4")  # genrec: its decoding settings
    assert "batchsize: unknown key, did you mean batch_size?" in err
    assert "has no settings" in refused("--method", "popularity", "--set", "hidden=3")
    # a bad value, named with what is allowed
    assert "epochs: Input should be greater than or equal to 1" in refused("--method", "sasrec", "--set", "epochs=0")
    # a setting that has a flag of its own
    err = refused("--run", str(tmp_path / "no-run"), "--set", "beams=20", "--set", "renormalise=true")
    assert "fix: write --beams 20 --renormalise" in err
    # the SASRec flags evaluate once had are --set now: the error says how
    for args, fix in [(["--epochs", "40"], "--set epochs=40"), (["--threads=2"], "--set threads=2"),
                      (["--max-minutes", "5"], "--set max_minutes=5")]:
        err = refused("--method", "sasrec", *args)
        assert "is a setting" in err and f"fix: write {fix}" in err, args
    # settings are never positional
    assert "fix: write --set hidden=16" in refused("--method", "sasrec", "hidden=16")


def test_evaluate_fields_lists_every_methods_settings_from_its_config():
    from genrec.recommenders.last_item import LastItemConfig
    from genrec.recommenders.sasrec import SASRecConfig

    r = runner.invoke(app, ["evaluate", "--fields"])  # no data folder needed
    assert r.exit_code == 0, r.output
    blocks = {b.split(":", 1)[0].split(" ", 1)[0]: b for b in r.stdout.split("\n") if b and not b.startswith(" ")}
    assert {"popularity", "last-item", "sasrec", "genrec"} <= set(blocks)
    assert "popularity: no settings" in r.stdout
    for config in (SASRecConfig, LastItemConfig):
        for line in config.field_help().splitlines():
            assert f"  {line}" in r.stdout
    genrec = r.stdout.split("\ngenrec", 1)[1]
    for name in ("batch_size", "length_normalise", "max_expansions", "expand", "assist_minutes", "threads", "device"):
        assert f"\n  {name}=" in genrec, name
    for flagged in ("beams", "mode", "grounding", "assist_weight"):  # set with their flags (--beams ...)
        assert f"\n  {flagged}=" not in genrec


def test_evaluate_rerank_decoding(tiny_run, tiny_dataset, tmp_path):
    from genrec.evaluation import evaluate
    from genrec.recommenders.genrec import GenRec

    data = str(tiny_dataset.path)
    args = ["evaluate", data, "--run", str(tiny_run), "--decode", "rerank", "--assist", "popularity", "--assist-weight", "0.5",
            "--set", "rerank_depth=12", "--resamples", "100"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "rr")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "rr" / "metrics.json").read_text())
    config = m["settings"]["method_config"]
    assert (config["decode"], config["assist"], config["assist_weight"], config["rerank_depth"]) == ("rerank", "popularity", 0.5, 12)
    assert len(m["hr@k"]) == 12  # ranked as deep as the candidates go
    rec = GenRec.load(tiny_run, tiny_dataset, mode="rerank", assist="popularity", assist_weight=0.5, rerank_depth=12)
    same = evaluate(rec, tiny_dataset, n_resamples=100).metrics
    assert (m["hr@10"], m["ndcg@10"], m["mrr@12"]) == (same["hr@10"], same["ndcg@10"], same["mrr@12"])
    r = runner.invoke(app, [*args, "--k-max", "13", "--out", str(tmp_path / "deep")])
    assert r.exit_code == 2 and "rerank depth 12" in r.output and "rerank_depth=13" in r.output
    assert not (tmp_path / "deep").exists()


def test_decoding_settings_and_k_max_are_checked_before_a_run_is_read(tiny_dataset, tmp_path):
    """A bad --k-max or decoding combination is refused before the model loads (the run
    folder here is not a run at all, so loading would fail with another message)."""
    data, missing = str(tiny_dataset.path), str(tmp_path / "no-run")
    cases = [
        (["--beams", "5", "--k-max", "8"], ["--k-max 8 is larger than the beam width 5", "--beams 8"]),
        (["--decode", "rerank", "--assist", "popularity", "--set", "rerank_depth=6", "--k-max", "7"],
         ["--k-max 7 is larger than the rerank depth 6", "rerank_depth=7"]),
        (["--decode", "rerank"], ["no assistant is named"]),
    ]
    for flags, said in cases:
        r = runner.invoke(app, ["evaluate", data, "--run", missing, *flags, "--out", str(tmp_path / "out")])
        assert r.exit_code == 2, r.output
        assert all(s in " ".join(r.output.split()) for s in said), r.output
        assert "no finished adapter" not in r.output
    assert not (tmp_path / "out").exists()
    # where the whole catalogue is ranked there is no limit: the run is read (and is missing)
    r = runner.invoke(app, ["evaluate", data, "--run", missing, "--decode", "exact", "--k-max", "50", "--out", str(tmp_path / "out")])
    assert r.exit_code != 0 and "larger than" not in r.output
