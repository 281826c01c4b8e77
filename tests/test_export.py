"""`genrec export recbole` and `genrec export run` (issue 14, item 4): files other tools read.

RecBole: exported, then read back with genrec's own RecBole reader (the given split), the
users' sequences, splits, times and titles are the same, and the benchmark rows are
genrec's examples. TREC: HR/NDCG/MRR recomputed from run.trec and qrels.trec by a small
trec_eval-style implementation here (ranx and trec_eval are not installed) equal the
values in the evaluation's metrics.json, also with INVALID / NO_ITEM slots and ties.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from genrec.cli import _register, app
from genrec.data import Dataset, PrepareConfig, SourceData, prepare
from genrec.data.export import export_recbole
from genrec.data.sources.recbole import read_recbole
from genrec.errors import GenrecError
from genrec.evaluation import evaluate, export_trec, write_eval
from genrec.ranking import INVALID, NO_ITEM, Ranked
from genrec.recommenders.base import IndexRecommender
from genrec.recommenders.popularity import Popularity
from tests._util import refused
from tests.conftest import tiny_source

_register()
runner = CliRunner()


# ---------------------------------------------------------------- RecBole


def read_back(export_dir: Path, tmp: Path, **config) -> Dataset:
    name = export_dir.name
    source = read_recbole(export_dir / f"{name}.test.inter")
    prepare(source, tmp, PrepareConfig(split="given", **config))
    return Dataset(tmp)


def id_sequences(ds: Dataset) -> dict[str, tuple[list[str], list[int], int, int]]:
    """user -> (item ids, times, n_train, n_valid): comparable across catalogue orders."""
    ids = ds.items["item_id"].to_list()
    s = ds.sequences
    return {
        u: ([ids[i] for i in s.user_items(k)], s.timestamps[s.offsets[k]:s.offsets[k + 1]].tolist(),
            int(s.n_train[k]), int(s.n_valid[k]))
        for k, u in enumerate(s.user_ids)
    }


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_recbole_round_trip_keeps_sequences_split_times_and_titles(tiny_dataset, tmp_path):
    out = tmp_path / "tiny"
    summary = export_recbole(tiny_dataset.path, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "recbole.yaml", "recbole_export.json", "tiny.inter", "tiny.item", "tiny.test.inter", "tiny.train.inter", "tiny.valid.inter",
    ]
    assert summary["users"] == 20 and summary["users_only_in_inter"] == 0 and summary["notes"] == []
    back = read_back(out, tmp_path / "back")
    assert back.manifest["split"] == "given"
    assert id_sequences(back) == id_sequences(tiny_dataset)
    # same catalogue, same order: the indices, and so the stored examples, are equal too
    assert back.items.select("item_id", "title").equals(tiny_dataset.items.select("item_id", "title"))
    for part in ("train", "valid", "test"):
        assert back.examples(part).equals(tiny_dataset.examples(part)), part
    assert back.domain == "movies"  # movie_title:token_seq, as RecBole's ML-1M writes it
    header, _ = read_atomic(out / "tiny.item")
    assert header == ["item_id:token", "movie_title:token_seq"]
    yaml = (out / "recbole.yaml").read_text()
    assert "benchmark_filename: [train, valid, test]" in yaml and "MAX_ITEM_LIST_LENGTH: 10" in yaml


def test_recbole_rows_are_genrecs_examples(tiny_dataset, tmp_path):
    out = tmp_path / "tiny"
    export_recbole(tiny_dataset, out)
    ids = tiny_dataset.items["item_id"].to_list()
    for part in ("train", "valid", "test"):
        header, rows = read_atomic(out / f"tiny.{part}.inter")
        assert header[:3] == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
        ex = tiny_dataset.examples(part)
        expected = [[u, " ".join(ids[i] for i in h), ids[t]]
                    for u, h, t in zip(ex["user_id"], ex["history"].to_list(), ex["target"], strict=True)]
        assert [r[:3] for r in rows] == expected, part
    # every event, in genrec's order, in the plain NAME.inter
    _, events = read_atomic(out / "tiny.inter")
    seqs = id_sequences(tiny_dataset)
    assert [(u, i) for u, i, _ in events] == [(u, i) for u in seqs for i in seqs[u][0]]


def test_recbole_max_history_caps_lists_and_still_reads_back(tiny_dataset, tmp_path):
    out = tmp_path / "tiny"
    summary = export_recbole(tiny_dataset, out, max_history=3)
    assert summary["max_history"] == 3
    for part in ("train", "valid", "test"):
        _, rows = read_atomic(out / f"tiny.{part}.inter")
        assert max(len(r[1].split(" ")) for r in rows) == 3
    assert "MAX_ITEM_LIST_LENGTH: 3" in (out / "recbole.yaml").read_text()
    assert id_sequences(read_back(out, tmp_path / "back")) == id_sequences(tiny_dataset)


def _spaced_source() -> SourceData:
    """tiny_source with item ids that hold spaces (as genrec-json's title ids do), no times."""
    src = tiny_source()
    inter = src.interactions.with_columns(pl.lit(None, pl.Int64).alias("timestamp"),
                                          pl.format("item {}", pl.col("item_id")).alias("item_id"))
    items = src.items.with_columns(pl.format("item {}", pl.col("item_id")).alias("item_id"))
    return SourceData(inter, items, name="spaced", format="table", domain="products")


def test_recbole_ids_with_spaces_are_refused_or_written_as_indices(tmp_path):
    prepare(_spaced_source(), tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    with pytest.raises(GenrecError, match="whitespace") as e:
        export_recbole(ds, tmp_path / "spaced")
    assert "--ids index" in e.value.fix
    assert not (tmp_path / "spaced").exists()

    summary = export_recbole(ds, tmp_path / "spaced", ids="index")
    assert summary["ids"] == "index" and summary["timestamps"] is False
    header, _ = read_atomic(tmp_path / "spaced" / "spaced.train.inter")
    assert header == ["user_id:token", "item_id_list:token_seq", "item_id:token"]  # no times to write
    assert read_atomic(tmp_path / "spaced" / "spaced.item")[0] == ["item_id:token", "title:token_seq"]
    back = read_back(tmp_path / "spaced", tmp_path / "back")

    def by_title(d: Dataset, users: list[str]) -> dict[str, tuple[list[str], int, int]]:
        titles, s = d.catalogue.titles, d.sequences
        return {u: ([titles[i] for i in s.user_items(k)], int(s.n_train[k]), int(s.n_valid[k])) for k, u in enumerate(users)}

    # user k was written as the token "k"
    assert by_title(back, back.sequences.user_ids) == by_title(ds, [str(k) for k in range(ds.sequences.n_users)])


def test_recbole_counts_what_its_layout_cannot_carry(tmp_path):
    # a single-event user has no example: only in NAME.inter; their item nowhere else
    src = tiny_source()
    lone = pl.DataFrame({"user_id": ["zz"], "item_id": ["i99"], "timestamp": [5]})
    items = pl.concat([src.items.select("item_id", "title"), pl.DataFrame({"item_id": ["i99"], "title": ["Lonely (2000)"]})])
    prepare(SourceData(pl.concat([src.interactions.select("user_id", "item_id", "timestamp"), lone]), items,
                       name="lone", format="table", domain="movies"), tmp_path / "ds")
    summary = export_recbole(tmp_path / "ds", tmp_path / "lone")
    assert summary["users_only_in_inter"] == 1 and summary["items_only_in_inter"] == 1
    assert "single event" in summary["notes"][0]
    assert ["zz", "i99", "5"] in read_atomic(tmp_path / "lone" / "lone.inter")[1]
    back = id_sequences(read_back(tmp_path / "lone", tmp_path / "back"))
    original = id_sequences(Dataset(tmp_path / "ds"))
    assert "zz" not in back and back == {u: v for u, v in original.items() if u != "zz"}

    # temporal: a user whose events all come after the training cut reads back with the
    # first one as training (a list's items are history); counted, and nothing else differs
    late_rows = pl.DataFrame({"user_id": ["zz"] * 4, "item_id": ["i01", "i02", "i03", "i04"], "timestamp": [9000, 9010, 9020, 9030]})
    prepare(SourceData(pl.concat([src.interactions.select("user_id", "item_id", "timestamp"), late_rows]), src.items,
                       name="late", format="table", domain="movies"), tmp_path / "temporal", PrepareConfig(split="temporal"))
    ds = Dataset(tmp_path / "temporal")
    summary = export_recbole(ds, tmp_path / "tmp_export")
    late = {u for k, u in enumerate(ds.sequences.user_ids) if ds.sequences.n_train[k] == 0}
    assert summary["users_first_event_not_training"] == len(late) > 0
    back = id_sequences(read_back(tmp_path / "tmp_export", tmp_path / "back2"))
    original = id_sequences(ds)
    for u, seq in original.items():
        if u in late:
            assert back[u][:2] == seq[:2] and back[u][2] == 1
        else:
            assert back[u] == seq


# ---------------------------------------------------------------- TREC


def trec_metrics(run: Path, qrels: Path, k: int = 10) -> dict[str, float]:
    """NDCG@k, recall@k and RR@k as trec_eval computes them (its -c: every qrels query counts).

    trec_eval ignores the rank column: it sorts by score, higher first, ties by docid
    descending; scores are read as C floats, so the order is checked in float32 too.
    """
    rel: dict[str, set[str]] = defaultdict(set)
    for line in qrels.read_text().splitlines():
        q, _, d, r = line.split()
        if int(r) > 0:
            rel[q].add(d)
    lists: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for line in run.read_text().splitlines():
        q, it, d, _rank, score, _name = line.split()
        assert it == "Q0"
        lists[q].append((float(score), d))
    out = defaultdict(list)
    for q, relevant in rel.items():
        docs = sorted(lists.get(q, []), key=lambda x: x[1], reverse=True)
        docs.sort(key=lambda x: -x[0])
        f32 = np.array([s for s, _ in docs], dtype=np.float32)
        assert np.all(np.diff(f32) < 0), q  # no ties even at trec_eval's precision
        ranked = [d for _, d in docs][:k]
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked) if d in relevant)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
        out["ndcg"].append(dcg / idcg)
        out["recall"].append(sum(d in relevant for d in ranked) / len(relevant))
        first = next((i + 1 for i, d in enumerate(ranked) if d in relevant), None)
        out["rr"].append(1 / first if first else 0.0)
    return {m: float(np.mean(v)) for m, v in out.items()}


