"""/api/why as a client meets it: each position's members, skill, probability of a gain and limit as stored, and
one-sentence refusals of an unknown symbol or day and of a bad date."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig
from quant_assets.demo.surface import build_surface_warehouse
from quant_assets.lib.storage.warehouse import Warehouse

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    path = tmp_path_factory.mktemp("why") / "warehouse.duckdb"
    build_surface_warehouse(path)
    return path


@pytest.fixture
def client(path):
    with TestClient(create_app(ApiConfig(warehouse_path=path)), base_url=LOCAL) as client:
        yield client


def test_why_answers_one_position_as_stored(client, path):
    answer = client.get("/api/why", params={"symbol": "btc"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [line] = body["lines"]
    stored = Warehouse(path).query(
        "SELECT * FROM projections.allocations WHERE as_of = (SELECT max(as_of) FROM projections.allocations) "
        "AND symbol = 'BTC'").iloc[0]
    assert body["as_of"] == str(stored["as_of"].date()) and line["symbol"] == "BTC" and line["horizon"] == "1m"
    assert [m["model"] for m in line["members"]] == ["garch", "lightgbm", "ridge"]
    assert line["member_spread"] > 0 and line["skill"] == pytest.approx(0.03)
    assert line["prob_gain"] == pytest.approx(stored["prob_gain"]) and line["confidence_source"] == "calibrated"
    assert line["weight"] == pytest.approx(stored["half_kelly_weight"])
    assert line["weight_limit"] == stored["weight_limit"] and line["weight_limit_reason"]


def test_why_answers_every_position_of_the_day(client):
    body = client.get("/api/why").json()
    assert {line["symbol"] for line in body["lines"]} == {"AAPL", "MSFT", "JNJ", "SP500", "BTC"}
    limits = {line["symbol"]: line["weight_limit"] for line in body["lines"]}
    assert limits["JNJ"] == "not eligible"


@pytest.mark.parametrize(("params", "status", "says"), [
    ({"symbol": "TSLA"}, 404, "no advice on TSLA stored for"),
    ({"as_of": "2001-01-02"}, 404, "no advice stored for 2001-01-02"),
    ({"as_of": "yesterday"}, 422, "as_of"),
])
def test_unknown_or_bad_input_is_one_sentence(client, params, status, says):
    answer = client.get("/api/why", params=params)
    assert answer.status_code == status and says in answer.json()["detail"], answer.text
    assert "\n" not in answer.json()["detail"]
