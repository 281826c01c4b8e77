"""`genrec recommend` and `genrec serve` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from genrec.cli import _register, app
from tests._util import requires_packaged

pytestmark = requires_packaged
_register()
runner = CliRunner()


def test_recommend_prints_json_from_arguments_and_a_file(tiny_run, tmp_path):
    history = tmp_path / "history.txt"
    history.write_text("Fargo (1996)\n\n  i05  \n", encoding="utf-8")
    r = runner.invoke(app, ["recommend", "--run", str(tiny_run), "Heat (1995)", "--file", str(history), "-k", "4", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["unknown"] == [] and len(body["items"]) == 4
    assert not {"i20", "i23", "i05"} & {i["item_id"] for i in body["items"]}  # Heat, Fargo and i05 are the history


@pytest.fixture
def loaded(monkeypatch, recommender):
    """Skip the model load in CLI tests that check only the command's own logic."""
    from genrec.api import Recommender

    calls = []

    def fake_load(run, dataset=None, **options):
        calls.append({"run": run, "dataset": dataset, **options})
        return recommender

    monkeypatch.setattr(Recommender, "load", staticmethod(fake_load))
    monkeypatch.setattr(Recommender, "from_pretrained", staticmethod(fake_load))
    return calls


def test_recommend_reads_stdin_and_prints_a_table(loaded, recommender):
    r = runner.invoke(app, ["recommend", "--run", "RUN", "-", "-k", "3", "--decode", "exact"], input="Heat (1995)\ni00\n")
    assert r.exit_code == 0, r.output
    expected = recommender.recommend(["Heat (1995)", "i00"], k=3, decode="exact")
    for item in expected:
        assert item.title in r.stdout and item.item_id in r.stdout
    assert loaded[0]["decode"] == "exact" and loaded[0]["beams"] == 10


def test_unknown_titles_exit_2_with_suggestions(loaded):
    r = runner.invoke(app, ["recommend", "--run", "RUN", "Heat (1995)", "Heet"])
    assert r.exit_code == 2
    assert "Heet" in r.stderr and "did you mean: 'Heat (1995)'" in r.stderr
    r = runner.invoke(app, ["recommend", "--run", "RUN", "Heat (1995)", "Heet", "--skip-unknown", "--json", "-k", "2"])
    assert r.exit_code == 0 and json.loads(r.stdout)["unknown"] == ["Heet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "history is empty"),
        (["Heat (1995)", "-k", "0"], "positive integer"),
        (["Heat (1995)", "-k", "31", "--decode", "exact"], "larger than the catalogue"),
        (["Heat (1995)", "--file", "/no/such/file"], "cannot read the history file"),
    ],
)
def test_recommend_refuses_bad_input(loaded, args, message):
    r = runner.invoke(app, ["recommend", "--run", "RUN", *args])
    assert r.exit_code == 2 and message in r.stderr


def test_recommend_widens_the_beam_for_a_large_k(loaded):
    r = runner.invoke(app, ["recommend", "--run", "RUN", "Heat (1995)", "-k", "12", "--json"])
    assert loaded[0]["beams"] == 12
    assert r.exit_code == 2 and "beam width (10)" in r.stderr  # the fake keeps its 10 beams


def test_serve_wires_options_and_reads_the_token_from_the_environment(loaded, monkeypatch):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.update(app=application, **kw))
    r = runner.invoke(app, ["serve", "--run", "RUN", "--port", "8123", "--max-batch", "4", "--max-wait-ms", "2"],
                      env={"GENREC_API_TOKEN": "from-env"})
    assert r.exit_code == 0, r.output
    assert (served["host"], served["port"], served["workers"]) == ("127.0.0.1", 8123, 1)
    assert loaded[0]["batch_size"] == 4 and loaded[0]["persist"] is True
    with TestClient(served["app"]) as c:
        info = c.get("/info").json()
        assert info["token_required"] is True and info["max_batch"] == 4 and info["max_wait_ms"] == 2
        assert c.delete("/items/i00").status_code == 401
        assert c.delete("/items/nope", headers={"Authorization": "Bearer from-env"}).status_code == 404


def test_serve_warns_when_reachable_without_a_token(loaded, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: None)
    r = runner.invoke(app, ["serve", "--run", "RUN", "--host", "0.0.0.0"], env={"GENREC_API_TOKEN": None})
    assert r.exit_code == 0 and "no --token is set" in r.stderr
    r = runner.invoke(app, ["serve", "--run", "RUN", "--max-batch", "0"])
    assert r.exit_code == 2 and "--max-batch" in r.stderr


