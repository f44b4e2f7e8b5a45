"""A month of sessions replayed day by day through the automation's market schedule: the clock (QUANT_TODAY)
reveals the sample one day at a time, and each scheduled run adds exactly that day's final bars."""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl

from quant_assets.definitions import build_definitions
from quant_assets.lib.calendar import equity_sessions
from quant_assets.lib.providers.sample import load_sample
from quant_assets.lib.warehouse import Warehouse
from quant_assets.settings import Settings

FIRST_DAY, LAST_DAY = date(2022, 6, 1), date(2022, 6, 30)


def stored_rows() -> pl.DataFrame:
    return pl.from_pandas(Warehouse(Settings().warehouse_path).query(
        "SELECT symbol, date, close FROM market.prices ORDER BY symbol, date")).with_columns(pl.col("date").cast(pl.Date))


def test_each_replayed_day_adds_exactly_that_days_rows(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_HISTORY_START", "2022-05-01")
    settings = Settings()
    truth, _ = load_sample(settings.universe, settings.history_start, settings.seed)
    monkeypatch.setenv("QUANT_TODAY", str(FIRST_DAY - timedelta(days=1)))
    with dg.instance_for_test() as instance:
        day = FIRST_DAY - timedelta(days=1)
        build_definitions().resolve_job_def("market").execute_in_process(instance=instance, tags={
            "dagster/asset_partition_range_start": "2022-05-01", "dagster/asset_partition_range_end": str(day)})
        before = stored_rows()
        while day < LAST_DAY:
            day += timedelta(days=1)
            monkeypatch.setenv("QUANT_TODAY", str(day))
            defs = build_definitions()
            schedule = defs.resolve_schedule_def("after_utc_midnight")
            tick = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(minutes=30)
            [request] = schedule.evaluate_tick(dg.build_schedule_context(instance=instance,
                                                                         scheduled_execution_time=tick)).run_requests
            run = defs.resolve_job_def("market").execute_in_process(instance=instance, tags=request.tags)
            assert run.success
            assert [e.passed for e in run.get_asset_check_evaluations()] == [True]

            after = stored_rows()
            added = after.join(before, on=["symbol", "date", "close"], how="anti")
            expected = truth.filter(pl.col("date") == day).select("symbol", "date", "close").sort("symbol")
            assert added.sort("symbol").equals(expected), day
            assert after.height == before.height + expected.height  # nothing else changed or vanished
            before = after
    sessions = equity_sessions(FIRST_DAY, LAST_DAY)
    assert len(sessions) >= 20
    assert before.filter(pl.col("symbol") == "AAPL", pl.col("date") >= FIRST_DAY)["date"].to_list() == sessions
