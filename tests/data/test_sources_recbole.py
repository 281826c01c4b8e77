"""RecBole atomic files (.inter, .item; tab-separated with field:type headers)."""

from __future__ import annotations

import gzip
import shutil

import pytest

from genrec.data import Dataset, prepare
from genrec.data.sources.recbole import read_recbole
from genrec.errors import DataFormatError
from tests._util import fixture_dir, rows

FIXTURES = fixture_dir("recbole")


def test_movie_set_with_gzipped_inter_and_years_put_back():
    src = read_recbole(FIXTURES / "ml-tiny")
    assert (src.name, src.format, src.domain) == ("ml-tiny", "recbole", "movies")
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp", "order") == [
        ("1", "10", 4.0, 881250949, 0),
        ("1", "11", 5.0, 881250949, 1),
        ("2", "12", 3.0, 891717742, 2),
        ("1", "13", 2.0, 881251000, 3),
        ("2", "10", 1.0, 891700000, 4),
        ("3", "14", 5.0, 878887116, 5),
        ("3", "11", 4.0, 878887116, 6),
        ("3", "12", 2.0, 878887000, 7),
    ]
    assert rows(src.items, "item_id", "title", "year", "genres") == [
        ("10", "Paper Lanterns (1995)", 1995, ["Animation", "Children's", "Comedy"]),
        ("11", "Garden of Rain, The (1997)", 1997, ["Drama", "Romance"]),
        ("12", "Evening Bells (1961)", 1961, ["Drama"]),  # already has its year
        ("13", 'The "Quoted" Movie', None, []),  # year "unknown": none to add
        ("14", "Café Noir (1994)", 1994, ["Crime", "Drama"]),
        ("15", "Never Rated (2000)", 2000, ["Comedy"]),
    ]


def test_the_inter_file_itself_can_be_given():
    a = read_recbole(FIXTURES / "ml-tiny" / "ml-tiny.inter.gz")
    b = read_recbole(FIXTURES / "ml-tiny")
    assert a.interactions.equals(b.interactions) and a.items.equals(b.items)


def test_product_set_with_brand_and_categories():
    src = read_recbole(FIXTURES / "shop")
    assert src.domain == "items"
    assert rows(src.interactions, "user_id", "item_id", "timestamp") == [
        ("alice", "sku-1", 1600000000), ("alice", "sku-2", 1600000100),
        ("bob", "sku-2", 1600000050), ("bob", "sku-3", 1600000050),
    ]
    assert src.interactions["rating"].null_count() == 4
    # not a movie set: titles are kept as written, entities and all (the catalogue cleans them)
    assert rows(src.items, "item_id", "title", "brand", "category") == [
        ("sku-1", "Blue Mug, Large", "Acme", "Kitchen Mugs"),
        ("sku-2", "Tea Pot &amp; Lid", "Acme", "Kitchen"),
        ("sku-3", "Spoon Set (2020)", None, None),
    ]


def test_titles_are_the_item_ids_without_an_item_file_when_asked(tmp_path):
    with pytest.raises(DataFormatError, match="no ml-titles.item file"):
        read_recbole(FIXTURES / "ml-titles")
    src = read_recbole(FIXTURES / "ml-titles", id_titles=True)
    assert src.domain == "movies"
    assert rows(src.items, "item_id", "title") == [
        ("Toy Soldiers, The (1991)", "Toy Soldiers, The (1991)"),
        ("Night Bus (2001)", "Night Bus (2001)"),
        ("Amélie au Soleil (2001)", "Amélie au Soleil (2001)"),
    ]
    manifest = prepare(src, tmp_path / "ds")
    assert (manifest["n_users"], manifest["n_items"], manifest["n_interactions"]) == (2, 3, 4)
    ds = Dataset(tmp_path / "ds")
    first = [ds.catalogue.titles[i] for i in ds.sequences.user_items(0)]
    assert first == ["Toy Soldiers, The (1991)", "Night Bus (2001)"]


def test_prepare_keeps_file_order_for_tied_timestamps(tmp_path):
    prepare(read_recbole(FIXTURES / "ml-tiny"), tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    t = ds.catalogue.titles
    seqs = {u: [t[i] for i in ds.sequences.user_items(k)] for k, u in enumerate(ds.sequences.user_ids)}
    assert seqs["1"] == ["Paper Lanterns (1995)", "Garden of Rain, The (1997)", 'The "Quoted" Movie']
    assert seqs["3"] == ["Evening Bells (1961)", "Café Noir (1994)", "Garden of Rain, The (1997)"]


# --- errors -------------------------------------------------------------------------


def test_folder_without_inter_file(tmp_path):
    (tmp_path / "x.item").write_text("item_id:token\n1\n")
    with pytest.raises(DataFormatError) as e:
        read_recbole(tmp_path)
    assert "<name>.inter" in e.value.problem and "<name>.inter.gz" in e.value.problem


def test_several_data_sets_in_one_folder(tmp_path):
    for name in ("a", "b"):
        shutil.copy(FIXTURES / "shop" / "shop.inter", tmp_path / f"{name}.inter")
    with pytest.raises(DataFormatError, match=r"several RecBole data sets \(a, b\)"):
        read_recbole(tmp_path)


def test_not_an_inter_file(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("a,b\n")
    with pytest.raises(DataFormatError, match="not a RecBole .inter file"):
        read_recbole(f)


def test_header_without_types(tmp_path):
    (tmp_path / "x.inter").write_text("user_id\titem_id\n1\t2\n")
    with pytest.raises(DataFormatError, match="no RecBole header") as e:
        read_recbole(tmp_path)
    assert "'user_id'" in e.value.problem and "token_seq" in e.value.fix


def test_missing_item_id_field(tmp_path):
    (tmp_path / "x.inter").write_text("user_id:token\trating:float\n1\t2\n")
    with pytest.raises(DataFormatError, match=r"no item_id field \(fields: user_id, rating\)"):
        read_recbole(tmp_path)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("3\t11\t4", "3 tab-separated fields, the header has 4"),
        ("3\t11\t4\t878887116\textra", "5 tab-separated fields"),
        ("3\t11\tgood\t878887116", "rating is 'good', not a number"),
        ("\t11\t4\t878887116", "user_id is empty"),
    ],
)
def test_malformed_line_is_named(tmp_path, bad, reason):
    lines = gzip.decompress((FIXTURES / "ml-tiny" / "ml-tiny.inter.gz").read_bytes()).decode().splitlines()
    lines[5] = bad  # file line 6
    (tmp_path / "ml-x.inter").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as e:
        read_recbole(tmp_path)
    assert "ml-x.inter line 6 is malformed" in e.value.problem
    assert reason in e.value.problem


def test_options_are_rejected():
    with pytest.raises(DataFormatError, match="takes no options"):
        read_recbole(FIXTURES / "shop", items_path="x.csv")
