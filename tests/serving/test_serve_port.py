"""`genrec serve` refuses a port it cannot listen on before loading anything, and never
says "serving on" first (issue 12, item 6)."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app

_register()
runner = CliRunner()


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_a_port_out_of_range(port, tmp_path):
    r = runner.invoke(app, ["serve", "--run", str(tmp_path / "no-run"), "--port", port])
    assert r.exit_code == 2, r.output
    assert "not a TCP port" in r.output and "fix:" in r.output and "Traceback" not in r.output


def test_a_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = runner.invoke(app, ["serve", "--run", str(tmp_path / "no-run"), "--port", str(port)])
    assert r.exit_code == 2, r.output
    assert "already in use" in r.output and "serving" not in r.output


def test_a_non_finite_wait(tmp_path):
    r = runner.invoke(app, ["serve", "--run", str(tmp_path / "no-run"), "--max-wait-ms", "nan"])
    assert r.exit_code == 2 and "--max-wait-ms" in r.output, r.output
