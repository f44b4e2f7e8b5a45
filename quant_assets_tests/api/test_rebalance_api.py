"""/api/rebalance and /api/alerts as a client meets them: plays added through /api/plays, the day's stored
scenarios, the settings as query parameters, readable refusals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig
from quant_assets_tests.support.projections import AS_OF, seed_projections, seed_sizing_scenarios

LOCAL = "http://127.0.0.1"


@pytest.fixture
def client(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    seed_sizing_scenarios(tmp_path / "warehouse.duckdb")
    with TestClient(create_app(ApiConfig(warehouse_path=tmp_path / "warehouse.duckdb")), base_url=LOCAL) as client:
        for symbol, shares in (("AAPL", 30), ("JNJ", 10)):
            added = client.post("/api/plays", json={"symbol": symbol, "shares": shares, "entry_price": 100,
                                                    "entry_date": "2022-10-03"})
            assert added.status_code == 201, added.text
        yield client


def test_rebalance_with_cash_added_answers_lines_and_a_summary(client):
    answer = client.get("/api/rebalance", params={"cash": 1000, "cost_bp": 12, "min_fee": 0.5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    summary, lines = body["summary"], {line["symbol"]: line for line in body["lines"]}
    assert summary["as_of"] == str(AS_OF) and summary["terms"]["cost_bp"] == 12 and summary["terms"]["min_fee"] == 0.5
    assert summary["total"] == pytest.approx(30 * 130 + 10 * 177 + 1000)
    assert set(lines) == {"AAPL", "BTC", "JNJ"}
    traded = [line for line in lines.values() if line["side"] != "HOLD"]
    assert traded and all(line["cost"] == pytest.approx(max(0.5, 12e-4 * line["dollars"])) for line in traded)
    flows = sum(line["dollars"] * (1 if line["side"] == "BUY" else -1) + line["cost"] for line in traded)
    assert summary["cash_left"] == pytest.approx(1000 - flows, abs=0.01)
    assert body["freshness"]["read_at"]


@pytest.mark.parametrize(("params", "says"), [
    ({"cash": -50000}, "a withdrawal of $50,000.00 is beyond"),
    ({"cash": 100, "slippage_bp": 3}, "unknown rebalance setting slippage_bp"),
    ({"cash": 100, "turnover_cap": 5}, "turnover_cap must be 0 to 2"),
    ({"cash": "lots"}, "cash: Input should be a valid number"),
])
def test_bad_rebalance_input_is_one_sentence(client, params, says):
    answer = client.get("/api/rebalance", params=params)
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.text


def test_an_earlier_day_without_scenarios_is_not_found(client):
    answer = client.get("/api/rebalance", params={"cash": 100, "as_of": "2022-11-01"})
    assert answer.status_code == 404 and "no advice with sizing scenarios stored for 2022-11-01" in answer.json()["detail"]


def test_alerts_name_the_drift_and_the_day(client):
    body = client.get("/api/alerts", params={"tolerance": 0.1}).json()
    drift = {a["symbol"]: a for a in body["alerts"] if a["kind"] == "drift"}
    # 30 × $130 and 10 × $177 held: AAPL 68.8% against 25%, JNJ 31.2% against 0%, BTC 0% against 35%.
    assert set(drift) == {"AAPL", "BTC", "JNJ"} and body["tolerance"] == 0.1
    assert drift["JNJ"]["advised_weight"] == 0 and f"advised on {AS_OF}" in drift["JNJ"]["message"]
