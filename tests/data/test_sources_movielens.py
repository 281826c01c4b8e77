"""MovieLens as GroupLens ships it: ml-100k, ml-1m/ml-10m (.dat) and ml-latest/ml-25m (.csv).

The fixtures in tests/fixtures/movielens are hand-written fake rows in GroupLens's formats
(ml-100k and ml-1m files in Latin-1), committed as ``tab-format``/``dat-format`` with a
``.fixture`` suffix so that nothing in the repository looks like the real releases, and
materialised under GroupLens's names by ``tests._util.fixture_dir``; zips are built here
from those folders.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from genrec.data import Dataset, prepare, read_source
from genrec.data.sources.movielens import read_movielens
from genrec.errors import DataFormatError
from tests._util import fixture_dir, rows

FIXTURES = fixture_dir("movielens")


def titles(src) -> dict[str, str]:
    return dict(rows(src.items, "item_id", "title"))


def zip_folder(folder: Path, dest: Path, inner: str) -> Path:
    """A zip like GroupLens's: the files inside one folder named `inner`."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"{inner}/{f.name}")
    return dest


def test_ml100k_folder():
    src = read_movielens(FIXTURES / "ml-100k")
    assert (src.name, src.format, src.domain) == ("ml-100k", "movielens", "movies")
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp", "order")[:4] == [
        ("1", "1", 5.0, 881250949, 0),
        ("1", "3", 4.0, 881250950, 1),
        ("2", "2", 3.0, 891717742, 2),
        ("1", "6", 2.0, 881250950, 3),
    ]
    assert src.interactions.height == 10
    assert rows(src.items, "item_id", "title", "year") == [
        ("1", "Paper Lanterns (1995)", 1995),
        ("2", "Garden of Rain, The (1997)", 1997),
        ("3", "Café Noir (1994)", 1994),  # Latin-1 é
        ("4", "Untitled Project", 1996),  # no year in the title: the release date's
        ("5", "unknown", None),
        ("6", "Señora Luna (1998)", 1998),
    ]
    genres = dict(rows(src.items, "item_id", "genres"))
    assert genres["1"] == ["Animation", "Children's", "Comedy"]
    assert genres["5"] == []  # the "unknown" flag means no genre


def test_ml100k_without_u_genre_uses_the_standard_names(tmp_path):
    folder = tmp_path / "ml-100k"
    shutil.copytree(FIXTURES / "ml-100k", folder)
    (folder / "u.genre").unlink()
    a, b = read_movielens(folder), read_movielens(FIXTURES / "ml-100k")
    assert a.items.equals(b.items)


def test_ml1m_dat_latin1_and_colons_in_titles():
    src = read_movielens(FIXTURES / "ml-1m")
    assert src.name == "ml-1m"
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp")[:3] == [
        ("1", "1", 5.0, 978300760),
        ("1", "3", 3.0, 978302109),
        ("1", "2", 4.0, 978300760),
    ]
    assert src.interactions.height == 10
    assert rows(src.items, "item_id", "title", "year", "genres") == [
        ("1", "Star Quest: The Return (1983)", 1983, ["Action", "Sci-Fi"]),
        ("2", "Matrix Reloaded, The (2003)", 2003, ["Action", "Thriller"]),
        ("3", "Señorita Extraordinaria (1998)", 1998, ["Comedy", "Romance"]),
        ("4", "Evening Bells (1961)", 1961, ["Drama"]),
        ("5", "Bob's Garage (2000)", 2000, ["Comedy"]),
    ]


def test_ml10m_movies_dat_in_utf8(tmp_path):
    folder = tmp_path / "ml-10M100K"
    shutil.copytree(FIXTURES / "ml-1m", folder)
    text = (folder / "movies.dat").read_bytes().decode("latin-1")
    (folder / "movies.dat").write_bytes(text.encode("utf-8"))
    src = read_movielens(folder)
    assert src.name == "ml-10M100K"
    assert titles(src)["3"] == "Señorita Extraordinaria (1998)"