def test_recommend_fuses_an_assistant_from_flags(tiny_run):
    from genrec import Recommender

    r = runner.invoke(app, ["recommend", "--run", str(tiny_run), "Heat (1995)", "-k", "4", "--json",
                            "--assist", "popularity", "--assist-weight", "0.5"])
    assert r.exit_code == 0, r.output
    expected = Recommender.load(tiny_run, persist=False, assist="popularity", assist_weight=0.5).recommend(["Heat (1995)"], k=4)
    plain = Recommender.load(tiny_run, persist=False).recommend(["Heat (1995)"], k=4)
    got = [i["item_id"] for i in json.loads(r.stdout)["items"]]
    assert got == [i.item_id for i in expected] and got != [i.item_id for i in plain]


def test_recommend_reranks_the_assistants_candidates_from_flags(tiny_run):
    from genrec import Recommender

    r = runner.invoke(app, ["recommend", "--run", str(tiny_run), "Heat (1995)", "-k", "4", "--json", "--decode", "rerank",
                            "--assist", "popularity", "--assist-weight", "0.5", "--rerank-depth", "12"])
    assert r.exit_code == 0, r.output
    expected = Recommender.load(tiny_run, persist=False, decode="rerank", assist="popularity", assist_weight=0.5,
                                rerank_depth=12).recommend(["Heat (1995)"], k=4)
    assert [i["item_id"] for i in json.loads(r.stdout)["items"]] == [i.item_id for i in expected]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assist-weight", "0.5"], "no assistant is"),
        (["--assist", "popularity", "--decode", "exact"], "used in beam and rerank decoding"),
        (["--decode", "rerank"], "no assistant is named"),
        (["--decode", "rerank", "--assist", "popularity", "--assist-weight", "0.5", "--rerank-depth", "5", "-k", "6"], "rerank depth"),
        (["--assist", "popularity", "--assist-weight", "1.5"], "assist_weight"),
        (["--assist", "knn"], "assist"),
    ],
)
def test_bad_assistant_flags_exit_2(tiny_run, args, message):
    r = runner.invoke(app, ["recommend", "--run", str(tiny_run), "Heat (1995)", *args])
    assert r.exit_code == 2 and message in r.stderr, r.output


# ---------------------------------------------------------------------- given candidates


@pytest.fixture
def candidates_file(tmp_path):
    path = tmp_path / "candidates.txt"
    path.write_text("Speed (1994)\ni00\n\n  Fargo (1996)  \ni07\nCasino (1995)\n", encoding="utf-8")
    return path


CANDS = ["Speed (1994)", "i00", "Fargo (1996)", "i07", "Casino (1995)"]


def test_recommend_ranks_the_candidates_of_a_file(loaded, recommender, candidates_file):
    r = runner.invoke(app, ["recommend", "--run", "RUN", "Heat (1995)", "Casino (1995)", "--candidates", str(candidates_file),
                            "-k", "12", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    expected = recommender.recommend(["Heat (1995)", "Casino (1995)"], k=12, candidates=CANDS)
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in expected] and len(expected) == 4
    assert [i["score"] for i in body["items"]] == pytest.approx([i.score for i in expected])
    assert "candidates hold 4" in body["shortfall"]
    assert loaded[0]["beams"] == 10  # k=12 without a search: the beam is not widened


def test_score_only_prints_every_candidate_in_file_order(loaded, recommender, candidates_file):
    r = runner.invoke(app, ["recommend", "--run", "RUN", "-", "--candidates", str(candidates_file), "--score-only", "--json"],
                      input="Heat (1995)\n")
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    expected = recommender.score(["Heat (1995)"], CANDS)
    in_order = [recommender.catalogue.item_ids[recommender.catalogue.lookup(c)] for c in CANDS]
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in expected] == in_order
    assert [i["score"] for i in body["items"]] == pytest.approx([i.score for i in expected])
    r = runner.invoke(app, ["recommend", "--run", "RUN", "Heat (1995)", "--candidates", "-", "--score-only"], input="i03\n")
    assert r.exit_code == 0 and "i03" in r.stdout and "scores of 1 candidates" in r.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["Heat (1995)", "--score-only"], None, "no --candidates file"),
        (["-", "--candidates", "-"], "i00\n", "cannot both be read from stdin"),
        (["Heat (1995)", "--candidates", "/no/such/file"], None, "cannot read the candidates file"),
        (["Heat (1995)", "--candidates", "-"], "\n  \n", "holds no title or item id"),
        (["Heat (1995)", "--candidates", "-"], "i00\nSpeeed\n", "did you mean: 'Speed (1994)'"),
        (["Heat (1995)", "--candidates", "-", "--skip-unknown"], "Speeed\n", "Speeed"),
    ],
)
def test_bad_candidates_exit_2(loaded, args, stdin, message):
    r = runner.invoke(app, ["recommend", "--run", "RUN", *args], input=stdin)
    assert r.exit_code == 2 and message in r.stderr, r.output


def test_run_that_is_neither_a_folder_nor_a_hub_id_exits_2():
    r = runner.invoke(app, ["recommend", "--run", "no/such/run", "Heat (1995)"])
    assert r.exit_code == 2 and "neither a folder nor a Hugging Face Hub id" in r.stderr