def check_against_metrics(eval_dir: Path, export_dir: Path) -> None:
    m = json.loads((eval_dir / "metrics.json").read_text())
    got = trec_metrics(export_dir / "run.trec", export_dir / "qrels.trec")
    assert got["ndcg"] == pytest.approx(m["ndcg@10"], abs=1e-12)
    assert got["recall"] == pytest.approx(m["hr@10"], abs=1e-12)
    assert got["rr"] == pytest.approx(m["mrr@10"], abs=1e-12)


@pytest.mark.parametrize("split", ["leave-one-out", "temporal"])
def test_trec_run_recomputes_genrecs_metrics(tmp_path, split):
    # popularity scores are counts: ties everywhere, which must not reorder anything
    prepare(tiny_source(), tmp_path / "ds", PrepareConfig(split=split))
    ds = Dataset(tmp_path / "ds")
    write_eval(evaluate(Popularity().fit(ds), ds, k_max=20, n_resamples=20), tmp_path / "ev")
    summary = export_trec(tmp_path / "ev", tmp_path / "trec")
    check_against_metrics(tmp_path / "ev", tmp_path / "trec")
    rankings = pl.read_parquet(tmp_path / "ev" / "rankings.parquet")
    lines = [line.split() for line in (tmp_path / "trec" / "run.trec").read_text().splitlines()]
    qrels = [line.split() for line in (tmp_path / "trec" / "qrels.trec").read_text().splitlines()]
    assert len(qrels) == rankings.height == summary["queries"]
    assert len({q for q, *_ in qrels}) == len(qrels)  # one query per example
    if split == "temporal":  # several test examples per user: USER:POSITION
        assert summary["qid"] == "user_id:position" and rankings["user_id"].n_unique() < rankings.height
        assert qrels[0][0] == f"{rankings['user_id'][0]}:{rankings['position'][0]}"
    else:
        assert summary["qid"] == "user_id" and [q for q, *_ in qrels] == rankings["user_id"].to_list()
    # genrec's order, ranks 1.. per query, the method as the run name
    first = rankings.row(0, named=True)
    mine = [line for line in lines if line[0] == qrels[0][0]]
    assert [d for _, _, d, *_ in mine] == [i for i in first["item_ids"] if i is not None]
    assert [int(r) for _, _, _, r, *_ in mine] == list(range(1, len(mine) + 1))
    assert {line[5] for line in lines} == {"popularity"}
    assert summary["metrics"]["ndcg@10"] == json.loads((tmp_path / "ev" / "metrics.json").read_text())["ndcg@10"]


