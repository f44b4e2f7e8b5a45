"""The overlap and restatement rules of lib/market/adjustments.py, and a partial network answer, on a small
warehouse with a loopback Polygon server."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from quant_assets.lib.market.adjustments import find_restatement, store_restatement, stored_overlap
from quant_assets.lib.market.providers import ProviderConfig, polygon
from quant_assets.lib.market.providers.schema import PRICE_SCHEMA
from quant_assets.lib.market.slices import Slice, load_prices
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets_tests.support.loopback import LoopbackServer, Request, json_reply

STORED = [date(2024, 1, 1) + timedelta(days=i) for i in range(12) if (date(2024, 1, 1) + timedelta(days=i)).weekday() < 5]
SLICE = [date(2024, 1, 15) + timedelta(days=i) for i in range(5)]  # Monday to Friday
KEY = "pk-adjustments-secret"


def bars(symbol: str, days: list[date], close=lambda d: 100.0 + d.day) -> pl.DataFrame:
    return pl.DataFrame([(symbol, d, "equity", close(d), close(d), close(d), close(d), 1000.0, "polygon") for d in days],
                        schema=PRICE_SCHEMA, orient="row")


@pytest.fixture
def warehouse(tmp_path):
    store = Warehouse(tmp_path / "warehouse.duckdb")
    store.replace("market.prices", bars("ACME", STORED).to_arrow())
    return store


def test_a_corrected_print_inside_the_overlap_restates_that_day_only(warehouse):
    corrected = STORED[-3]
    fresh = bars("ACME", [*STORED[-5:], *SLICE], lambda d: (100.0 + d.day) * (1.05 if d == corrected else 1.0))
    overlap = stored_overlap(warehouse, SLICE[0])
    assert overlap["date"].to_list() == STORED[-5:]
    found = find_restatement(warehouse, overlap, fresh, SLICE[0], SLICE[-1])
    event = found.events.row(0, named=True)
    assert (event["factor"], event["effective_date"], event["restated_from"], event["rows_restated"]) == \
        (pytest.approx(1.05), STORED[-2], corrected, 1)
    store_restatement(warehouse, found)
    stored = warehouse.query("SELECT date, close FROM market.prices ORDER BY date")
    assert list(stored["close"]) == [(100.0 + d.day) * (1.05 if d == corrected else 1.0) for d in STORED]
    assert warehouse.query("SELECT count(*) n FROM market.adjustments")["n"][0] == 1


def test_agreeing_overlap_restates_nothing(warehouse):
    fresh = bars("ACME", [*STORED[-5:], *SLICE])
    assert find_restatement(warehouse, stored_overlap(warehouse, SLICE[0]), fresh, SLICE[0], SLICE[-1]) is None


def test_a_network_answer_for_three_of_five_days_keeps_the_other_two(warehouse, monkeypatch):
    answered = [SLICE[0], SLICE[2], SLICE[4]]

    def handler(request: Request):
        first, last = (date.fromisoformat(p) for p in request.path.split("/")[8:10])
        days = [d for d in [*STORED, *answered] if first <= d <= last]
        return json_reply({"status": "OK", "results": [
            {"o": 1.0, "h": 1.0, "l": 1.0, "c": 100.0 + d.day + (0.5 if d in SLICE else 0.0), "v": 1000.0,
             "t": int(datetime(d.year, d.month, d.day, 5, tzinfo=UTC).timestamp() * 1000)} for d in days]})

    warehouse.replace("market.prices", pl.concat([bars("ACME", STORED), bars("ACME", SLICE)]).to_arrow())
    config = ProviderConfig(provider="polygon", universe=("ACME",), history_start=STORED[0], seed=7, polygon_api_key=KEY)
    assert KEY not in repr(config)
    with LoopbackServer(handler) as server:
        monkeypatch.setattr(polygon, "fetch_polygon_prices",
                            functools.partial(polygon.fetch_polygon_prices, base_url=server.url))
        result = load_prices(config, warehouse, Slice(SLICE[0], SLICE[-1], datetime(2024, 2, 1, tzinfo=UTC)))
    frame = result.frame.sort("date")
    assert frame["date"].to_list() == SLICE
    assert frame["close"].to_list() == [100.0 + d.day + (0.5 if d in answered else 0.0) for d in SLICE]
    assert result.unanswered == {"ACME": [str(SLICE[1]), str(SLICE[3])]}
    assert result.restatement is None  # the overlap days agree (only the open moved, not the close)
    assert not any(KEY in w for w in result.warnings) and KEY not in str(result.metadata())
