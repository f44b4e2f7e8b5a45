"""The API as a client meets it: every endpoint's answers and errors, live fallbacks that never answer 500,
the write token, reads while the pipeline holds the warehouse, and the README's DuckDB CLI line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig
from quant_assets_tests.support.loopback import LoopbackServer, Reply, json_reply
from quant_assets.demo.surface import build_surface_warehouse

KEY = "pk_api_SECRET_987654321"
# The server answers only requests addressed to this machine by name (TestClient's default is "testserver").
LOCAL = "http://127.0.0.1"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / ".quant"
    build_surface_warehouse(home / "warehouse.duckdb")
    return home


@pytest.fixture
def client(home):
    with TestClient(create_app(ApiConfig(warehouse_path=home / "warehouse.duckdb")), base_url=LOCAL) as client:
        yield client


def test_projector_answers_the_macro_rows_with_the_overlay(client):
    body = client.get("/api/projector", params={"amount": 10000}).json()
    lines = body["lines"]
    assert [line["symbol"] for line in lines[-2:]] == ["CASH", "TOTAL"]
    assert round(sum(line["dollars"] for line in lines[:-1]), 2) == lines[-1]["dollars"] == 10000
    for line in lines[:-2]:
        assert line["quote"]["source"] == "last_close" and line["live_price"] == line["quote"]["price"]
        assert line["shares"] == pytest.approx(line["dollars"] / line["live_price"], abs=1e-5)
        for band in line["bands"]:
            assert band["p10"] <= band["p50"] <= band["p90"] and band["price_p10"] <= band["price_p90"]
    assert body["synthetic_symbols"] == ["BTC"] and body["as_of"] == "2022-12-28"
    assert body["freshness"]["served_from_cache"] is False and body["freshness"]["warehouse_modified_at"]


def test_projector_lines_carry_the_probability_of_a_gain_with_its_label(client, home):
    import duckdb

    lines = client.get("/api/projector", params={"amount": 10000}).json()["lines"]
    positions = {line["symbol"]: line for line in lines if line["rank"] is not None}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        stored = {row[0]: row[1:] for row in con.execute(
            "SELECT symbol, confidence, confidence_source FROM projections.allocations "
            "WHERE as_of = (SELECT max(as_of) FROM projections.allocations)").fetchall()}
    assert {line["confidence_source"] for line in positions.values()} == {"calibrated", "base_rate"}
    for symbol, line in positions.items():
        assert line["confidence"] == pytest.approx(stored[symbol][0], abs=5e-5)
        assert line["confidence_source"] == stored[symbol][1]
        assert line["confidence_label"] == {"calibrated": "calibrated out of fold",
                                            "base_rate": "base rate — no measured skill"}[line["confidence_source"]]
    assert all(line["confidence_label"] is None for line in lines if line["rank"] is None)


@pytest.mark.parametrize(("query", "status", "says"), [
    ({}, 422, "amount: Field required"),
    ({"amount": "-5"}, 422, "amount must be a positive number"),
    ({"amount": "ten"}, 422, "amount: Input should be a valid number"),
    ({"amount": "nan"}, 422, "amount: Input should be a finite number"),
    ({"amount": "2e12"}, 422, "above the 1e+12 dollar limit"),
    ({"amount": "100", "as_of": "2999-01-01"}, 422, "as_of 2999-01-01 is in the future"),
    ({"amount": "100", "as_of": "yesterday"}, 422, "as_of: Input should be a valid date"),
    ({"amount": "100", "as_of": "2022-06-30"}, 404, "no projection as of 2022-06-30"),
    ({"amount": "100", "as_of": "2023-01-05"}, 404, "after the latest projection (2022-12-28)"),
])
def test_projector_errors_are_readable(client, query, status, says):
    response = client.get("/api/projector", params=query)
    assert response.status_code == status and says in response.json()["detail"]


def test_backtest_series_summary_and_open_period(client):
    body = client.get("/api/backtest").json()
    assert set(body["series"]) == {"half_kelly", "full_kelly", "equal_weight", "inverse_volatility", "sp500_buy_hold"}
    for points in body["series"].values():
        # Six decisions; the last period is still in progress, so it is marked live (open_period), not compounded.
        assert all(p["drawdown"] <= 0 for p in points) and len(points) == 5
    assert {row["strategy"] for row in body["summary"]} == set(body["series"])
    equal = next(row for row in body["summary"] if row["strategy"] == "equal_weight")
    assert equal["psr_vs_equal_weight"] == 0.5 and equal["trials"] == len(body["series"]) and equal["sharpe_se"] > 0
    assert body["open_period"]["since"] == "2022-12-28" and body["open_period"]["half_kelly_return"] == 0.0


@pytest.mark.parametrize(("symbols", "says"), [
    ("AAPL", "2 to 4 symbols"), ("AAPL,MSFT,JNJ,SP500,BTC", "2 to 4 symbols"), ("AAPL,ZZZ", "unknown symbol ZZZ"),
    ("AAPL,aapl", "lists a symbol twice"), (",", "2 to 4 symbols"),
])
def test_compare_errors_are_readable(client, symbols, says):
    response = client.get("/api/compare", params={"symbols": symbols})
    assert response.status_code == 422 and says in response.json()["detail"]
    assert "symbols: Field required" in client.get("/api/compare").json()["detail"]


def test_compare_two_symbols(client):
    body = client.get("/api/compare", params={"symbols": "aapl,BTC"}).json()
    aapl, btc = body["symbols"]
    assert (aapl["symbol"], btc["symbol"], btc["synthetic"], aapl["synthetic"]) == ("AAPL", "BTC", True, False)
    for entry in (aapl, btc):
        assert [b["horizon"] for b in entry["bands"]] == ["1w", "1m", "3m", "1y"]
        assert entry["history"][0]["value"] == pytest.approx(100) and len(entry["history"]) > 200
        assert 0 <= entry["agreement"]["1m"]["share"] <= 1 and entry["track_record"]
        assert entry["quote"]["price"] == entry["last_close"]


BAD_PLAYS = [
    ({"shares": 0}, "shares must be a positive number"),
    ({"shares": -3}, "shares must be a positive number"),
    ({"symbol": "NOPE"}, "symbol 'NOPE' is not in the warehouse"),
    ({"entry_price": 0}, "entry_price must be a positive number"),
    ({"entry_date": "2999-01-01"}, "entry_date 2999-01-01 is in the future"),
    ({"entry_date": "03/10/2022"}, "entry_date: Input should be a valid date"),
    ({"note": "x" * 600}, "note is 600 characters long"),
    ({"shares": "many"}, "shares: Input should be a valid number"),
]
GOOD_PLAY = {"symbol": "AAPL", "shares": 10, "entry_price": 120.0, "entry_date": "2022-12-05", "note": "core"}


def test_plays_add_edit_remove_with_live_pnl_and_band(client):
    created = client.post("/api/plays", json=GOOD_PLAY)
    assert created.status_code == 201
    play = created.json()
    assert play["pnl"] == pytest.approx(play["value"] - 1200.0, abs=0.01) and play["quote"]["source"] == "last_close"
    # No advice stood on the entry day, so the first one after it, at the horizon covering the days since then.
    assert play["band"]["p10"] <= play["band"]["p50"] <= play["band"]["p90"] and play["band"]["as_of"] == "2022-12-28"
    assert play["band"]["horizon"] == "1w"
    edited = client.patch(f"/api/plays/{play['play_id']}", json={"shares": 20})
    assert edited.status_code == 200 and edited.json()["cost"] == 2400.0 and edited.json()["note"] == "core"
    replaced = client.put(f"/api/plays/{play['play_id']}", json={**GOOD_PLAY, "symbol": "BTC", "entry_price": 16000})
    assert replaced.json()["symbol"] == "BTC"
    listing = client.get("/api/plays").json()
    assert listing["total_pnl"] == pytest.approx(sum(p["pnl"] for p in listing["plays"]), abs=0.02)
    assert client.delete(f"/api/plays/{play['play_id']}").status_code == 204
    assert client.get("/api/plays").json()["plays"] == []


@pytest.mark.parametrize(("change", "says"), BAD_PLAYS)
def test_bad_plays_are_refused_and_nothing_is_stored(client, change, says):
    kept = client.post("/api/plays", json=GOOD_PLAY).json()
    for attempt in (client.post("/api/plays", json={**GOOD_PLAY, **change}),
                    client.put(f"/api/plays/{kept['play_id']}", json={**GOOD_PLAY, **change})):
        assert attempt.status_code == 422 and says in attempt.json()["detail"]
    assert [p["shares"] for p in client.get("/api/plays").json()["plays"]] == [10.0]
    client.delete(f"/api/plays/{kept['play_id']}")


def test_plays_unknown_ids(client):
    for response in (client.delete("/api/plays/999"), client.put("/api/plays/999", json=GOOD_PLAY),
                     client.patch("/api/plays/999", json={"shares": 2})):
        assert response.status_code == 404 and "no play with id 999" in response.json()["detail"]
    assert client.delete("/api/plays/0").status_code == 422


def test_health_reports_dates_symbols_and_the_live_state(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["projections_as_of"] == "2022-12-28"
    assert body["symbols"] == ["AAPL", "BTC", "JNJ", "MSFT", "SP500"]
    assert body["live"]["enabled"] is False and body["writes_require_token"] is False


def test_health_without_a_warehouse_says_so(tmp_path):
    with TestClient(create_app(ApiConfig(warehouse_path=tmp_path / "warehouse.duckdb")), base_url=LOCAL) as client:
        body = client.get("/api/health").json()
        assert "make demo" in body["status"] and body["projections_as_of"] is None
        missing = client.get("/api/projector", params={"amount": 100})
        assert missing.status_code == 404 and "make demo" in missing.json()["detail"]


@pytest.mark.parametrize("failure", [
    lambda request: Reply(500, b"oops"),
    lambda request: Reply(429, b"", {"Retry-After": "120"}),
    lambda request: Reply(200, b"\x00\xffnot json"),
    lambda request: json_reply({"ticker": None, "price": "NaN", "time": "later"}),
    lambda request: Reply(200, b"{}", delay=1.0),
], ids=["500", "429", "garbage", "wrong-shape", "timeout"])
def test_live_sources_failing_never_give_a_500_nor_show_the_key(home, failure, caplog):
    caplog.set_level(logging.DEBUG)
    with LoopbackServer(failure) as polygon, LoopbackServer(failure) as coinbase:
        config = ApiConfig(warehouse_path=home / "warehouse.duckdb", polygon_key=KEY, live_enabled=True,
                           polygon_url=polygon.url, coinbase_url=coinbase.url, live_timeout_seconds=0.3)
        with TestClient(create_app(config), base_url=LOCAL, raise_server_exceptions=False) as client:
            responses = [client.get("/api/projector", params={"amount": 5000}), client.get("/api/backtest"),
                         client.get("/api/compare", params={"symbols": "AAPL,BTC"}), client.get("/api/plays"),
                         client.get("/api/health"), client.get("/api/projector", params={"amount": "-1"})]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 422]
    assert all(line["quote"]["source"] == "last_close" for line in responses[0].json()["lines"] if line["quote"])
    assert KEY not in "".join(r.text for r in responses) + caplog.text


def test_writes_require_the_token_when_it_is_set(home):
    config = ApiConfig(warehouse_path=home / "warehouse.duckdb", token="s3cret-token")
    with TestClient(create_app(config), base_url=LOCAL) as client:
        refused = client.post("/api/plays", json=GOOD_PLAY)
        assert refused.status_code == 401 and "QUANT_API_TOKEN" in refused.json()["detail"]
        assert client.get("/api/plays").status_code == 200
        made = client.post("/api/plays", json=GOOD_PLAY, headers={"X-API-Token": "s3cret-token"})
        assert made.status_code == 201
        assert client.delete(f"/api/plays/{made.json()['play_id']}").status_code == 401
        assert client.delete(f"/api/plays/{made.json()['play_id']}", headers={"X-API-Token": "s3cret-token"}).status_code == 204


def test_serving_beyond_loopback_needs_a_token():
    env = {k: v for k, v in os.environ.items() if k != "QUANT_API_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "quant_assets.api", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "QUANT_API_TOKEN" in result.stderr


def test_reads_answer_while_a_writer_holds_the_warehouse(home):
    path = home / "warehouse.duckdb"
    with TestClient(create_app(ApiConfig(warehouse_path=path, write_wait_seconds=0.3)), base_url=LOCAL) as client:
        assert client.get("/api/projector", params={"amount": 2500}).status_code == 200
        # The writer holds the file until told to let go: a fixed hold let it go early on a loaded machine.
        holder = subprocess.Popen([sys.executable, "-c", (
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "con.execute('CREATE OR REPLACE TABLE main.touch AS SELECT 1 AS x'); print('held', flush=True); "
            "sys.stdin.readline()"), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            response = client.get("/api/projector", params={"amount": 777})
            backtest = client.get("/api/backtest")
            write = client.post("/api/plays", json=GOOD_PLAY)
        finally:
            holder.communicate("release\n", timeout=30)
    assert response.status_code == 200
    assert response.json()["freshness"]["served_from_cache"] is True
    assert "pipeline is writing" in response.json()["freshness"]["note"]
    assert round(sum(line["dollars"] for line in response.json()["lines"][:-1]), 2) == 777
    assert backtest.status_code == 503 and "try again" in backtest.json()["detail"]
    # A play is checked against the warehouse's symbols, which it cannot read yet; the answer names no path.
    assert write.status_code == 503 and "try again" in write.json()["detail"]
    assert str(home) not in write.text


def test_the_readme_duckdb_line_works(home):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(l.strip() for l in readme.splitlines() if l.strip().startswith("duckdb ~/.quant/warehouse.duckdb"))
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60,
                            env={"HOME": str(home.parent), "PATH": f"{VENV_BIN}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "TOTAL" in result.stdout and "CASH" in result.stdout


def test_the_api_imports_neither_dagster_nor_torch(home):
    code = ("import sys; from fastapi.testclient import TestClient; from quant_assets.api import create_app; "
            f"client = TestClient(create_app(), base_url={LOCAL!r}); "
            "assert client.get('/api/projector?amount=100').status_code == 200; "
            "print(sorted(m for m in ('dagster', 'torch', 'lightgbm', 'xgboost', 'mlflow', 'cvxpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QUANT_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
