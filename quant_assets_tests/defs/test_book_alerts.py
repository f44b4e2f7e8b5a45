"""The book_alerts sensor as the daemon runs it: after a materialization of ``allocations``, the person's plays are
checked against the advice and the alerts recorded as an observation of that day's ``allocations``."""

import math
from datetime import timedelta

import dagster as dg

from quant_assets.definitions import build_definitions
from quant_assets.lib.storage import personal
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import get_settings
from quant_assets_tests.support.projections import AS_OF, seed_projections, seed_sizing_scenarios


def test_alerts_after_the_days_advice_name_the_band_and_the_day(quant_home, monkeypatch):
    # Wide enough that the one play (100% of the book against 25% advised) raises no drift alert.
    monkeypatch.setenv("QUANT_REBALANCE_TOLERANCE", "0.8")
    settings = get_settings()
    seed_projections(settings.warehouse_path)
    seed_sizing_scenarios(settings.warehouse_path)
    with Warehouse(settings.warehouse_path).writer() as con:
        con.execute("INSERT INTO market.prices (symbol, date, asset_class, close, source) "
                    "VALUES ('AAPL', ?, 'equity', 100.0, 'sample')", [AS_OF + timedelta(days=1)])
    with personal.open_personal(settings.home / "personal.duckdb", settings.warehouse_path).writer() as con:
        personal.insert_play(con, personal.validate_play("AAPL", 10, 120, AS_OF, None, AS_OF))
    defs = build_definitions()
    sensor = defs.get_sensor_def("book_alerts")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("allocations", partition=str(AS_OF)))
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    [observation] = result.asset_events
    assert observation.partition == str(AS_OF) and observation.metadata["alerts"].value == 1
    # $100 the day after the advice: below AAPL's 1w P10, the advice's close × exp(−1.28 · 0.3 · √(1/52)).
    p10 = 130.0 * math.exp(-1.28 * 0.3 * math.sqrt(1 / 52))
    message = observation.metadata["messages"].value
    assert f"AAPL closed at $100.00 on 2022-12-29, below P10 (${p10:,.2f})" in message and "advice of 2022-12-28" in message
    assert "1 alert(s) after the advice of 2022-12-28" in result.skip_message
