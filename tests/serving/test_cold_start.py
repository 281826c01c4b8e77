"""Cold-start measurement (genrec.evaluation.cold): hand-computed metrics and `genrec cold-start`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.errors import GenrecError
from genrec.evaluation.cold import cold_items, cold_start_metrics

_register()
runner = CliRunner()


def test_cold_items_are_those_absent_from_every_training_part(tiny_dataset):
    cold = cold_items(tiny_dataset)
    in_training = np.zeros(len(tiny_dataset.catalogue), bool)
    for part in tiny_dataset.train_sequences():
        in_training[part] = True
    assert (cold == ~in_training).all()
    assert cold.sum() == 1  # the fixture holds one item that only ever appears as a test target


def test_metrics_per_group_by_hand(tiny_dataset):
    test = tiny_dataset.examples("test")
    targets = test["target"].to_numpy()
    cold = cold_items(tiny_dataset)[targets]
    n = len(targets)
    items = np.full((n, 5), -1, dtype=np.int64)
    other = (targets + 1) % len(tiny_dataset.catalogue)
    warm_rows = np.flatnonzero(~cold)
    items[cold, 0] = targets[cold]  # the cold target at rank 1
    hit_rows = warm_rows[: len(warm_rows) // 2]
    items[hit_rows, 0] = other[hit_rows]
    items[hit_rows, 1] = targets[hit_rows]  # half the warm targets at rank 2, the rest missing
    m = cold_start_metrics(items, targets, tiny_dataset, n_resamples=50)
    assert m["cold"]["n_users"] == 1 and m["warm"]["n_users"] == n - 1 and m["all"]["n_users"] == n
    assert m["cold"]["hr@1"] == 1.0 and m["cold"]["ndcg@5"] == 1.0
    share = len(hit_rows) / len(warm_rows)
    assert m["warm"]["hr@1"] == 0.0 and m["warm"]["hr@5"] == pytest.approx(share)
    assert m["warm"]["ndcg@5"] == pytest.approx(share / math.log2(3))
    assert m["all"]["hr@5"] == pytest.approx((1 + len(hit_rows)) / n)
    assert m["cold_share_of_targets"] == pytest.approx(1 / n) and m["cold_items"] == 1
    assert m["cold"]["ci"]["hr@5"] == [1.0, 1.0]


def test_a_group_without_users_reports_no_metrics(tiny_dataset):
    targets = np.flatnonzero(~cold_items(tiny_dataset))[:3]
    m = cold_start_metrics(np.tile(targets, (3, 1)), targets, tiny_dataset, n_resamples=10)  # row u hits at rank u+1
    assert m["cold"] == {"n_users": 0}
    assert m["warm"]["hr@1"] == pytest.approx(1 / 3) and "hr@5" not in m["warm"]  # lists of 3 report K <= 3


def test_mismatched_input_is_refused(tiny_dataset):
    with pytest.raises(GenrecError, match="do not match"):
        cold_start_metrics(np.zeros((2, 5)), np.zeros(3), tiny_dataset)
    with pytest.raises(GenrecError, match="catalogue indices"):
        cold_start_metrics(np.zeros((1, 5)), np.array([99]), tiny_dataset)


def test_cold_start_command_on_an_evaluation(tiny_dataset, tmp_path):
    out = tmp_path / "pop"
    r = runner.invoke(app, ["evaluate", str(tiny_dataset.path), "--method", "popularity", "--out", str(out), "--resamples", "50"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["cold-start", str(out), "--json", "--resamples", "50"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert result["method"] == "popularity" and result["split"] == "test"
    assert (result["cold"]["n_users"], result["warm"]["n_users"]) == (1, 19)
    assert result["all"]["hr@10"] == pytest.approx(metrics["hr@10"])  # the same rankings, the same headline figure
    r = runner.invoke(app, ["cold-start", str(out), "--resamples", "50"])
    assert r.exit_code == 0 and "cold (1 users)" in r.stdout
    r = runner.invoke(app, ["cold-start", str(tmp_path)])
    assert r.exit_code == 2 and "not an evaluation folder" in r.stderr


def test_evaluate_cold_start_option_stores_the_breakdown(tiny_dataset, tmp_path):
    out = tmp_path / "pop"
    r = runner.invoke(app, ["evaluate", str(tiny_dataset.path), "--method", "popularity", "--out", str(out),
                            "--resamples", "50", "--cold-start"])
    assert r.exit_code == 0, r.output
    assert "cold targets (1 users)" in r.stdout and "warm targets (19 users)" in r.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    cold = metrics["cold_start"]
    assert cold["cold_items"] == 1 and (cold["cold"]["n_users"], cold["warm"]["n_users"]) == (1, 19)
    assert cold["all"]["hr@10"] == pytest.approx(metrics["hr@10"])
    # popularity never ranks an item no training sequence holds: the cold target is always missed
    assert cold["cold"]["hr@10"] == 0.0
    assert "| cold | 1 |" in (out / "report.md").read_text()
