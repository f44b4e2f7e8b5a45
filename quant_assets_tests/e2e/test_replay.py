"""Sessions replayed day by day through the automation: the clock (QUANT_TODAY) reveals the sample one day at a
time. The market schedule adds exactly each day's final bars; with the automation sensor's requests launched as the
daemon launches them, each session also adds its features and one as-of day of advice, a window opening during the
replay is fitted once, and its ensemble learns from the earlier window's outcomes as their labels realize."""

import tempfile
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.defs.automation import RANGE_END, RANGE_START
from quant_assets.defs.features.assets import FEATURES_KEY
from quant_assets.definitions import build_definitions
from quant_assets.lib.market.calendar import equity_sessions
from quant_assets.lib.market.providers.sample import load_sample
from quant_assets.lib.walk_forward.tracking import find_runs
from quant_assets.lib.storage.warehouse import Warehouse
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
            checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
            assert checks == {"last_session_present": True, "restatements_propagated": True}

            after = stored_rows()
            added = after.join(before, on=["symbol", "date", "close"], how="anti")
            expected = truth.filter(pl.col("date") == day).select("symbol", "date", "close").sort("symbol")
            assert added.sort("symbol").equals(expected), day
            assert after.height == before.height + expected.height  # nothing else changed or vanished
            before = after
    sessions = equity_sessions(FIRST_DAY, LAST_DAY)
    assert len(sessions) >= 20
    assert before.filter(pl.col("symbol") == "AAPL", pl.col("date") >= FIRST_DAY)["date"].to_list() == sessions


# The living system over four weeks of sessions: equities only, so that every run follows a session close.
# The features' lookahead audit is left to test_feature_audit: twenty rebuilds of it would add minutes, not checks.
SLOW_AUDIT = dg.AssetSelection.checks(dg.AssetCheckKey(FEATURES_KEY, "feature_lookahead_audit"))
LIVING_UNIVERSE = "AAPL,MSFT,JNJ,SP500"
HISTORY_START, SETUP_DAY, REPLAY_FIRST, REPLAY_LAST = "2019-06-01", date(2022, 4, 17), date(2022, 4, 18), date(2022, 5, 13)
EARLIER_WINDOW, OPENING_WINDOW = "2022-04-01", "2022-05-01"


def run_requested(defs: dg.Definitions, instance: dg.DagsterInstance, cursor):
    """One pass of the automation sensor as the daemon makes it: evaluate every condition, then launch what it
    requested, one run per partition key in dependency order, a single-run backfill for a range of days. Returns
    the new cursor and the keys materialized, by asset."""
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    graph = defs.resolve_asset_graph()
    runs: dict[object, list[dg.AssetKey]] = {}
    for key in graph.toposorted_asset_keys:
        for partition in evaluation.get_requested_partitions(key):
            node = graph.get(key)
            single_run = node.partitions_def is not None and node.backfill_policy == dg.BackfillPolicy.single_run()
            runs.setdefault("range" if single_run else partition, []).append((key, partition))
    done: dict[dg.AssetKey, set[str]] = {}
    assets = [*defs.assets, *defs.asset_checks]
    for run_key, members in sorted(runs.items(), key=lambda item: min(order(graph, k) for k, _ in item[1])):
        keys = sorted({k for k, _ in members}, key=lambda k: order(graph, k))
        days = sorted(p for _, p in members)
        tags = {RANGE_START: days[0], RANGE_END: days[-1]} if run_key == "range" else None
        # (AssetSelection.assets selects the assets' checks too.)
        selection = dg.AssetSelection.assets(*keys).without_checks() | (dg.AssetSelection.checks_for_assets(*keys)
                                                                       - SLOW_AUDIT)
        result = dg.materialize(assets, selection=selection, resources=defs.resources, instance=instance,
                                partition_key=None if run_key == "range" else run_key, tags=tags)
        assert result.success, f"{keys} {run_key}"
        for event in result.get_asset_materialization_events():
            done.setdefault(event.asset_key, set()).add(event.partition)
    return evaluation.cursor, done


def order(graph, key) -> int:
    return graph.toposorted_asset_keys.index(key)


def table(query: str) -> pl.DataFrame:
    return pl.from_pandas(Warehouse(Settings().warehouse_path).query(query)).with_columns(
        pl.col(pl.Datetime).cast(pl.Date))


def fits() -> pl.DataFrame:
    return table("SELECT window_start, model, horizon, mlflow_run_id FROM forecasts.fits ORDER BY ALL")


