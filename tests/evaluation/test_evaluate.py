"""evaluate / write_eval / compare on the tiny dataset."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from genrec.errors import GenrecError
from genrec.evaluation import compare, evaluate, write_eval
from genrec.evaluation.evaluate import full_histories
from genrec.evaluation.metrics import DuplicateItemsError, holm
from genrec.recommenders.base import IndexRecommender, Ranked
from genrec.recommenders.last_item import LastItemBM25
from genrec.recommenders.popularity import Popularity

REQUIRED_KEYS = {
    "method", "dataset", "split", "n_users", "hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr@10", "mrr@20", "valid_rate",
    "coverage", "users_per_second", "ci", "hr@k", "ndcg@k", "settings",
}


class Spy(IndexRecommender):
    """Records the histories it is given; recommends a fixed list (or duplicates)."""

    name = "spy"

    def __init__(self, duplicate: bool = False):
        self.seen: list[list[int]] = []
        self.duplicate = duplicate

    def fit(self, dataset):
        return self

    def recommend(self, histories, k=10, exclude_seen=True):
        self.seen += [list(map(int, h)) for h in histories]
        row = [1, 1, 2] if self.duplicate else list(range(k))
        items = np.array([row] * len(histories))
        return Ranked(items, -np.arange(items.shape[1], dtype=float)[None].repeat(len(histories), 0))


@pytest.fixture(scope="module")
def pop_result(tiny_dataset):
    return evaluate(Popularity().fit(tiny_dataset), tiny_dataset, k_max=20, n_resamples=200)


def test_popularity_metrics_match_a_direct_computation(tiny_dataset, pop_result):
    ex = tiny_dataset.examples("test")
    counts = tiny_dataset.item_popularity()
    hists = full_histories(tiny_dataset, ex["user_id"].to_list(), ex["position"].to_numpy())
    hits10 = []
    for hist, target in zip(hists, ex["target"].to_list(), strict=True):
        order = [i for i in sorted(range(len(counts)), key=lambda i: (-counts[i], i)) if i not in set(hist.tolist())]
        hits10.append(target in order[:10])
    assert pop_result.metrics["hr@10"] == pytest.approx(np.mean(hits10))
    assert pop_result.n_users == ex.height == 20
    assert pop_result.items.shape == (20, 20)


def test_full_histories_are_whole_prefixes_and_window_is_capped(tiny_dataset):
    full, window = Spy(), Spy()
    evaluate(full, tiny_dataset, k_max=5, n_resamples=10)
    evaluate(window, tiny_dataset, k_max=5, n_resamples=10, history="window")
    ex = tiny_dataset.examples("test")
    assert [len(h) for h in full.seen] == ex["position"].to_list()
    assert [h for h in window.seen] == ex["history"].to_list()
    assert max(len(h) for h in window.seen) <= tiny_dataset.manifest["max_history"] < max(len(h) for h in full.seen)
    # the window is the end of the full prefix
    assert all(f[-len(w) :] == w for f, w in zip(full.seen, window.seen, strict=True))


def test_limit_is_a_seeded_subset_and_is_stated(tiny_dataset):
    a = evaluate(Popularity().fit(tiny_dataset), tiny_dataset, limit=7, seed=1, n_resamples=10)
    b = evaluate(Popularity().fit(tiny_dataset), tiny_dataset, limit=7, seed=1, n_resamples=10)
    c = evaluate(Popularity().fit(tiny_dataset), tiny_dataset, limit=7, seed=2, n_resamples=10)
    assert a.n_users == 7 and a.user_ids == b.user_ids and a.user_ids != c.user_ids
    assert "7 users" in a.summary()["settings"]["subset"] and "seed 1" in a.summary()["settings"]["subset"]
    with pytest.raises(GenrecError, match="limit"):
        evaluate(Popularity().fit(tiny_dataset), tiny_dataset, limit=0)


def test_validation_split_and_keep_seen(tiny_dataset):
    rec = Popularity().fit(tiny_dataset)
    valid = evaluate(rec, tiny_dataset, split="valid", n_resamples=10)
    assert valid.split == "valid" and valid.n_users == tiny_dataset.examples("valid").height
    kept = evaluate(rec, tiny_dataset, exclude_seen=False, n_resamples=10)
    # without exclusion every user gets the same list
    assert (kept.items == kept.items[0]).all()
    assert kept.settings["exclude_seen"] is False


def test_duplicate_items_from_a_method_are_an_error(tiny_dataset):
    with pytest.raises(DuplicateItemsError):
        evaluate(Spy(duplicate=True), tiny_dataset, k_max=3)


def test_progress_reaches_the_total(tiny_dataset):
    calls = []
    evaluate(Popularity().fit(tiny_dataset), tiny_dataset, batch_size=6, n_resamples=10, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 20), (6, 20), (12, 20), (18, 20), (20, 20)]  # 0: ranking starts


def test_write_eval_files(tiny_dataset, pop_result, tmp_path):
    out = write_eval(pop_result, tmp_path / "eval")
    metrics = json.loads((out / "metrics.json").read_text())
    assert REQUIRED_KEYS <= set(metrics)
    assert len(metrics["hr@k"]) == len(metrics["ndcg@k"]) == 20 and metrics["k"][0] == 1
    assert metrics["hr@10"] == pytest.approx(metrics["hr@k"][9])
    assert set(metrics["ci"]) >= {"hr@10", "ndcg@10", "mrr@10", "mrr@20", "valid_rate"} and "mrr" not in metrics
    assert metrics["settings"]["exclude_seen"] is True and metrics["settings"]["ranking"] == "full catalogue"
    r = pl.read_parquet(out / "rankings.parquet")
    assert {"user_id", "target", "items", "item_ids", "titles", "scores"} <= set(r.columns)
    row = r.row(0, named=True)
    titles = tiny_dataset.catalogue.titles
    assert row["titles"] == [titles[i] for i in row["items"]]
    assert row["target_title"] == titles[row["target"]]
    report = (out / "report.md").read_text()
    assert "HR@10" in report and "95% CI" in report and "users: 20" in report
    assert "| MRR@10 |" in report and "| MRR@20 |" in report
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_eval_failure_keeps_earlier_output(tiny_dataset, pop_result, tmp_path, monkeypatch):
    out = write_eval(pop_result, tmp_path / "eval")
    before = (out / "metrics.json").read_text()
    import genrec.evaluation.report as report

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_plot", boom)
    with pytest.raises(RuntimeError):
        write_eval(pop_result, out)
    assert (out / "metrics.json").read_text() == before and (out / "plot.png").is_file()


def test_compare_two_methods(tiny_dataset, pop_result, tmp_path):
    write_eval(pop_result, tmp_path / "pop")
    text = evaluate(LastItemBM25().fit(tiny_dataset), tiny_dataset, n_resamples=200)
    write_eval(text, tmp_path / "text")
    result = compare([tmp_path / "pop", tmp_path / "text"], tmp_path / "cmp", n_resamples=200)
    assert [m["label"] for m in result["methods"]] == ["popularity", "last-item"]
    assert result["paired_users"] == 20
    t = result["paired"]["last-item"]["hr@10"]
    assert t["diff"] == pytest.approx(text.metrics["hr@10"] - pop_result.metrics["hr@10"])
    assert 0 < t["p_value"] <= 1 and "mcnemar" in t
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "last-item" in md and "popularity" in md and "McNemar" in md
    assert (tmp_path / "cmp" / "plot.png").is_file() and (tmp_path / "cmp" / "comparison.json").is_file()


def test_compare_refuses_different_splits(tiny_dataset, pop_result, tmp_path):
    write_eval(pop_result, tmp_path / "test")
    write_eval(evaluate(Popularity().fit(tiny_dataset), tiny_dataset, split="valid", n_resamples=10), tmp_path / "valid")
    with pytest.raises(GenrecError, match="different data"):
        compare([tmp_path / "test", tmp_path / "valid"], tmp_path / "cmp")
    with pytest.raises(GenrecError, match="not an evaluation folder"):
        compare([tmp_path / "test", tmp_path], tmp_path / "cmp")


def test_compare_warns_about_different_depths_and_compares_mrr_at_10(tiny_dataset, pop_result, tmp_path):
    write_eval(pop_result, tmp_path / "pop20")
    pop10 = evaluate(Popularity().fit(tiny_dataset), tiny_dataset, k_max=10, n_resamples=200)
    write_eval(pop10, tmp_path / "pop10")
    result = compare([tmp_path / "pop20", tmp_path / "pop10"], tmp_path / "cmp", n_resamples=200)
    # the same method ranked to 20 and to 10: MRR@20 and MRR@10 differ, yet neither is "mrr"
    rows = {m["label"]: m for m in result["methods"]}
    assert rows["popularity (pop20)"]["k_max"] == 20 and rows["popularity (pop10)"]["k_max"] == 10
    assert rows["popularity (pop10)"]["mrr@20"] is None and "mrr" not in rows["popularity (pop10)"]
    assert rows["popularity (pop20)"]["mrr@10"] == rows["popularity (pop10)"]["mrr@10"]
    assert len(result["warnings"]) == 1 and "different depths" in result["warnings"][0]
    tests = result["paired"]["popularity (pop10)"]
    assert set(tests) == {"hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr@10"} and result["paired_k_max"] == 10
    assert tests["mrr@10"]["diff"] == 0.0
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "**Warning:**" in md and "mrr@20" in md
    same = compare([tmp_path / "pop20", tmp_path / "pop20"], tmp_path / "same", n_resamples=50)
    assert same["warnings"] == [] and "mrr@20" in same["paired"]["popularity (pop20)"]


def test_compare_with_holm(tiny_dataset, pop_result, tmp_path):
    write_eval(pop_result, tmp_path / "pop")
    write_eval(evaluate(LastItemBM25().fit(tiny_dataset), tiny_dataset, n_resamples=100), tmp_path / "text")
    write_eval(evaluate(Spy(), tiny_dataset, n_resamples=100), tmp_path / "spy")
    result = compare([tmp_path / "pop", tmp_path / "text", tmp_path / "spy"], tmp_path / "cmp", n_resamples=100, holm=True)
    tests = [t for by_metric in result["paired"].values() for t in by_metric.values()]
    assert len(tests) == 2 * 6  # two methods x hr/ndcg@5, hr/ndcg@10, mrr@10, mrr@20
    raw, adj = [t["p_value"] for t in tests], [t["p_holm"] for t in tests]
    assert adj == pytest.approx(holm(raw)) and all(r <= a for r, a in zip(raw, adj, strict=True))
    mc = [t["mcnemar"] for t in tests if "mcnemar" in t]
    assert len(mc) == 4 and [t["p_holm"] for t in mc] == pytest.approx(holm([t["p_value"] for t in mc]))
    assert result["paired_settings"]["holm"] and "p (bootstrap, Holm)" in (tmp_path / "cmp" / "comparison.md").read_text()
    plain = compare([tmp_path / "pop", tmp_path / "text"], tmp_path / "plain", n_resamples=100)
    assert "p_holm" not in plain["paired"]["last-item"]["hr@10"] and plain["paired_settings"]["holm"] is None


def test_compare_reads_metrics_written_before_cut_off_names(tiny_dataset, pop_result, tmp_path):
    for name in ("old", "new"):
        write_eval(pop_result, tmp_path / name)
    path = tmp_path / "old" / "metrics.json"
    old = json.loads(path.read_text())
    old["mrr"] = old.pop("mrr@20")
    old.pop("mrr@10")
    old["ci"]["mrr"] = old["ci"].pop("mrr@20")
    old["ci"].pop("mrr@10")
    path.write_text(json.dumps(old))
    result = compare([tmp_path / "old", tmp_path / "new"], tmp_path / "cmp", n_resamples=50)
    first, second = result["methods"]
    assert first["mrr@20"] == second["mrr@20"] and first["ci"]["mrr@20"] == second["ci"]["mrr@20"]
    # mrr@10 of the old folder comes from its rankings (without an interval)
    assert first["mrr@10"] == pytest.approx(second["mrr@10"]) and "mrr@10" not in first["ci"]
    assert result["warnings"] == []


def test_list_length_and_batch_size_default_to_the_methods_own(tiny_dataset):
    class Narrow(Popularity):
        """Popularity with a beam-like limit and a small evaluation batch, counting calls."""

        eval_batch_size = 3

        def __init__(self):
            super().__init__()
            self.calls: list[int] = []

        @property
        def max_k(self):
            return 5

        def recommend(self, histories, k=10, exclude_seen=True, **kw):
            self.calls.append(len(histories))
            return super().recommend(histories, k, exclude_seen, **kw)

    rec = Narrow().fit(tiny_dataset)
    result = evaluate(rec, tiny_dataset, n_resamples=10)
    assert result.items.shape[1] == 5  # its max_k, not 20
    assert max(rec.calls) == 3  # its eval_batch_size, not 256
    with pytest.raises(GenrecError, match="beam width 5"):
        evaluate(rec, tiny_dataset, k_max=6, n_resamples=10)
    assert evaluate(Popularity().fit(tiny_dataset), tiny_dataset, n_resamples=10).items.shape[1] == 20
