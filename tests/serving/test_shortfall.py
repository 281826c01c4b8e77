"""Fewer than k items always come with the reason: Python, CLI and HTTP (issue 12, item 7).

The tiny random model writes no catalogue title when decoding freely, and exact
decoding with a budget of one expanded node cannot complete a single title: both
return fewer than k items, which must never look like a complete, empty answer.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from genrec.cli import _register, app
from tests._util import requires_packaged

pytestmark = requires_packaged
_register()
HEAT = "Heat (1995)"


def test_python_exact_budget_and_free_text(tiny_run):
    from genrec import Recommender

    exact = Recommender.load(tiny_run, persist=False, decode="exact", max_expansions=1)
    got = exact.recommend([HEAT], k=5)
    assert len(got) < 5
    assert got.shortfall.startswith(f"only {len(got)} of 5 items") and "max_expansions" in got.shortfall
    assert got.to_dict()["shortfall"] == got.shortfall
    free = Recommender.load(tiny_run, persist=False, decode="free", beams=5)
    got = free.recommend([HEAT], k=5)
    assert len(got) < 5 and "no catalogue title" in got.shortfall
    # a full list says nothing
    full = Recommender.load(tiny_run, persist=False).recommend([HEAT], k=5)
    assert len(full) == 5 and full.shortfall is None and full.to_dict()["shortfall"] is None


def test_cli_reports_the_shortfall(tiny_run):
    r = CliRunner().invoke(app, ["recommend", HEAT, "--run", str(tiny_run), "-k", "3", "--decode", "free", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert len(body["items"]) < 3 and "no catalogue title" in body["shortfall"]
    r = CliRunner().invoke(app, ["recommend", HEAT, "--run", str(tiny_run), "-k", "3", "--decode", "free"])
    assert r.exit_code == 0 and "no catalogue title" in r.output, r.output


def test_cli_refuses_zero_beams(tiny_run):
    r = CliRunner().invoke(app, ["recommend", HEAT, "--run", str(tiny_run), "--beams", "0"])
    assert r.exit_code == 2 and "beams" in r.output, r.output


@pytest.mark.parametrize("path", ["/recommend", "/recommend/batch"])
def test_http_reports_the_shortfall(tiny_run, path):
    from genrec import Recommender
    from genrec.serving.app import create_app

    service = create_app(Recommender.load(tiny_run, persist=False), max_wait_ms=1)
    body = {"k": 3, "decode": "free"} | ({"history": [HEAT]} if path == "/recommend" else {"histories": [[HEAT]]})
    with TestClient(service) as client:
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        result = r.json() if path == "/recommend" else r.json()["results"][0]
        assert len(result["items"]) < 3 and "no catalogue title" in result["shortfall"]
        full = client.post("/recommend", json={"history": [HEAT], "k": 3}).json()
        assert len(full["items"]) == 3 and full["shortfall"] is None
        assert "shortfall" in client.get("/openapi.json").json()["components"]["schemas"]["RecommendResponse"]["properties"]
