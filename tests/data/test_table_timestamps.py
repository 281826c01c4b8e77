"""`genrec prepare table` refuses timestamps it would otherwise guess at or crash on:
day/month order, words, non-finite or absurd numbers, and a mix of seconds and dates
(issue 12, item 4). Through the CLI: exit 2, a message naming the value and row, no
traceback, no output."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app

_register()
runner = CliRunner()


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (["2024-01-01", "yesterday"], "'yesterday' (row 2)"),
        (["yesterday", "2024-01-01"], "'yesterday' (row 1)"),
        (["12", "abc"], "'abc' (row 2)"),
        (["05/01/2024", "06/01/2024"], "'05/01/2024' (row 1)"),
        (["NaN", "12"], "(row 1) is not a finite number"),
        (["1e300", "12"], "(row 1) is not a finite number"),
        (["978300760", "2024-05-01"], "mixes Unix seconds ('978300760', row 1) and ISO 8601 dates ('2024-05-01', row 2)"),
    ],
)
def test_bad_timestamps_are_refused(tmp_path, values, needle):
    rows = "".join(f"u{i % 2},i{i},{v}\n" for i, v in enumerate(values * 3))
    (tmp_path / "x.csv").write_text("user,item,timestamp\n" + rows)
    r = runner.invoke(app, ["prepare", "table", str(tmp_path / "x.csv"), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 2, r.output
    assert needle in r.output and "fix:" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "1e300"])
def test_non_finite_float_seconds_are_refused(tmp_path, value):
    (tmp_path / "x.csv").write_text(f"user,item,timestamp\na,1,1.5\na,2,{value}\nb,1,3.0\nb,2,4.0\n")
    r = runner.invoke(app, ["prepare", "table", str(tmp_path / "x.csv"), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 2, r.output
    assert "(row 2)" in r.output and "finite" in r.output


def test_iso_dates_in_several_forms_still_work(tmp_path):
    (tmp_path / "x.csv").write_text("user,item,timestamp\na,1,2024-05-01\na,2,2024-05-02T10:00:00Z\n"
                                    "b,1,2024-05-01 09:00\nb,2,2024-05-03T10:00:00+02:00\n")
    r = runner.invoke(app, ["prepare", "table", str(tmp_path / "x.csv"), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output