@pytest.fixture
def scratch(tmp_path):
    """Where the replay keeps its warehouse and Dagster instance: on tmpfs when the machine has one, since both commit
    thousands of times (a materialization event per day and asset) and a disk's fsyncs would be most of the test."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="quant-replay-") as folder:
        yield Path(folder)


@pytest.fixture
def living_clock(quant_home, scratch, monkeypatch):
    for name, value in {"QUANT_HOME": str(scratch / "quant"),
                        "QUANT_UNIVERSE": LIVING_UNIVERSE, "QUANT_HISTORY_START": HISTORY_START,
                        "QUANT_WF_START": EARLIER_WINDOW, "QUANT_WF_TRAIN_YEARS": "2",
                        "QUANT_TODAY": str(SETUP_DAY),
                        # What `make ui` and the demo set: a range run plans one event per asset, not one per day.
                        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_twenty_sessions_of_automation_from_market_to_the_ledger(living_clock, scratch):
    """The history and April's window are loaded and fitted (the backfill a user starts with); then each calendar day
    to 2022-05-13 the clock moves, the after-close schedule runs on weekdays, and the automation sensor's requests
    are launched until it asks for nothing more. Each session adds its market and feature rows and one as-of day
    of advice; May's window, opening on the 1st, is fitted once on its first session; May's ensemble learns from
    April's forecasts whose labels realized after April was fitted, and April is never refitted."""
    truth = load_sample(LIVING_UNIVERSE.split(","), date.fromisoformat(HISTORY_START), Settings().seed)[0]
    (scratch / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(scratch / "dagster")) as instance:
        defs = build_definitions()
        history = {RANGE_START: HISTORY_START, RANGE_END: str(SETUP_DAY)}
        for job, tags, key in (("market", history, None), ("features", history, None),
                               ("walk_forward", None, EARLIER_WINDOW), ("ensemble", None, EARLIER_WINDOW),
                               ("projections", None, "2022-04-14")):  # the last session before the replay
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, partition_key=key).success
        april_fits = fits()
        # April's forecasts whose outcome was known when April was fitted: what a frozen window could learn from.
        known_at_fit = table(f"SELECT count(*) AS n FROM forecasts.predictions WHERE window_start = DATE '{EARLIER_WINDOW}' "
                             "AND realized IS NOT NULL")["n"][0]
        cursor, _ = run_requested(defs, instance, None)

        day, learned, opened = SETUP_DAY, [], []
        while day < REPLAY_LAST:
            day += timedelta(days=1)
            living_clock.setenv("QUANT_TODAY", str(day))
            defs = build_definitions()
            # The sensor ticks all day: it sees the day's new partitions before the close. (A fixed clock gives new
            # partition definitions each day, and the sensor restarts the state of what they changed.)
            cursor, _ = run_requested(defs, instance, cursor)
            prices_before = table("SELECT symbol, date FROM market.prices")
            features_before = table("SELECT symbol, date FROM features.features")
            ledger_before = table("SELECT DISTINCT as_of FROM projections.allocations")
            if day.weekday() < 5:
                tick = datetime.combine(day, time(20, 30), timezone.utc)
                schedule = defs.resolve_schedule_def("after_us_close")
                [request] = schedule.evaluate_tick(dg.build_schedule_context(instance=instance,
                                                                             scheduled_execution_time=tick)).run_requests
                assert defs.resolve_job_def("market").execute_in_process(instance=instance, tags=request.tags).success
            materialized: dict[dg.AssetKey, set[str]] = {}
            for _ in range(8):
                cursor, done = run_requested(defs, instance, cursor)
                if not done:
                    break
                for key, partitions in done.items():
                    materialized.setdefault(key, set()).update(partitions)
            else:
                pytest.fail(f"the automation still requested runs after eight passes on {day}")

            expected = truth.filter(pl.col("date") == day).select("symbol", "date").sort("symbol")
            added = table("SELECT symbol, date FROM market.prices").join(prices_before, on=["symbol", "date"], how="anti")
            assert added.sort("symbol").equals(expected), day
            new_features = table("SELECT symbol, date FROM features.features").join(
                features_before, on=["symbol", "date"], how="anti")
            assert new_features.sort("symbol").with_columns(pl.col("date").cast(pl.Date)).equals(expected), day
            new_as_of = table("SELECT DISTINCT as_of FROM projections.allocations").join(ledger_before, on="as_of",
                                                                                        how="anti")
            assert new_as_of["as_of"].cast(pl.Date).to_list() == ([day] if expected.height else []), day
            reports = {dg.AssetKey("advice_scorecard"), dg.AssetKey("decision_backtest")}
            assert reports <= set(materialized) if expected.height else not reports & set(materialized), day
            if dg.AssetKey("fit_ridge") in materialized:
                opened.append((day, materialized[dg.AssetKey("fit_ridge")]))
            ensemble = instance.get_latest_materialization_event(dg.AssetKey("meta_ensemble"))
            if ensemble.dagster_event.partition == OPENING_WINDOW and dg.AssetKey("meta_ensemble") in materialized:
                metadata = ensemble.asset_materialization.metadata
                learned.append((day, metadata["history_rows"].value, metadata["history_windows"].value))

    sessions = equity_sessions(REPLAY_FIRST, REPLAY_LAST)
    assert len(sessions) >= 20
    # May's window was fitted once, on its first session; April's fits are the ones of the backfill.
    assert opened == [(date(2022, 5, 2), {OPENING_WINDOW})]
    after = fits()
    assert after.filter(pl.col("window_start") == date(2022, 4, 1)).equals(april_fits)
    may = after.filter(pl.col("window_start") == date(2022, 5, 1))
    assert may.height > 0
    settings = Settings()
    runs = find_runs(settings.mlflow_uri, settings.mlflow_lock)
    per_window = runs.groupby(["tags.window", "tags.model"]).size()
    assert set(per_window) == {1} and set(per_window.index.get_level_values(0)) == {EARLIER_WINDOW, OPENING_WINDOW}
    assert set(may["mlflow_run_id"]) == set(runs.loc[runs["tags.window"] == OPENING_WINDOW, "run_id"])
    # May's ensemble ran after each May session and learned from April's outcomes that realized after April was fitted
    # (the days April's stored models predicted during the replay among them), all known before May opened: the
    # ensemble of a window learns from what was known at its start, so its earlier days are not rewritten later.
    assert [d for d, _, _ in learned] == [s for s in sessions if s >= date(2022, 5, 2)]
    assert all(EARLIER_WINDOW in windows for _, _, windows in learned)
    rows = {r for _, r, _ in learned}
    assert len(rows) == 1 and rows.pop() > known_at_fit
    # The scorecard kept up: the week-ahead advice of the replay's first week was scored as its outcomes came in.
    scored = table("SELECT DISTINCT as_of FROM projections.scorecard WHERE horizon = '1w' AND realized_value IS NOT NULL")
    assert set(scored["as_of"].cast(pl.Date).to_list()) >= set(sessions[:5])
