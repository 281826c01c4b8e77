"""GenRec's released JSON: histories joined by a bare comma, recovered against known titles.

tests/fixtures/genrec-json/toys_sample.json holds 14 real records of the GenRec Amazon
Toys test set (ODC-By; see NOTICE.md beside it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrec.data import Dataset, prepare
from genrec.data.sources.genrec_json import read_genrec_json, split_history
from genrec.errors import DataFormatError

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "genrec-json" / "toys_sample.json"


def split(text: str, known: set[str]) -> list[str]:
    return split_history(text, known, max((t.count(",") for t in known), default=0) + 1)[0]


@pytest.mark.parametrize(
    ("text", "known", "expected"),
    [
        ("", set(), []),
        ("A,B,C", set(), ["A", "B", "C"]),
        # a known title with a comma stays whole
        ("A,Mug, Large,C", {"Mug, Large"}, ["A", "Mug, Large", "C"]),
        ("Mug,Large,C", {"Mug,Large"}, ["Mug,Large", "C"]),
        # unknown: a piece starting with a space continues the title before it
        ("Blocks, 100 Pieces,Duck", set(), ["Blocks, 100 Pieces", "Duck"]),
        # ...even after a known title: titles carry no leading space, the join adds none
        ("Duck, Yellow,Kite", {"Duck"}, ["Duck, Yellow", "Kite"]),
        # an empty piece is a trailing comma of the title before it
        ("Doll, Ember,,Kite,", set(), ["Doll, Ember,", "Kite,"]),
        # a known title that begins with a space (they exist in the Toys data)
        ("Super Friends, Batwing, LEGO Speeder,Game", {" LEGO Speeder"},
         ["Super Friends, Batwing", " LEGO Speeder", "Game"]),
        # most pieces covered by known titles, then fewest items
        ("A,B", {"A", "B", "A,B"}, ["A,B"]),
        ("A,B,C", {"A,B", "B,C", "A"}, ["A", "B,C"]),
        # a leading space on the first piece cannot glue to anything before it
        (" Ball,Kite", set(), [" Ball", "Kite"]),
    ],
)
def test_split_history(text, known, expected):
    assert split(text, known) == expected


def history(src, user: str) -> list[str]:
    inter = src.interactions
    return inter.filter(inter["user_id"] == user)["item_id"].to_list()


def test_real_records_recover_comma_titles_intact():
    src = read_genrec_json(SAMPLE)
    assert (src.name, src.format, src.domain) == ("toys_sample", "genrec-json", "products")
    assert src.interactions["timestamp"].null_count() == src.interactions.height
    assert src.interactions["order"].to_list() == list(range(src.interactions.height))
    assert history(src, "u0000000") == [
        "Zing Air Huntress Shot",
        "Nerf Zombie Strike Sidestrike Blaster",
        "Zing Air Zano, Orange",
        "Marvel Super Hero Mashers Electronic Iron Man Figure",
        "DohVinci Anywhere Art Studio Easel &amp; Storage Case Set",  # the output comes last
    ]
    assert history(src, "u0000012") == [
        "Crayola Light Designer,(74-7033)",
        "Green Toys Shape Sorter, Green/Blue",
        "Crayola Jewelry Boutique Neon",
        "Spin Master Games - Boom Boom Balloon Board Game",
        "Twister Dance Rave Game",
        "Fisher-Price Disney Minnie, Jump 'n Style Pony Stable",
    ]
    assert history(src, "u0000013")[:5] == [
        "Novi Stars Orbit Beach Doll, Una Verse",
        "Novi Stars Orbit Ari Roma Beach Doll",
        "Novi Stars Doll, Tula Toned",
        "Novi Stars Doll, Malie Tasker",
        "Novi Stars Stellar Skinz Doll, Gail Lexi",
    ]
    # a known title with a leading space, after an unknown comma title
    assert history(src, "u0000007")[:2] == [
        "Fisher-Price Imaginext DC Super Friends, Batwing",
        " LEGO Star Wars Lukes Landspeeder (8092)",
    ]
    # ",," in the input: the empty piece stays with the title before it
    assert history(src, "u0000011")[2] == "Mini Lalaloopsy Fun House dolls, Peanut and Ember,"
    assert src.notes["records"] == 14
    assert src.notes["comma_titles_recovered"] == 5
    assert src.notes["histories_with_comma_titles"] == 5


def test_extra_titles_help_recovery(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps([{"instruction": "i", "input": "Ball,Red,Kite", "output": "Top"}]))
    assert history(read_genrec_json(f), "u0000000") == ["Ball", "Red", "Kite", "Top"]
    src = read_genrec_json(f, titles=["Ball,Red"])
    assert history(src, "u0000000") == ["Ball,Red", "Kite", "Top"]


def test_a_folder_with_one_json_file_reads_it(tmp_path):
    (tmp_path / "toys_test.json").write_text(json.dumps([{"instruction": "i", "input": "Ball,Kite", "output": "Top"}]))
    (tmp_path / "DATA_LICENSE").write_text("terms")
    src = read_genrec_json(tmp_path)
    assert history(src, "u0000000") == ["Ball", "Kite", "Top"]
    assert src.name == "toys_test"


@pytest.mark.parametrize("names", [[], ["toys_train.json", "toys_test.json"]])
def test_a_folder_without_exactly_one_json_file_is_refused(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text(json.dumps([{"instruction": "i", "input": "Ball", "output": "Kite"}]))
    with pytest.raises(DataFormatError, match="is a folder with (no|2) \\*.json file") as e:
        read_genrec_json(tmp_path)
    assert "toys_test.json" in e.value.fix


def test_prepare_the_sample(tmp_path):
    manifest = prepare(read_genrec_json(SAMPLE), tmp_path / "ds")
    assert manifest["n_users"] == 14
    assert manifest["examples"]["test"] == 14
    ds = Dataset(tmp_path / "ds")
    titles = set(ds.catalogue.titles)
    assert "DohVinci Anywhere Art Studio Easel & Storage Case Set" in titles  # unescaped
    assert "LEGO Star Wars Lukes Landspeeder (8092)" in titles  # stripped
    # the test target of each user is its record's output (the item id is the raw title)
    test = ds.examples("test")
    outputs = [r["output"] for r in json.loads(SAMPLE.read_text())]
    targets = dict(zip(test["user_id"].to_list(), test["target"].to_list(), strict=True))
    assert [ds.catalogue.item_ids[targets[f"u{k:07d}"]] for k in range(14)] == outputs


# --- errors -------------------------------------------------------------------------


def test_invalid_json_names_line_and_column(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('[\n{"instruction": "a", "input": "b", "output": "c"},\n{oops}\n]')
    with pytest.raises(DataFormatError, match=r"not valid JSON \(line 3, column 2"):
        read_genrec_json(f)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"input": "a"}, "holds a JSON dict, not a list"),
        ([{"instruction": "x", "input": "a"}], "record 0 has no string input and output"),
        ([{"input": "a", "output": "b"}, {"input": ["a"], "output": "b"}], "record 1 has no string input"),
        ([], "holds no records"),
    ],
)
def test_wrong_structure(tmp_path, data, message):
    f = tmp_path / "x.json"
    f.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=message) as e:
        read_genrec_json(f)
    assert "instruction" in e.value.fix