class Markers(IndexRecommender):
    """Lists with INVALID and NO_ITEM slots among real items, all scores tied; the first
    user's list holds no item at all."""

    name = "markers"

    def fit(self, dataset):
        return self

    def recommend(self, histories, k=10, exclude_seen=True):
        row = ([INVALID, *range(0, 8), NO_ITEM, *range(8, 30)] + [NO_ITEM] * k)[:k]
        items = np.array([row] * len(histories))
        items[0] = INVALID
        return Ranked(items, np.where(items >= 0, 1.0, -np.inf))


def test_trec_placeholders_keep_genrecs_ranks(tiny_dataset, tmp_path):
    write_eval(evaluate(Markers(), tiny_dataset, k_max=20, n_resamples=20), tmp_path / "ev")
    summary = export_trec(tmp_path / "ev", tmp_path / "trec", run_name="m1")
    assert summary["queries_without_items"] == 1
    assert summary["placeholders"] == 2 * (summary["queries"] - 1)
    check_against_metrics(tmp_path / "ev", tmp_path / "trec")
    lines = [line.split() for line in (tmp_path / "trec" / "run.trec").read_text().splitlines()]
    q = lines[0][0]
    mine = [line for line in lines if line[0] == q]
    assert [line[2] for line in mine[:2]] == ["genrec:invalid:1", "i00"] and mine[9][2] == "genrec:no-item:10"
    assert {line[5] for line in lines} == {"m1"}
    first_user = pl.read_parquet(tmp_path / "ev" / "rankings.parquet")["user_id"][0]
    assert all(line[0] != first_user for line in lines)  # nothing ranked: no line, a miss under -c