def test_csv_quoted_titles_genres_and_years():
    src = read_movielens(FIXTURES / "ml-latest-small")
    assert src.interactions.height == 11
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp")[4:7] == [
        ("2", "2", 3.5, 1445714835),
        ("2", "4", 2.0, 1445714835),
        ("2", "5", 0.5, 1445714836),
    ]
    assert rows(src.items, "item_id", "title", "year", "genres") == [
        ("1", "Quiet Harbour (1995)", 1995, ["Drama", "Romance"]),
        ("2", "Matrix Reloaded, The (2003)", 2003, ["Action", "Sci-Fi", "Thriller"]),
        ("3", "Fox, the Hound, and the Hen (1981)", 1981, ["Animation", "Children"]),
        ("4", 'Bob "The Builder" Returns (2005)', 2005, ["Comedy"]),
        ("5", "Long Winter: Chronicles (2006–2007)", 2006, []),  # (no genres listed)
        ("6", "Babylon Station", None, ["Sci-Fi"]),
        ("7", "Amélie au Soleil (2001)", 2001, ["Comedy", "Romance"]),
    ]


@pytest.mark.parametrize("release", ["ml-100k", "ml-1m", "ml-latest-small"])
def test_zip_reads_the_same_as_the_folder(tmp_path, release):
    archive = zip_folder(FIXTURES / release, tmp_path / f"{release}.zip", release)
    a, b = read_movielens(archive), read_movielens(FIXTURES / release)
    assert a.name == release
    assert a.interactions.equals(b.interactions)
    assert a.items.equals(b.items)


