"""Two torchrun processes (gloo, CPU) must write the same metrics as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest

from tests._util import REPO

VOLATILE = {"users_per_second", "seconds"}


def _metrics(path) -> dict:
    m = json.loads((path / "metrics.json").read_text())
    for key in VOLATILE:
        m.pop(key)
    m["settings"].pop("world_size")
    return m


def test_two_processes_equal_one(tiny_dataset, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # 15 of the 20 users: the shards are unequal (8 and 7 users)
    args = ["-m", "genrec", "evaluate", str(tiny_dataset.path), "--method", "popularity", "--limit", "15", "--resamples", "300", "--batch-size", "4"]
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args, "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["settings"]["world_size"] == 2
    a, b = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert a["n_users"] == 15
    assert a == b
    ra, rb = pl.read_parquet(tmp_path / "one" / "rankings.parquet"), pl.read_parquet(tmp_path / "two" / "rankings.parquet")
    assert ra.equals(rb)


def test_each_rank_evaluates_on_the_device_partialstate_gives_it(monkeypatch):
    """Issue 14, item 3: sharded evaluation put every rank on cuda:0 (the methods ask for
    "cuda", the current device, which nothing set per process). Tested without a GPU:
    PartialState and torch.cuda are stand-ins for rank 1 of a node with 2 GPUs."""
    from types import SimpleNamespace

    import accelerate
    import torch
    import torch.distributed as dist

    from genrec.evaluation import distributed

    if not torch.cuda.is_available():
        assert distributed.bind_device() is None  # CPU evaluation needs no device
    given = torch.device("cuda", 1)
    bound = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", bound.append)
    monkeypatch.setattr(accelerate, "PartialState", lambda *a, **k: SimpleNamespace(device=given))
    assert distributed.bind_device() == given
    assert bound == [given]  # `.to("cuda")` (every method's default) now means cuda:1 in this process
    # init() binds the device whenever the run is distributed, before any method is built
    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed, "bind_device", lambda: calls.append("bound"))
    assert distributed.init(2) is True and calls == ["bound"]


def test_the_readmes_launcher_lines_pass_every_genrec_argument_through():
    """torchrun's own parser must leave genrec's arguments alone: without `--` it reads
    `--run` as an abbreviation of its --run-path and stops."""
    import re
    import shlex

    from torch.distributed.run import get_args_parser

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [ln.split("#")[0] for ln in readme.splitlines() if ln.startswith("torchrun ")]
    assert any("--run " in ln for ln in lines)
    for line in lines:
        words = shlex.split(line)[1:]
        args = get_args_parser().parse_args(words)
        assert args.module and args.training_script == "genrec", line
        assert args.training_script_args == words[words.index("genrec") + 1:], line
    # the old form fails as users saw it fail
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(re.sub(r"-m -- ", "-m ", next(ln for ln in lines if "--run " in ln)).split()[1:])