def test_trec_ids_with_spaces_are_refused_or_written_as_indices(tmp_path):
    prepare(_spaced_source(), tmp_path / "ds")
    ds = Dataset(tmp_path / "ds")
    write_eval(evaluate(Popularity().fit(ds), ds, k_max=10, n_resamples=20), tmp_path / "ev")
    with pytest.raises(GenrecError, match="whitespace") as e:
        export_trec(tmp_path / "ev", tmp_path / "trec")
    assert "--ids index" in e.value.fix and not (tmp_path / "trec").exists()
    export_trec(tmp_path / "ev", tmp_path / "trec", ids="index")
    check_against_metrics(tmp_path / "ev", tmp_path / "trec")
    assert (tmp_path / "trec" / "qrels.trec").read_text().splitlines()[0].split()[0] == "0"


# ---------------------------------------------------------------- CLI


def test_cli_exports_and_refuses_bad_input(tiny_dataset, tmp_path):
    data = str(tiny_dataset.path)
    out = tmp_path / "tiny"
    r = runner.invoke(app, ["export", "recbole", data, str(out)])
    assert r.exit_code == 0, r.output
    assert "tiny.train/valid/test.inter" in r.output and (out / "tiny.test.inter").is_file()
    before = (out / "tiny.train.inter").read_bytes()

    # not a dataset / not an evaluation
    refused(["export", "recbole", str(tmp_path), str(tmp_path / "x")], "not a genrec dataset folder", "genrec prepare")
    refused(["export", "run", data, str(tmp_path / "x")], "not an evaluation folder", "genrec evaluate")
    # an earlier export: only with --overwrite, and the message speaks of OUT, not --out
    text = refused(["export", "recbole", data, str(out)], "already holds a RecBole export", "--overwrite")
    assert "--out" not in text
    assert (out / "tiny.train.inter").read_bytes() == before
    r = runner.invoke(app, ["export", "recbole", data, str(out), "--overwrite", "--max-history", "2"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "recbole_export.json").read_text())["max_history"] == 2
    # a foreign folder, the input itself, another kind of output: untouched
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    refused(["export", "recbole", data, str(foreign), "--overwrite"], "not empty")
    assert (foreign / "keep.txt").read_text() == "x"
    refused(["export", "recbole", data, data, "--overwrite"], "input")
    assert Dataset(data).manifest["n_users"] == 20
    refused(["export", "recbole", data, str(tmp_path / "x"), "--ids", "titles"], "unknown ids")
    refused(["export", "recbole", data, str(tmp_path / "x.train")], "cannot name a RecBole data set")

    ev = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", data, "--method", "popularity", "--out", str(ev), "--resamples", "20"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", "run", str(ev), str(tmp_path / "trec")])
    assert r.exit_code == 0, r.output
    assert "trec_eval -c" in r.output
    check_against_metrics(ev, tmp_path / "trec")
    refused(["export", "run", str(ev), str(out), "--overwrite"], "holds a RecBole export")
    refused(["export", "run", str(ev), str(tmp_path / "trec")], "already holds a TREC run export")
    refused(["export", "run", str(ev), str(tmp_path / "t2"), "--run-name", "two words"], "whitespace")
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert not leftovers
