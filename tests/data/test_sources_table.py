"""A generic CSV/TSV/Parquet interactions table with a column mapping."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from genrec.data import read_source
from genrec.data.sources.table import read_table
from genrec.errors import DataFormatError
from tests._util import rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "table"
MAP = {"user": "customer", "item": "sku", "timestamp": "when", "rating": "stars", "title": "name"}


def test_csv_with_mapping_iso_dates_and_titles_inline():
    src = read_table(FIXTURES / "interactions.csv", columns=MAP)
    assert (src.name, src.format, src.domain) == ("interactions", "table", "items")
    assert rows(src.interactions, "user_id", "item_id", "timestamp", "rating", "order") == [
        ("c1", "007", 1714557600, 5.0, 0),  # 2024-05-01T10:00:00, taken as UTC; "007" stays text
        ("c1", "008", 1714557600, 4.0, 1),
        ("c2", "007", 1714608000, 3.0, 2),  # a bare date
        ("c1", "009", 1714725000, 2.0, 3),  # ...Z
        ("c2", "009", 1714564800, 5.0, 4),
    ]
    assert rows(src.items, "item_id", "title") == [
        ("007", "Blue Mug, Large"), ("008", "Tea Pot"), ("009", "Spoon Set"),
    ]


def test_tsv_with_default_names_and_an_items_table():
    src = read_source("table", FIXTURES / "events.tsv", items_path=FIXTURES / "items.tsv")
    assert rows(src.interactions, "user_id", "item_id", "timestamp", "rating") == [
        ("u1", "i1", 100, 4.5), ("u1", "i2", 100, 3.0), ("u2", "i1", 90, 5.0),
        ("u2", "i3", 95, 1.0), ("u1", "i3", 50, 2.0),
    ]
    assert rows(src.items, "item_id", "title", "year", "genres") == [
        ("i1", '"Quoted" Title', 1999, ["Drama", "Comedy"]),  # TSV: quotes are text
        ("i2", "Second, With Comma", 2001, None),
        ("i3", "Third", None, ["Action"]),
    ]


def test_without_any_title_the_ids_are_titles():
    src = read_table(FIXTURES / "events.tsv")
    assert rows(src.items, "item_id", "title") == [("i1", "i1"), ("i2", "i2"), ("i3", "i3")]


def test_parquet_with_date_column_and_gzipped_csv(tmp_path):
    df = pl.DataFrame({
        "user": ["a", "a", "b"], "item": [1, 2, 1],
        "timestamp": [date(2020, 1, 2), date(2020, 1, 1), date(2020, 1, 3)],
    })
    df.write_parquet(tmp_path / "x.parquet")
    src = read_table(tmp_path / "x.parquet")
    assert rows(src.interactions, "user_id", "item_id", "timestamp") == [
        ("a", "1", 1577923200), ("a", "2", 1577836800), ("b", "1", 1578009600),
    ]
    (tmp_path / "y.csv.gz").write_bytes(gzip.compress((FIXTURES / "interactions.csv").read_bytes()))
    a = read_table(tmp_path / "y.csv.gz", columns=MAP)
    b = read_table(FIXTURES / "interactions.csv", columns=MAP)
    assert a.interactions.equals(b.interactions) and a.items.equals(b.items)


def test_items_table_with_mapped_names(tmp_path):
    (tmp_path / "items.csv").write_text('sku,name,maker\n007,"Blue Mug, Large",Acme\n008,Tea Pot,\n')
    src = read_table(FIXTURES / "interactions.csv", columns={**MAP, "brand": "maker"},
                     items_path=tmp_path / "items.csv")
    assert rows(src.items, "item_id", "title", "brand") == [("007", "Blue Mug, Large", "Acme"), ("008", "Tea Pot", None)]


# --- errors -------------------------------------------------------------------------


def test_mapped_column_that_does_not_exist_lists_the_columns():
    with pytest.raises(DataFormatError) as e:
        read_table(FIXTURES / "interactions.csv", columns={**MAP, "rating": "score"})
    assert "no column 'score' (mapped to rating)" in e.value.problem
    assert "customer, sku, when, stars, name" in e.value.problem


def test_missing_user_column_names_the_defaults():
    with pytest.raises(DataFormatError) as e:
        read_table(FIXTURES / "interactions.csv")
    assert "no user column (looked for user_id, user)" in e.value.problem
    assert "--map user=COLUMN" in e.value.fix


def test_unknown_field_in_mapping():
    with pytest.raises(DataFormatError, match="unknown field.*: price"):
        read_table(FIXTURES / "interactions.csv", columns={**MAP, "price": "stars"})


def test_items_table_without_title(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,label\ni1,x\n")
    with pytest.raises(DataFormatError, match="has no title column") as e:
        read_table(FIXTURES / "events.tsv", items_path=tmp_path / "items.csv")
    assert "item_id, label" in e.value.problem


def test_bad_timestamp_names_value_and_row(tmp_path):
    (tmp_path / "x.csv").write_text("user,item,timestamp\na,1,2024-01-01\na,2,yesterday\n")
    with pytest.raises(DataFormatError, match=r"timestamp 'yesterday' \(row 2\)"):
        read_table(tmp_path / "x.csv")


def test_unknown_suffix_and_missing_items_file(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataFormatError, match="cannot tell the format"):
        read_table(tmp_path / "x.json")
    with pytest.raises(DataFormatError, match="does not exist"):
        read_table(FIXTURES / "events.tsv", items_path=tmp_path / "nope.csv")


def test_row_without_user(tmp_path):
    (tmp_path / "x.csv").write_text("user,item\na,1\n,2\n")
    with pytest.raises(DataFormatError, match="row 2 has no user"):
        read_table(tmp_path / "x.csv")


def test_ragged_csv(tmp_path):
    (tmp_path / "x.csv").write_text("user,item\na,1\nb,2,3,4\n")
    with pytest.raises(DataFormatError, match="cannot be read as CSV"):
        read_table(tmp_path / "x.csv")