def test_zip_members_are_read_without_extracting(tmp_path):
    archive = zip_folder(FIXTURES / "ml-1m", tmp_path / "ml-1m.zip", "ml-1m")
    read_movielens(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-1m.zip"]


def test_nested_folder_and_a_file_inside_it(tmp_path):
    inner = tmp_path / "ml-25m" / "ml-25m"
    shutil.copytree(FIXTURES / "ml-latest-small", inner)
    src = read_movielens(tmp_path / "ml-25m")
    assert src.name == "ml-25m"
    assert src.interactions.height == 11
    assert read_movielens(inner / "ratings.csv").items.equals(src.items)


def test_prepare_orders_ties_by_file_order_and_drops_unknown_movies(tmp_path):
    manifest = prepare(read_source("movielens", FIXTURES / "ml-latest-small"), tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    t = ds.catalogue.titles
    seqs = {u: [t[i] for i in ds.sequences.user_items(k)] for k, u in enumerate(ds.sequences.user_ids)}
    # user 3 rated three movies in the same second (file order kept) and movie 9, absent from movies.csv
    assert seqs["3"] == ["Amélie au Soleil (2001)", "Quiet Harbour (1995)", "Fox, the Hound, and the Hen (1981)"]
    assert seqs["2"] == ["Matrix Reloaded, The (2003)", 'Bob "The Builder" Returns (2005)',
                         "Long Winter: Chronicles (2006–2007)"]
    assert manifest["dropped_items"]["events_of_dropped_items"] == 1
    assert manifest["domain"] == "movies"


# --- errors -------------------------------------------------------------------------


def test_folder_without_movielens_files_names_what_was_looked_for(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DataFormatError) as e:
        read_movielens(tmp_path)
    for name in ("u.data", "ratings.dat", "ratings.csv", "movies.csv"):
        assert name in e.value.problem


def test_zip_without_movielens_files(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("other/data.txt", "x")
    with pytest.raises(DataFormatError, match="holds no MovieLens files"):
        read_movielens(archive)


def test_other_file_is_rejected(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(DataFormatError, match="not a MovieLens file or zip"):
        read_movielens(f)


@pytest.mark.parametrize(
    ("release", "file", "bad", "line", "reason"),
    [
        ("ml-1m", "ratings.dat", "2::4::five::978301968", 4, "field 3 is 'five'"),
        ("ml-1m", "ratings.dat", "2::4::5", 4, "3 fields"),
        ("ml-1m", "ratings.dat", "2:4::5::978301968", 4, "3 fields"),  # a single colon
        ("ml-100k", "u.data", "2\t6\t4", 4, "3 fields"),
        ("ml-latest-small", "ratings.csv", "2,4,2.0,1445714835,9", 5, "5 fields"),
        ("ml-latest-small", "ratings.csv", "2,4,x,1445714835", 5, "field 3 is 'x'"),
    ],
)
def test_malformed_ratings_line_is_named(tmp_path, release, file, bad, line, reason):
    folder = tmp_path / release
    shutil.copytree(FIXTURES / release, folder)
    lines = (folder / file).read_text().splitlines()
    lines[line - 1] = bad
    (folder / file).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as e:
        read_movielens(folder)
    assert f"{file} line {line} is malformed" in e.value.problem
    assert reason in e.value.problem
    assert "GroupLens" in e.value.fix


def test_malformed_line_in_a_zip_names_the_member(tmp_path):
    folder = tmp_path / "ml-1m"
    shutil.copytree(FIXTURES / "ml-1m", folder)
    (folder / "ratings.dat").write_text("1::1::5::978300760\nbroken\n")
    archive = zip_folder(folder, tmp_path / "ml-1m.zip", "ml-1m")
    with pytest.raises(DataFormatError, match=r"ml-1m\.zip:ml-1m/ratings\.dat line 2 is malformed"):
        read_movielens(archive)


def test_malformed_movies_lines(tmp_path):
    folder = tmp_path / "ml-1m"
    shutil.copytree(FIXTURES / "ml-1m", folder)
    with open(folder / "movies.dat", "ab") as f:
        f.write(b"6::No Genres Field (1999)\n")
    with pytest.raises(DataFormatError, match=r"movies\.dat line 6 is malformed \(2 fields"):
        read_movielens(folder)
    folder = tmp_path / "ml-100k"
    shutil.copytree(FIXTURES / "ml-100k", folder)
    with open(folder / "u.item", "ab") as f:
        f.write(b"7|Short Line (1999)|01-Jan-1999\n")
    with pytest.raises(DataFormatError, match=r"u\.item line 7 is malformed"):
        read_movielens(folder)


def test_csv_with_another_header(tmp_path):
    folder = tmp_path / "ml-latest-small"
    shutil.copytree(FIXTURES / "ml-latest-small", folder)
    text = (folder / "ratings.csv").read_text().replace("userId", "user", 1)
    (folder / "ratings.csv").write_text(text)
    with pytest.raises(DataFormatError, match="has no column userId"):
        read_movielens(folder)


def test_options_are_rejected():
    with pytest.raises(DataFormatError, match="takes no options"):
        read_movielens(FIXTURES / "ml-1m", columns={"user": "u"})


def test_cli_prepare_and_error_message(tmp_path):
    from typer.testing import CliRunner

    import genrec.cli.data  # noqa: F401  (registers the prepare command)
    from genrec.cli import app

    archive = zip_folder(FIXTURES / "ml-1m", tmp_path / "ml-1m.zip", "ml-1m")
    result = CliRunner().invoke(app, ["prepare", "movielens", str(archive), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert Dataset(tmp_path / "ds").manifest["n_interactions"] == 10
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["prepare", "movielens", str(tmp_path / "empty"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "holds no MovieLens files" in result.output
    assert not (tmp_path / "x").exists()


def test_blank_lines_are_skipped(tmp_path):
    folder = tmp_path / "ml-1m"
    shutil.copytree(FIXTURES / "ml-1m", folder)
    lines = (folder / "ratings.dat").read_text().splitlines()
    (folder / "ratings.dat").write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n\n")
    assert read_movielens(folder).interactions.equals(read_movielens(FIXTURES / "ml-1m").interactions)
