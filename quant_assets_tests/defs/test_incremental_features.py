"""Incremental features and labels: days added one at a time (each run rewriting only a lookback) give exactly the
tables a full rebuild gives, through dbt on its own and through the daily-partitioned dbt assets in Dagster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quant_assets.defs.features.assets import FEATURES_KEY, LABELS_KEY
from quant_assets.lib.features.lookahead import truncate_history
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize
from quant_assets_tests.support.universe import DBT, LATE_DAY, PROJECT_DIR, make_universe, write_market

KEYS = ["symbol", "date"]
TOLERANCE = 1e-9


def dbt(command: str, warehouse: Path, scratch: Path, *args: str) -> str:
    """Run one dbt command against ``warehouse``; its output (the run must succeed)."""
    env = {**os.environ, "QUANT_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [str(DBT), "--no-version-check", command, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
         "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs"), *args],
        env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def model_tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every table dbt wrote in the features and labels schemas, sorted by key."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                            "WHERE table_schema IN ('features', 'labels') ORDER BY 1").fetchall()
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY symbol, date").df() for (name,) in names}


def assert_same_tables(incremental: dict[str, pd.DataFrame], full: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Same tables, columns and keys; every numeric column within TOLERANCE (nulls in the same places); the others
    equal. Returns the largest absolute difference per table."""
    assert sorted(incremental) == sorted(full)
    largest = {}
    for name, expected in full.items():
        got = incremental[name]
        assert list(got.columns) == list(expected.columns), name
        assert got[KEYS].equals(expected[KEYS]), f"{name}: keys differ ({len(got)} rows against {len(expected)})"
        largest[name] = 0.0
        for column in expected.columns.drop(KEYS):
            if pd.api.types.is_numeric_dtype(expected[column]):
                a, b = got[column].to_numpy(float), expected[column].to_numpy(float)
                assert (np.isnan(a) == np.isnan(b)).all(), f"{name}.{column}: nulls differ"
                diff = float(np.nanmax(np.abs(a - b), initial=0.0))
                assert diff <= TOLERANCE, f"{name}.{column}: max abs diff {diff}"
                largest[name] = max(largest[name], diff)
            else:
                assert got[column].equals(expected[column]), f"{name}.{column} differs"
    return largest


def test_daily_increments_equal_a_full_rebuild(tmp_path):
    """Synthetic equities, index and BTC with on-chain metrics (one published three days late, on the first day):
    the history to the day before is built in full, then each of five days (a weekend among them) is revealed and
    brought up to date by an incremental run of its partition; the tables then equal a full build."""
    prices, onchain = make_universe()
    days = [LATE_DAY + timedelta(days=i) for i in range(5)]
    incremental = tmp_path / "incremental.duckdb"
    write_market(incremental, *truncate_history(prices, onchain, days[0] - timedelta(days=1)))
    dbt("build", incremental, tmp_path)
    labels_before = model_tables(incremental)["labels.forward_returns"]
    for day in days:
        with duckdb.connect(str(incremental)) as con:
            con.execute("DROP SCHEMA market CASCADE")
        write_market(incremental, *truncate_history(prices, onchain, day))
        window = {"partition_start": day.isoformat(), "partition_end": (day + timedelta(days=1)).isoformat()}
        dbt("build", incremental, tmp_path, "--vars", json.dumps(window))

    full = tmp_path / "full.duckdb"
    write_market(full, *truncate_history(prices, onchain, days[-1]))
    dbt("build", full, tmp_path)
    tables = model_tables(full)
    assert_same_tables(model_tables(incremental), tables)
    # The replayed days completed labels of rows dated before them, up to the longest horizon back.
    labels = tables["labels.forward_returns"]
    filled = labels.merge(labels_before, on=KEYS, suffixes=("", "_before"))
    assert (filled["fwd_1w"].notna() & filled["fwd_1w_before"].isna()).sum() > 0
    assert (filled["fwd_1y"].notna() & filled["fwd_1y_before"].isna()).sum() > 0
    assert pd.to_datetime(labels["date"]).max().date() == days[-1]


def test_a_restated_past_day_is_carried_to_every_later_row(tmp_path):
    """A past day's closes restated (a provider correction) and its partition re-run: the later drawdowns, windows
    and the labels that reach it are rewritten as a full build computes them."""
    prices, onchain = make_universe(years=2)
    warehouse = tmp_path / "warehouse.duckdb"
    write_market(warehouse, prices, onchain)
    dbt("run", warehouse, tmp_path)
    day = date(2021, 3, 3)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE market.prices SET close = close * 3 WHERE date = ?", [day])
    dbt("run", warehouse, tmp_path, "--vars", json.dumps({"partition_start": day.isoformat()}))
    rebuilt = tmp_path / "rebuilt.duckdb"
    shutil.copy(warehouse, rebuilt)
    dbt("run", rebuilt, tmp_path, "--full-refresh")
    assert_same_tables(model_tables(warehouse), model_tables(rebuilt))


@pytest.fixture
def replay_clock(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_HISTORY_START", "2020-06-01")
    monkeypatch.setenv("QUANT_TODAY", "2022-06-10")
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")  # as `make ui` and the demo
    return monkeypatch


def test_daily_partitions_of_the_dbt_assets_equal_a_full_rebuild(replay_clock, tmp_path):
    """Through Dagster on the sample's tiny universe: history to 2022-06-05 as one single-run backfill (one dbt run
    over the range), then the market and feature partitions of each day from Monday 2022-06-06 to Friday, each
    with its blocking lookahead audit; the stored features and labels equal a full dbt rebuild of the same data."""
    market_and_features = dg.AssetSelection.groups("market", "features")
    first = materialize(market_and_features, days=("2020-06-01", "2022-06-05"))
    assert first.success
    dbt_runs = [e for e in first.all_events if e.is_step_start and e.step_key.startswith("dbt_")]
    assert len(dbt_runs) == 1
    for day in ["2022-06-06", "2022-06-07", "2022-06-08", "2022-06-09", "2022-06-10"]:
        result = materialize(market_and_features, days=day)
        assert result.success
        features = [e for e in result.get_asset_materialization_events() if e.asset_key in (FEATURES_KEY, LABELS_KEY)]
        assert sorted(e.partition for e in features) == [day, day]
        audits = [e for e in result.get_asset_check_evaluations() if e.check_name == "feature_lookahead_audit"]
        assert len(audits) == 1 and audits[0].passed

    warehouse = Settings().warehouse_path
    rebuilt = tmp_path / "rebuilt.duckdb"
    shutil.copy(warehouse, rebuilt)
    dbt("run", rebuilt, tmp_path, "--full-refresh")
    largest = assert_same_tables(model_tables(warehouse), model_tables(rebuilt))
    assert set(largest) >= {"features.features", "labels.forward_returns"}
    stored = model_tables(warehouse)["features.features"]
    assert pd.to_datetime(stored["date"]).max().date() == date(2022, 6, 10)
