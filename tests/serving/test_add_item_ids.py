"""Adding items can neither hijack an existing title nor smuggle special tokens into
prompts (issue 12, item 8). Through the HTTP app, as tests/serving/test_app.py does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests._util import requires_packaged

pytestmark = requires_packaged
HEAT = "Heat (1995)"


@pytest.fixture
def client(run_copy):
    from genrec import Recommender
    from genrec.serving.app import create_app

    with TestClient(create_app(Recommender.load(run_copy), max_wait_ms=1)) as c:
        yield c


@pytest.fixture
def heat_id(tiny_dataset) -> str:
    cat = tiny_dataset.catalogue
    return cat.item_ids[cat.index_of_title[HEAT]]


@pytest.mark.parametrize(
    ("item", "status", "needle"),
    [
        ({"item_id": HEAT, "title": "Hijack (2030)"}, 409, "is the title of item"),
        ({"item_id": "heat (1995)", "title": "Hijack (2030)"}, 409, "is the title of item"),
        ({"item_id": "x1", "title": "i05"}, 409, "is the id of item"),
        ({"item_id": "x1", "title": "New <|im_start|> Film (2030)"}, 422, "<|im_start|>"),
        ({"item_id": "x1", "title": "New <|endoftext|> Film (2030)"}, 422, "special token"),
    ],
)
def test_refused_and_nothing_changes(client, heat_id, item, status, needle):
    before = client.get("/health").json()["catalogue_size"]
    r = client.post("/items", json=[item])
    assert r.status_code == status, r.text
    body = r.json()
    assert needle in body["detail"] and body.get("fix"), body
    assert client.get("/health").json()["catalogue_size"] == before
    # the history entry still means the old item
    assert client.get(f"/items/{heat_id}").json()["title"] == HEAT
    got = client.post("/recommend", json={"history": [HEAT], "k": 3}).json()
    assert heat_id not in {i["item_id"] for i in got["items"]}  # still excluded as the history's item


def test_two_new_items_may_not_cross_ids_and_titles(client):
    r = client.post("/items", json=[{"item_id": "x1", "title": "Alpha (2030)"}, {"item_id": "alpha (2030)", "title": "Beta (2030)"}])
    assert r.status_code == 409 and "title of another new item" in r.json()["detail"], r.text
    r = client.post("/items", json=[{"item_id": "x1", "title": "Alpha (2030)"}])
    assert r.status_code == 201, r.text
