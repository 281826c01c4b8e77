"""Logs and progress in batch jobs (issue 14 item 6): piped output (CliRunner is not a
terminal) gets plain progress lines, unwrapped tables and `--json`; the bar's users/s is
metrics.json's."""

from __future__ import annotations

import importlib
import io
import json
import re

import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.cli._progress import PlainLines, _Rate
from genrec.cli.train import TrainProgress
from genrec.data import prepare, read_source
from genrec.evaluation import evaluate
from genrec.recommenders.popularity import Popularity
from tests._util import requires_packaged

_register()
runner = CliRunner()
LINE = re.compile(r"^evaluating popularity: (\d+)/(\d+) users \((\d+)%\)")


@pytest.fixture(autouse=True)
def not_a_terminal(monkeypatch):
    # rich would take these for a terminal (a CI runner may set them)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def test_piped_evaluate_prints_progress_lines(tiny_dataset, tmp_path):
    r = runner.invoke(app, ["evaluate", str(tiny_dataset.path), "--method", "popularity", "--out", str(tmp_path / "e"),
                            "--batch-size", "6", "--resamples", "20"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if LINE.match(line)]
    # the start, each tenth crossed (6, 12, 18 of 20 users), the end; none on stdout
    assert [LINE.match(line).group(1) for line in lines] == ["0", "6", "12", "18", "20"]
    assert lines[0].endswith("started") and "users/s" in lines[-1] and "eta" not in lines[-1]
    summary = r.stdout.splitlines()
    assert len(summary) == 1 and len(summary[0]) > 80 and "HR@10" in summary[0] and summary[0].endswith("users/s")


def test_evaluate_json_is_metrics_json(tiny_dataset, tmp_path):
    r = runner.invoke(app, ["evaluate", str(tiny_dataset.path), "--method", "popularity", "--out", str(tmp_path / "e"),
                            "--resamples", "20", "--json"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)  # stdout is the document and nothing else
    assert printed == json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert printed["method"] == "popularity" and printed["n_users"] == 20 and 0 <= printed["hr@10"] <= 1
    assert "evaluating popularity: 20/20 users (100%)" in r.stderr and "wrote" in r.stderr


def test_compare_json_and_an_unwrapped_table(tiny_dataset, tmp_path):
    data = str(tiny_dataset.path)
    for method in ("popularity", "last-item"):
        r = runner.invoke(app, ["evaluate", data, "--method", method, "--out", str(tmp_path / method), "--resamples", "20"])
        assert r.exit_code == 0, r.output
    evals = [str(tmp_path / "popularity"), str(tmp_path / "last-item")]
    r = runner.invoke(app, ["compare", *evals, "--out", str(tmp_path / "cmp"), "--resamples", "20"])
    assert r.exit_code == 0, r.output
    rows = [line for line in r.stdout.splitlines() if line.startswith("|")]
    assert max(map(len, rows)) > 80  # rich broke these at 80 columns
    assert all(line.endswith("|") for line in rows)  # no row broken mid-row
    assert any(line.startswith("| last-item | 20 | 20 |") for line in rows)
    r = runner.invoke(app, ["compare", *evals, "--out", str(tmp_path / "cmp2"), "--resamples", "20", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads((tmp_path / "cmp2" / "comparison.json").read_text())


def test_a_wide_rich_table_is_not_wrapped(tmp_path):
    prepare(read_source("bundled", None), tmp_path / "ds")
    r = runner.invoke(app, ["items", str(tmp_path / "ds"), "--search", "strangelove"])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if "Strangelove" in line)
    assert len(row) > 80 and row.startswith("│ 750") and "Love the Bomb (1964) │ 1964 │" in row


class _Clock:
    t = 100.0

    def perf_counter(self) -> float:
        return self.t


class _OneSecondABatch:
    """Popularity, with a clock that moves one second per recommend() call."""

    def __init__(self, inner, clock):
        self.inner, self.clock = inner, clock

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def recommend(self, histories, k, exclude_seen=True):
        self.clock.t += 1.0
        return self.inner.recommend(histories, k=k, exclude_seen=exclude_seen)


def test_the_progress_rate_is_metrics_users_per_second(tiny_dataset, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(importlib.import_module("genrec.evaluation.evaluate"), "time", clock)
    stream = io.StringIO()
    lines = PlainLines("evaluating", "users", Console(file=stream), now=clock.perf_counter)
    rec = _OneSecondABatch(Popularity().fit(tiny_dataset), clock)
    result = evaluate(rec, tiny_dataset, batch_size=6, n_resamples=10, progress=lines.update)
    # 20 users in 4 batches of one second: 5 users/s on the last line and in the summary
    assert result.summary()["users_per_second"] == 5.0
    assert stream.getvalue().splitlines()[-1] == "evaluating: 20/20 users (100%), 5.0 users/s, elapsed 0:00:04"
    # a terminal's bar computes the same figure: users since the first update over its time
    bar = Progress(_Rate("users", 1), get_time=clock.perf_counter, console=Console(file=io.StringIO()))
    task = bar.add_task("x", total=20, base=0)
    clock.t += 1.0
    bar.update(task, completed=6)
    clock.t += 3.0
    bar.update(task, completed=20)
    assert str(_Rate("users", 1).render(bar.tasks[0])) == "5.0 users/s"


def test_plain_lines_every_30_seconds_and_every_tenth():
    clock = _Clock()
    stream = io.StringIO()
    lines = PlainLines("train", "steps", Console(file=stream, width=80), now=clock.perf_counter)
    lines.update(100, 1000)  # resumed at step 100: the rate counts from there
    for step in range(101, 1001):
        clock.t += 1.0
        lines.update(step, 1000, "loss 1.000")
    lines.finish()
    out = stream.getvalue().splitlines()
    assert out[0] == "train: 100/1,000 steps (10%), started"
    assert out[1] == "train: 130/1,000 steps (13%), 1.0 steps/s, elapsed 0:00:30, eta 0:14:30, loss 1.000"
    assert out[-1] == "train: 1,000/1,000 steps (100%), 1.0 steps/s, elapsed 0:15:00, loss 1.000"
    steps = [int(line.split()[1].split("/")[0].replace(",", "")) for line in out]
    assert all(0 < b - a <= 30 for a, b in zip(steps, steps[1:], strict=False))  # at least every 30 s, nothing twice
    assert set(range(100, 1001, 100)) <= set(steps)  # and every tenth


def test_train_progress_shows_validation_when_piped(capsys):
    bar = TrainProgress()  # stderr is pytest's capture, not a terminal
    bar({"kind": "start", "step": 0, "total": 4, "examples": 32})
    bar({"kind": "train", "step": 1, "loss": 2.5, "tokens_per_second": 1000.0, "total": 4})
    bar({"kind": "eval_start", "step": 1, "users": 8})
    bar({"kind": "eval", "step": 1, "valid_loss": 2.4, "users": 8, "seconds": 0.5})
    bar.stop()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "train: 0/4 steps (0%), started, 32 examples"
    assert err[1].startswith("train: 1/4 steps (25%), ") and err[1].endswith("loss 2.500, 1000 tok/s")
    assert err[2:] == ["step 1: validating on 8 users", "step 1 validation: {'loss': 2.4} (0.5 s)"]


@requires_packaged
def test_piped_train_shows_progress_and_validation(tiny_dataset, tmp_path):
    settings = ["max_steps=2", "batch_size=4", "effective_batch=8", "warmup_steps=0", "threads=1", "lora.r=4",
                "eval_every=1", "eval_users=4", "eval_decode=false"]
    r = runner.invoke(app, ["train", str(tiny_dataset.path), "--out", str(tmp_path / "run"), "--backbone", "tiny-random-llama",
                            *(a for kv in settings for a in ("--set", kv))])
    assert r.exit_code == 0, r.output
    err = r.stderr.splitlines()
    assert err[0].startswith("train: 0/2 steps (0%), started")
    i = err.index("step 1: validating on 4 users")  # said before the pass, its result after
    assert err[i + 1].startswith("step 1 validation: {'loss': ")
    assert any(line.startswith("train: 2/2 steps (100%), ") for line in err)


def test_piped_download_progress(monkeypatch, tmp_path):
    from genrec.data.sources import download
    from genrec.errors import GenrecError

    def fake(name, progress=None):
        for n in (1, 2 << 20, 5 << 20):  # bytes of a 5 MiB zip, shown in whole MiB
            progress(n, 5 << 20)
        raise GenrecError("stop here", "nothing to fix")

    monkeypatch.setattr(download, "download_movielens", fake)
    r = runner.invoke(app, ["prepare", "movielens", "--download", "ml-1m", "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "stop here" in r.stderr
    said = [line.split(",")[0] for line in r.stderr.splitlines() if line.startswith("downloading ml-1m: ")]
    assert said == ["downloading ml-1m: 1/5 MiB (20%)", "downloading ml-1m: 2/5 MiB (40%)", "downloading ml-1m: 5/5 MiB (100%)"]
