"""Amazon reviews 2014 (gzipped; meta as Python literals), 2018 and 2023 (parent_asin, ms)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from genrec.data import Dataset, prepare
from genrec.data.sources.amazon import domain_of, read_amazon
from genrec.errors import DataFormatError
from tests._util import rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "amazon"


def test_2014_gzipped_reviews_and_python_literal_meta():
    src = read_amazon(FIXTURES / "2014")
    assert (src.name, src.format, src.domain) == ("amazon-Toys_and_Games", "amazon", "products")
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp", "order") == [
        ("AUSER1", "B00TOY0001", 5.0, 1370217600, 0),
        ("AUSER1", "B00TOY0002", 4.0, 1370217600, 1),
        ("AUSER2", "B00TOY0003", 3.0, 1380000000, 2),
        ("AUSER1", "B00TOY0003", 2.0, 1371000000, 3),
        ("AUSER2", "B00TOY0001", 5.0, 1379000000, 4),
        ("AUSER3", "B00TOY0002", 1.0, 1390000000, 5),
        ("AUSER3", "B00TOY0004", 4.0, 1385000000, 6),
    ]
    # only reviewed products; the entity stays for the catalogue to unescape
    assert rows(src.items, "item_id", "title", "brand", "category") == [
        ("B00TOY0001", "Wooden Blocks, 100 Pieces", "Acme Toys", "Toys & Games > Building Toys"),
        ("B00TOY0002", "Bob's Puzzle &amp; Games Box", None, "Toys & Games > Puzzles"),
        ("B00TOY0003", "Rubber Duck", "Quack Co", "Toys & Games"),
        ("B00TOY0004", None, None, "Toys & Games"),
    ]
    # line 5 of the reviews is cut short: skipped and counted
    assert src.notes["reviews_malformed_lines"] == 1
    assert src.notes["reviews_first_malformed_line"] == 5
    assert src.notes["meta_malformed_lines"] == 0
    assert src.notes["edition"] == "2014/2018"


def test_2018_plain_json_is_games():
    src = read_amazon(FIXTURES / "2018" / "Video_Games_5.json")
    assert src.domain == "games"
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp") == [
        ("AGAMER1", "B00GAME001", 5.0, 1500000000),
        ("AGAMER1", "B00GAME002", 3.0, 1500000100),
        ("AGAMER2", "B00GAME002", 4.0, 1510000000),
        ("AGAMER2", "B00GAME003", 2.0, 1510000000),
    ]
    assert rows(src.items, "item_id", "title", "brand", "category")[:3] == [
        ("B00GAME001", "Starfall Odyssey", "Nebula Soft", "Video Games > PC > Games"),
        ("B00GAME002", "Kart Racers, Deluxe Edition", None, "Video Games > Nintendo Switch"),
        ("B00GAME003", "Puzzle Quest &amp; Friends", "Brainy", None),
    ]


def test_2023_parent_asin_store_and_millisecond_timestamps():
    src = read_amazon(FIXTURES / "2023")
    assert src.notes["edition"] == "2023"
    assert src.domain == "products"
    assert rows(src.interactions, "user_id", "item_id", "rating", "timestamp") == [
        ("UBEAUTY1", "B0SHAMPOO", 4.0, 1588687728),
        ("UBEAUTY1", "B0SOAP001", 5.0, 1588687728),
        ("UBEAUTY2", "B0SHAMPOO", 3.0, 1600000000),
        ("UBEAUTY2", "B0CREAM01", 1.0, 1600000000),
        ("UBEAUTY1", "B0CREAM01", 2.0, 1590000000),
    ]
    assert rows(src.items, "item_id", "title", "brand", "category") == [
        ("B0SHAMPOO", "Herbal Shampoo, 2 Pack", "Green Leaf", "All Beauty"),
        ("B0SOAP001", "Olive Soap Bar", None, "Beauty & Personal Care > Skin Care"),
        ("B0CREAM01", "Night Cream", "Lumen", "All Beauty"),
    ]


def test_prepare_drops_untitled_products_and_unescapes_titles(tmp_path):
    manifest = prepare(read_amazon(FIXTURES / "2014"), tmp_path / "ds")
    assert manifest["dropped_items"]["untitled_examples"] == ["B00TOY0004"]
    assert manifest["source_notes"]["reviews_malformed_lines"] == 1
    ds = Dataset(tmp_path / "ds")
    assert sorted(ds.catalogue.titles) == ["Bob's Puzzle & Games Box", "Rubber Duck", "Wooden Blocks, 100 Pieces"]
    t = ds.catalogue.titles
    seqs = {u: [t[i] for i in ds.sequences.user_items(k)] for k, u in enumerate(ds.sequences.user_ids)}
    # tied timestamps keep file order
    assert seqs["AUSER1"] == ["Wooden Blocks, 100 Pieces", "Bob's Puzzle & Games Box", "Rubber Duck"]


def test_meta_given_explicitly(tmp_path):
    shutil.copy(FIXTURES / "2023" / "All_Beauty.jsonl", tmp_path / "reviews.jsonl")
    src = read_amazon(tmp_path / "reviews.jsonl", items_path=FIXTURES / "2023" / "meta_All_Beauty.jsonl")
    assert src.items.height == 3


def test_gzipped_2023_files(tmp_path):
    for name in ("All_Beauty.jsonl", "meta_All_Beauty.jsonl"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((FIXTURES / "2023" / name).read_bytes()))
    a, b = read_amazon(tmp_path), read_amazon(FIXTURES / "2023")
    assert a.interactions.equals(b.interactions) and a.items.equals(b.items)


def test_domain_of_categories():
    assert domain_of("Video_Games") == "games"
    assert domain_of("Toys_and_Games") == "products"  # toys, not video games
    assert domain_of("All_Beauty") == "products"


# --- errors -------------------------------------------------------------------------


def test_missing_meta_file(tmp_path):
    shutil.copy(FIXTURES / "2018" / "Video_Games_5.json", tmp_path)
    with pytest.raises(DataFormatError) as e:
        read_amazon(tmp_path)
    assert "meta_Video_Games.json.gz" in e.value.problem
    assert "--items" in e.value.fix


def test_folder_without_reviews(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataFormatError, match="holds no Amazon reviews file"):
        read_amazon(tmp_path)


def test_folder_with_two_reviews_files(tmp_path):
    shutil.copy(FIXTURES / "2018" / "Video_Games_5.json", tmp_path)
    shutil.copy(FIXTURES / "2023" / "All_Beauty.jsonl", tmp_path)
    with pytest.raises(DataFormatError, match="several reviews files"):
        read_amazon(tmp_path)


def test_meta_file_given_as_path():
    with pytest.raises(DataFormatError, match="is a meta"):
        read_amazon(FIXTURES / "2018" / "meta_Video_Games.json")


def test_wholly_unparseable_reviews_name_the_first_bad_line(tmp_path):
    (tmp_path / "Books.json").write_text("\nnot json at all\n{'still': 'no review'}\n")
    shutil.copy(FIXTURES / "2018" / "meta_Video_Games.json", tmp_path / "meta_Books.json")
    with pytest.raises(DataFormatError, match=r"Books\.json has no readable Amazon record \(first bad line: 2\)"):
        read_amazon(tmp_path)


def test_wholly_unparseable_meta(tmp_path):
    shutil.copy(FIXTURES / "2018" / "Video_Games_5.json", tmp_path)
    (tmp_path / "meta_Video_Games.json").write_text("<html>\n</html>\n")
    with pytest.raises(DataFormatError, match=r"meta_Video_Games\.json has no readable Amazon record \(first bad line: 1\)"):
        read_amazon(tmp_path)


def test_meta_of_another_category(tmp_path):
    shutil.copy(FIXTURES / "2018" / "Video_Games_5.json", tmp_path)
    shutil.copy(FIXTURES / "2023" / "meta_All_Beauty.jsonl", tmp_path / "meta_Video_Games.json")
    with pytest.raises(DataFormatError, match="none of the 3 reviewed products"):
        read_amazon(tmp_path)


def test_malformed_meta_lines_are_counted(tmp_path):
    shutil.copy(FIXTURES / "2018" / "Video_Games_5.json", tmp_path)
    lines = (FIXTURES / "2018" / "meta_Video_Games.json").read_text().splitlines()
    lines.insert(1, '{"title": "no asin"}')
    lines.insert(2, "{broken")
    (tmp_path / "meta_Video_Games.json").write_text("\n".join(lines) + "\n")
    src = read_amazon(tmp_path)
    assert src.notes["meta_malformed_lines"] == 2
    assert src.notes["meta_first_malformed_line"] == 2
    assert src.items.height == 4


def test_options_are_rejected():
    with pytest.raises(DataFormatError, match="no options besides --items"):
        read_amazon(FIXTURES / "2018", columns={"user": "x"})


def test_review_lines_with_missing_fields_are_skipped(tmp_path):
    recs = [json.loads(x) for x in (FIXTURES / "2018" / "Video_Games_5.json").read_text().splitlines()]
    del recs[1]["asin"]
    (tmp_path / "Video_Games.json").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    shutil.copy(FIXTURES / "2018" / "meta_Video_Games.json", tmp_path)
    src = read_amazon(tmp_path)
    assert src.interactions.height == 3
    assert src.notes["reviews_first_malformed_line"] == 2
