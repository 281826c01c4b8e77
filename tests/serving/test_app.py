"""The HTTP service through FastAPI's TestClient: every endpoint, every error, persistence, concurrency."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from tests._util import requires_packaged

pytestmark = requires_packaged

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEAT = "Heat (1995)"


@pytest.fixture(scope="module")
def run_dir(tiny_run, tmp_path_factory):
    dst = tmp_path_factory.mktemp("app") / "run"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


@pytest.fixture(scope="module")
def client(run_dir):
    from genrec import Recommender
    from genrec.serving.app import create_app

    app = create_app(Recommender.load(run_dir), token=TOKEN, max_wait_ms=20, max_body_bytes=64 * 1024)
    with TestClient(app) as c:
        yield c


def recommend(client, **body):
    return client.post("/recommend", json={"history": [HEAT], "k": 3, **body})


def fields(response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# ---------------------------------------------------------------------- recommending


def test_recommend(client):
    r = recommend(client, history=[HEAT, "i05", "casino (1995)"], k=4)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unknown"] == [] and len(body["items"]) == 4
    assert {"item_id", "title", "score"} == set(body["items"][0])
    assert len({i["item_id"] for i in body["items"]}) == 4
    assert not {"i05", "i20", "i19"} & {i["item_id"] for i in body["items"]}  # history items are excluded


def test_batch_matches_single_requests(client):
    histories = [[HEAT], ["i00", "i01"], ["Fargo (1996)"]]
    r = client.post("/recommend/batch", json={"histories": histories, "k": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    for history, result in zip(histories, results, strict=True):
        single = recommend(client, history=history).json()
        assert [i["item_id"] for i in result["items"]] == [i["item_id"] for i in single["items"]]


def test_concurrent_requests_get_their_own_answers(client):
    histories = [[HEAT], ["i00"], ["i07", "i08"], ["Fargo (1996)"]] * 3
    expected = {json.dumps(h): recommend(client, history=h).json() for h in histories[:4]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda h: recommend(client, history=h), histories))
    for history, r in zip(histories, answers, strict=True):
        assert r.status_code == 200
        got, want = r.json(), expected[json.dumps(history)]
        assert [i["item_id"] for i in got["items"]] == [i["item_id"] for i in want["items"]]
        assert [i["score"] for i in got["items"]] == pytest.approx([i["score"] for i in want["items"]], rel=1e-5)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history": []}, "history"),
        ({"history": None}, "history"),
        ({"history": HEAT}, "history"),
        ({"history": [""]}, "history.0"),
        ({"history": [HEAT, True]}, "history.1"),
        ({"k": 0}, "k"),
        ({"k": -3}, "k"),
        ({"k": 101}, "k"),
        ({"k": "ten"}, "k"),
        # strict bodies (issue 12, item 9): these used to be read as 1, 3, 3 and False
        ({"k": True}, "k"),
        ({"k": "3"}, "k"),
        ({"k": 3.0}, "k"),
        ({"exclude_seen": "no"}, "exclude_seen"),
        ({"decode": "greedy"}, "decode"),
        ({"on_unknown": "ignore"}, "on_unknown"),
        ({"kk": 3}, "kk"),
    ],
)
def test_invalid_requests_name_the_field(client, body, field):
    r = recommend(client, **body)
    assert r.status_code == 422
    assert field in fields(r) and field.split(".")[0] in r.json()["detail"]


def test_missing_history_is_named(client):
    r = client.post("/recommend", json={"k": 3})
    assert r.status_code == 422 and fields(r) == ["history"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"k": 31, "decode": "exact"}, "larger than the catalogue (30 items)"),
        ({"k": 11}, "larger than the beam width (10)"),
    ],
)
def test_k_beyond_what_can_be_returned(client, body, message):
    r = recommend(client, **body)
    assert r.status_code == 422 and message in r.json()["detail"] and r.json()["fix"]


def test_unknown_titles(client):
    r = recommend(client, history=["Heet", "Fargo 1996"])
    assert r.status_code == 422
    body = r.json()
    assert body["unknown"] == ["Heet", "Fargo 1996"]
    assert body["suggestions"]["Heet"] == [HEAT] and "Fargo (1996)" in body["suggestions"]["Fargo 1996"]
    r = recommend(client, history=["Heet"], on_unknown="skip")  # nothing known to recommend from
    assert r.status_code == 422 and r.json()["unknown"] == ["Heet"]
    r = recommend(client, history=[HEAT, "Heet"], on_unknown="skip")
    assert r.status_code == 200 and r.json()["unknown"] == ["Heet"] and len(r.json()["items"]) == 3
    r = recommend(client, history=[HEAT, 7])  # a JSON integer is an item id
    assert r.status_code == 422 and r.json()["unknown"] == ["7"]
    r = client.post("/recommend/batch", json={"histories": [[HEAT], ["Nope"]], "k": 2})
    assert r.status_code == 422 and r.json()["unknown"] == ["Nope"]


JSON = {"Content-Type": "application/json"}
PLAIN = {"history": [HEAT], "k": 3}


@pytest.mark.parametrize(
    ("body", "needle", "kind"),
    [
        (b"\xff\xfe", "not UTF-8", "body_not_utf8"),
        (b'{"history": ["Am\xe9lie (2001)"], "k": 3}', "not UTF-8", "body_not_utf8"),  # Latin-1
        (json.dumps(PLAIN).encode("utf-16"), "not UTF-8", "body_not_utf8"),  # json.loads would take it
        (b'{"history": [', "not valid JSON", "json_invalid"),  # truncated
        (b'{"history": ["Heat (1995)"', "not valid JSON", "json_invalid"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply", "body_too_deep"),  # 60 KB, under the 64 KB limit
    ],
    ids=["bom-only", "latin1", "utf16", "truncated", "unclosed", "deep"],
)
@pytest.mark.parametrize("path", ["/recommend", "/recommend/batch", "/score", "/items"])
def test_unparseable_bodies_get_400_with_a_fix(client, path, body, needle, kind):
    # issue 12, item 9: these were FastAPI's bare 400 "There was an error parsing the body"
    # (no fix, not in the schema), or a 422 as if a field were wrong
    r = client.post(path, content=body, headers={**JSON, **AUTH})
    assert r.status_code == 400, r.text
    got = r.json()
    assert needle in got["detail"] and got["fix"]
    assert got["errors"] == [{"field": "body", "message": got["detail"], "type": kind}]
    assert recommend(client).status_code == 200  # and the server is fine


def test_400_is_in_the_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/recommend", "/recommend/batch", "/score", "/items"):
        response = paths[path]["post"]["responses"]["400"]
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        assert "UTF-8" in response["description"]


def test_other_http_errors_keep_their_shape(client):
    # the handler that words body-parsing 400s must leave routing's 404/405 and the token's 401 alone
    assert client.get("/nowhere").status_code == 404 and client.get("/nowhere").json() == {"detail": "Not Found"}
    assert client.get("/recommend").status_code == 405
    r = client.post("/items", json=[{"item_id": "x1", "title": "X (2001)"}])
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


def test_oversized_bodies_are_refused(client):
    big = {"history": ["x" * 400] * 200, "k": 3}  # ~80 KB, over the test server's 64 KB
    r = client.post("/recommend", json=big)
    assert r.status_code == 413 and "limit is 65536" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold for a streamed body too
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert recommend(client).status_code == 200  # and the server is fine


# ---------------------------------------------------------------------- given candidates

CANDS = ["Speed (1994)", "i00", "fargo (1996)", "i07", "i03", "Casino (1995)"]


def test_score_returns_every_candidate_in_order(client):
    r = client.post("/score", json={"history": [HEAT, "Casino (1995)"], "candidates": CANDS})
    assert r.status_code == 200, r.text
    body = r.json()
    rec = client.app.state.recommender
    expected = rec.score([HEAT, "Casino (1995)"], CANDS)
    assert body["unknown"] == [] and [i["item_id"] for i in body["items"]] == [i.item_id for i in expected]
    assert [i["score"] for i in body["items"]] == pytest.approx([i.score for i in expected], rel=1e-5)
    assert len(body["items"]) == len(CANDS)  # the seen candidate is scored too


def test_recommend_with_candidates_is_the_scores_sorted(client):
    history = [HEAT, "Casino (1995)"]
    scores = {i["item_id"]: i["score"] for i in client.post("/score", json={"history": history, "candidates": CANDS}).json()["items"]}
    rec = client.app.state.recommender
    casino = rec.catalogue.item_ids[rec.catalogue.lookup("Casino (1995)")]
    r = recommend(client, history=history, k=3, candidates=CANDS)
    assert r.status_code == 200, r.text
    unseen = sorted((i for i in scores if i != casino), key=lambda i: -scores[i])
    assert [i["item_id"] for i in r.json()["items"]] == unseen[:3] and r.json()["shortfall"] is None
    # k above the beam width (10) and above the candidates: all of them, and why no more
    r = recommend(client, history=history, k=12, candidates=CANDS)
    assert r.status_code == 200 and [i["item_id"] for i in r.json()["items"]] == unseen
    assert "candidates hold 5 distinct items" in r.json()["shortfall"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"candidates": []}, "candidates"),
        ({"candidates": HEAT}, "candidates"),
        ({"candidates": [HEAT, ""]}, "candidates.1"),
        ({"candidates": [True]}, "candidates.0"),
        ({"candidates": [1.5]}, "candidates.0"),
        ({"candidates": ["i00"] * 1001}, "candidates"),
        ({"history": [], "candidates": ["i00"]}, "history"),
        ({"candidates": ["i00"], "k": 3}, "k"),  # /score takes no k
        ({}, "candidates"),
    ],
)
def test_invalid_score_requests_name_the_field(client, body, field):
    r = client.post("/score", json={"history": [HEAT], **body})
    assert r.status_code == 422, r.text
    assert field in fields(r) and r.json()["fix"]
    if field.startswith("candidates") and "k" not in body and "history" not in body and body:
        r = recommend(client, candidates=body["candidates"])  # the same field of /recommend
        assert r.status_code == 422 and field in fields(r)


def test_unknown_candidates_get_422_with_close_titles(client):
    for path, extra in (("/score", {}), ("/recommend", {"k": 2, "on_unknown": "skip"})):
        r = client.post(path, json={"history": [HEAT], "candidates": ["i00", "Speeed"], **extra})
        assert r.status_code == 422 and r.json()["unknown"] == ["Speeed"]
        assert r.json()["suggestions"]["Speeed"] == ["Speed (1994)"]


def test_removed_items_cannot_be_candidates(tiny_run):
    from genrec import Recommender
    from genrec.serving.app import create_app

    with TestClient(create_app(Recommender.load(tiny_run, persist=False))) as c:
        assert c.delete("/items/i00").status_code == 200
        for path in ("/score", "/recommend"):
            r = c.post(path, json={"history": [HEAT], "candidates": ["i01", "i00"]})
            assert r.status_code == 422 and "were removed" in r.json()["detail"] and r.json()["fix"]
        r = c.post("/score", json={"history": ["i00"], "candidates": ["i01"]})  # a removed item is still history
        assert r.status_code == 200 and [i["item_id"] for i in r.json()["items"]] == ["i01"]


def test_rerank_requests(tiny_run):
    from genrec import Recommender
    from genrec.serving.app import create_app

    rec = Recommender.load(tiny_run, persist=False, decode="rerank", assist="popularity", assist_weight=0.5, rerank_depth=8)
    expected = [i.item_id for i in rec.recommend([HEAT], k=5)]
    with TestClient(create_app(rec)) as c:
        r = c.post("/recommend", json={"history": [HEAT], "k": 5})
        assert r.status_code == 200 and [i["item_id"] for i in r.json()["items"]] == expected
        assert c.get("/info").json()["decoding"]["rerank_depth"] == 8
        r = c.post("/recommend", json={"history": [HEAT], "k": 9})
        assert r.status_code == 422 and "rerank depth (8)" in r.json()["detail"] and r.json()["fix"]
        # another mode per request: beam keeps the assistant, whose beam weight the run has not stored
        r = c.post("/recommend", json={"history": [HEAT], "k": 5, "decode": "beam"})
        assert r.status_code == 422 and "no assistant weight is stored" in r.json()["detail"], r.text
        assert c.post("/recommend", json={"history": [HEAT], "k": 5, "decode": "exact"}).status_code == 200
    # a server without an assistant cannot rerank: the request says what is missing
    with TestClient(create_app(Recommender.load(tiny_run, persist=False))) as c:
        r = c.post("/recommend", json={"history": [HEAT], "k": 5, "decode": "rerank"})
        assert r.status_code == 422 and "no assistant is named" in r.json()["detail"], r.text


# ---------------------------------------------------------------------- catalogue


def test_items_lifecycle(client, run_dir):
    item = {"item_id": "web1", "title": "Zebra Planet (2024)"}
    r = client.post("/items", json=[item], headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json() == {"added": [item], "catalogue_size": 31}
    assert client.get("/items/web1").json() == item
    r = client.post("/items", json=[{"item_id": "web1", "title": "Other (2001)"}], headers=AUTH)
    assert r.status_code == 409 and "already in the catalogue" in r.json()["detail"]
    r = client.post("/items", json=[{"item_id": "web2", "title": HEAT}], headers=AUTH)
    assert r.status_code == 409
    # the new title is recommendable at once (exact decoding over the whole catalogue finds every item)
    r = recommend(client, k=30, decode="exact")
    assert "web1" in [i["item_id"] for i in r.json()["items"]]
    saved = json.loads((run_dir / "catalogue_changes.json").read_text())
    assert saved["added"] == [item]

    r = client.delete("/items/web1", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"removed": item, "catalogue_size": 30}
    assert client.get("/items/web1").status_code == 404
    assert client.delete("/items/web1", headers=AUTH).status_code == 404
    assert json.loads((run_dir / "catalogue_changes.json").read_text())["added"] == []


def test_unknown_item_ids(client):
    r = client.get("/items/nope")
    assert r.status_code == 404 and r.json()["unknown"] == ["nope"]
    assert client.get("/items/i01").json()["title"] == "Star Quest 2 (1981)"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ([{"item_id": "x"}], "0.title"),
        ([{"item_id": "x", "title": ""}], "0.title"),
        ([{"item_id": "x", "title": "T", "year": 2000}], "0.year"),
        ({"item_id": "x", "title": "T"}, "body"),
    ],
)
def test_invalid_additions(client, body, field):
    r = client.post("/items", json=body, headers=AUTH)
    assert r.status_code == 422 and field in fields(r)


def test_catalogue_changes_need_the_token(client):
    item = [{"item_id": "tok1", "title": "Token Film (2001)"}]
    r = client.post("/items", json=item)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/items", json=item, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post("/items", json=item, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.delete("/items/i00").status_code == 401
    assert client.delete("/items/i00", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/items/i00").status_code == 200  # reading needs no token
    assert client.get("/items/tok1").status_code == 404  # nothing was added


def test_without_a_token_anyone_may_change_the_catalogue(tiny_run):
    from genrec import Recommender
    from genrec.serving.app import create_app

    with TestClient(create_app(Recommender.load(tiny_run, persist=False))) as c:
        assert c.post("/items", json=[{"item_id": "open1", "title": "Open Film (2001)"}]).status_code == 201
        assert c.delete("/items/open1").status_code == 200
        assert c.get("/info").json()["token_required"] is False


def test_changes_survive_a_restart(client, run_dir):
    item = {"item_id": "keep1", "title": "Kept Film (1999)"}
    assert client.post("/items", json=[item], headers=AUTH).status_code == 201
    assert client.delete("/items/i02", headers=AUTH).status_code == 200

    from genrec import Recommender
    from genrec.serving.app import create_app

    with TestClient(create_app(Recommender.load(run_dir), token=TOKEN)) as again:
        assert again.get("/items/keep1").json() == item
        assert again.get("/items/i02").status_code == 404
        assert again.get("/info").json()["catalogue_size"] == 30


def test_a_failed_write_changes_nothing(client, run_dir, monkeypatch):
    path = run_dir / "catalogue_changes.json"
    before = path.read_bytes() if path.exists() else None

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    r = client.post("/items", json=[{"item_id": "lost1", "title": "Lost Film (2001)"}], headers=AUTH)
    assert r.status_code == 500 and "cannot write the catalogue changes" in r.json()["detail"]
    assert client.delete("/items/i00", headers=AUTH).status_code == 500
    monkeypatch.undo()
    assert client.get("/items/lost1").status_code == 404
    assert client.get("/items/i00").status_code == 200
    assert (path.read_bytes() if path.exists() else None) == before


def test_concurrent_adds_and_recommends_never_see_half_a_change(client, run_dir):
    items = [{"item_id": f"conc{n}", "title": f"Concurrent Film {n} ({2000 + n})"} for n in range(8)]

    def add(item):
        return client.post("/items", json=[item], headers=AUTH)

    def ask(_):
        return recommend(client, k=10)

    with ThreadPoolExecutor(8) as pool:
        adds = [pool.submit(add, i) for i in items]
        asks = [pool.submit(ask, n) for n in range(8)]
        assert all(f.result().status_code == 201 for f in adds)
        assert all(f.result().status_code == 200 for f in asks)
    saved = {a["item_id"] for a in json.loads((run_dir / "catalogue_changes.json").read_text())["added"]}
    assert {i["item_id"] for i in items} <= saved
    for i in items:
        assert client.get(f"/items/{i['item_id']}").json() == i
    sizes = client.get("/info").json()
    assert sizes["catalogue_size"] == 30 + sizes["items_added"] - sizes["items_removed"]


# ---------------------------------------------------------------------- metadata


def test_health_and_info(client):
    h = client.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["catalogue_size"] >= 30
    info = client.get("/info").json()
    assert info["backbone"] == "tiny-random-llama" and info["decode"] == "beam" and info["beams"] == 10
    assert info["dataset"]["name"] == "tiny" and info["token_required"] is True
    assert info["max_batch"] == 16 and info["max_wait_ms"] == 20 and info["adapter"].endswith("adapter")


def test_openapi_schema(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert {"/recommend", "/recommend/batch", "/score", "/items", "/items/{item_id}", "/health", "/info"} <= set(schema["paths"])
    req = schema["components"]["schemas"]["RecommendRequest"]
    assert req["properties"]["k"]["minimum"] == 1 and req["properties"]["k"]["maximum"] == 100
    assert req["properties"]["history"]["maxItems"] == 200 and req["properties"]["history"]["minItems"] == 1
    post = schema["paths"]["/recommend"]["post"]
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "candidates" in req["properties"] and "candidates" not in req.get("required", [])
    score = schema["components"]["schemas"]["ScoreRequest"]
    assert set(score["required"]) == {"history", "candidates"}
    assert score["properties"]["candidates"]["minItems"] == 1 and score["properties"]["candidates"]["maxItems"] == 1000
    assert {"400", "413", "422", "503"} <= set(schema["paths"]["/score"]["post"]["responses"])
    add = schema["paths"]["/items"]["post"]
    assert add["security"] and {"401", "403", "409", "413", "422"} <= set(add["responses"])
    assert "security" not in schema["paths"]["/items/{item_id}"]["get"]


def test_batch_with_candidates_ranks_each_history_among_its_own_list(client):
    rec = client.app.state.recommender
    histories = [[HEAT, "Casino (1995)"], ["i03"], [HEAT]]
    lists = [CANDS, ["i00", "i07", "Speed (1994)"], ["i05", "i01"]]
    r = client.post("/recommend/batch", json={"histories": histories, "k": 2, "candidates": lists})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    for history, cands, got in zip(histories, lists, results, strict=True):
        # what /recommend gives for that history and list alone, and what the library gives
        alone = recommend(client, history=history, k=2, candidates=cands).json()
        assert got["items"] == alone["items"]
        want = rec.recommend(history, k=2, candidates=cands)
        assert [i["item_id"] for i in got["items"]] == [i.item_id for i in want]
        ids = {rec.catalogue.item_ids[i] for i in rec.resolve_candidates(cands)}
        assert {i["item_id"] for i in got["items"]} <= ids
    # one list per history, named as a field
    r = client.post("/recommend/batch", json={"histories": histories, "candidates": lists[:2]})
    assert r.status_code == 422 and "candidates" in fields(r) and "2 candidate lists for 3 histories" in r.json()["detail"]
    r = client.post("/recommend/batch", json={"histories": histories, "candidates": [CANDS, [], CANDS]})
    assert r.status_code == 422 and "candidates.1" in fields(r)
