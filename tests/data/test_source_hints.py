"""Issue 12, item 11: `genrec items --search` ignores accents and apostrophe style; a
MovieLens folder with half a release names the missing file."""

from __future__ import annotations

import json
import shutil

import polars as pl
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.data import SourceData, prepare
from tests._util import fixture_dir

_register()
runner = CliRunner()


def test_search_folds_accents_and_quotes(tmp_path):
    titles = ["Pokémon: The Movie (1999)", "Assassin’s Creed (2016)", "Amélie (2001)", "Heat (1995)"]
    inter = pl.DataFrame({"user_id": ["a", "a", "b", "b", "a", "b"], "item_id": ["0", "1", "2", "3", "2", "0"],
                          "timestamp": [1, 2, 3, 4, 5, 6]})
    items = pl.DataFrame({"item_id": [str(i) for i in range(4)], "title": titles})
    prepare(SourceData(inter, items, name="t", format="table", domain="movies"), tmp_path / "ds")

    def search(text: str) -> list[str]:
        r = runner.invoke(app, ["items", str(tmp_path / "ds"), "--search", text, "--json"])
        assert r.exit_code == 0, r.output
        return [i["title"] for i in json.loads(r.stdout)]

    assert search("Pokemon") == ["Pokémon: The Movie (1999)"]
    assert search("assassin's") == ["Assassin’s Creed (2016)"]
    assert search("AMELIE") == ["Amélie (2001)"]
    assert search("pokémon") == ["Pokémon: The Movie (1999)"]
    assert search("zzz") == []


def test_movielens_folder_with_movies_dat_only_names_ratings_dat(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    shutil.copy(fixture_dir("movielens") / "ml-1m" / "movies.dat", folder / "movies.dat")
    r = runner.invoke(app, ["prepare", "movielens", str(folder), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 2 and "holds movies.dat but not ratings.dat" in r.output, r.output
