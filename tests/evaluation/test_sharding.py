"""Two torchrun processes (gloo, CPU) must write the same metrics as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl

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
