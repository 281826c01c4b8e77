"""Bytes that are not UTF-8 are refused with the file, the line and a fix, never read as
U+FFFD (a user id with a bad byte would become a second user) and never a traceback
(issue 12, item 5). Through the CLI."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from genrec.cli import _register, app
from tests._util import REPO, fixture_dir

_register()
runner = CliRunner()


def refused(args, *needles, input=None):
    r = runner.invoke(app, args, input=input)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "fix:" in r.output and "UTF-8" in r.output, r.output
    for n in needles:
        assert n in r.output, r.output


def test_recbole_inter_and_item_with_a_latin1_byte(tmp_path):
    src = fixture_dir("recbole") / "shop"
    for bad in ("shop.inter", "shop.item"):
        folder = tmp_path / bad.replace(".", "-")
        shutil.copytree(src, folder)
        data = (folder / bad).read_bytes().replace(b"bob", "b\xf6b".encode("latin-1"), 1).replace(b"Tea Pot", b"T\xe9a Pot", 1)
        (folder / bad).write_bytes(data)
        line = data[: data.index(b"\xe9" if bad.endswith("item") else b"\xf6")].count(b"\n") + 1
        refused(["prepare", "recbole", str(folder), "--out", str(tmp_path / "ds")], f"{bad} line {line} is not UTF-8")
    assert not (tmp_path / "ds").exists()


def test_a_real_replacement_character_is_kept(tmp_path):
    folder = tmp_path / "shop"
    shutil.copytree(fixture_dir("recbole") / "shop", folder)
    item = folder / "shop.item"
    item.write_bytes(item.read_bytes().replace(b"Tea Pot", "Tea \ufffd Pot".encode(), 1))
    r = runner.invoke(app, ["prepare", "recbole", str(folder), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output


def test_movielens_movies_csv_with_a_latin1_byte(tmp_path):
    folder = tmp_path / "ml"
    shutil.copytree(REPO / "tests" / "fixtures" / "movielens" / "ml-latest-small", folder)
    movies = folder / "movies.csv"
    movies.write_bytes(movies.read_bytes().replace(b"Quiet Harbour", b"Qui\xe9t Harbour", 1))
    refused(["prepare", "movielens", str(folder), "--out", str(tmp_path / "ds")], "movies.csv line 2 is not UTF-8")


def test_recommend_history_file_in_latin1(tmp_path):
    history = tmp_path / "latin1.txt"
    history.write_bytes("Heat (1995)\nAm\xe9lie (2001)\n".encode("latin-1"))
    refused(["recommend", "--run", str(tmp_path / "no-run"), "--file", str(history)], "latin1.txt line 2 is not UTF-8")
    refused(["recommend", "--run", str(tmp_path / "no-run"), "-"], "standard input line 1", input=b"Am\xe9lie (2001)\n")

