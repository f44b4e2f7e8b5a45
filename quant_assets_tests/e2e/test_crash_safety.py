"""A writer SIGKILLed in the middle of a transaction, twelve times at different points: during a fold's write (inside
the transaction after each table, before COMMIT, between COMMIT and CHECKPOINT, and after random delays), during the
projections' write, and during dbt's run of the models. Each time the warehouse opens for readers and writers, no
window or day is half written, and writing again to the end gives exactly the rows an uninterrupted write gives."""

import itertools
import multiprocessing
import os
import random
import re
import signal
import subprocess
import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets.lib.projections.day_step import Projection, write_projection
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward import training
from quant_assets.lib.walk_forward.training import PREDICTION_COLUMNS, FoldResult, store_fold
from quant_assets_tests.support.universe import DBT, PROJECT_DIR, make_universe, write_market

FORK = multiprocessing.get_context("fork")  # the child starts at once, with everything already imported
WINDOWS = [date(2021, 1, 1) + timedelta(days=31 * i) for i in range(6)]
SYMBOLS = [f"S{i:02d}" for i in range(50)]
DAYS = 100  # per window: 50 symbols x 100 days x 4 horizons = 20,000 prediction rows
AS_OFS = [date(2022, 12, 1) + timedelta(days=i) for i in range(12)]
FINAL = 1000  # the version an uninterrupted run ends with
RANDOM = random.Random(20261128)


# --- the writers, run in forked children --------------------------------------------------------------------

def fold(window: date, version: int) -> FoldResult:
    """One (model, window) fold whose every row carries ``version`` (in ``mean``, ``train_rows``, the run id)."""
    keys = pd.MultiIndex.from_product([SYMBOLS, pd.date_range(window, periods=DAYS), [h.label for h in HORIZONS]],
                                      names=["symbol", "date", "horizon"]).to_frame(index=False)
    rng = np.random.default_rng(window.toordinal())
    values = {c: rng.normal(size=len(keys)) for c in DISTRIBUTION_COLUMNS if c != "mean"}
    predictions = keys.assign(window_start=window, model="ridge", mean=float(version), **values, realized=np.nan,
                              label_end=pd.NaT)[PREDICTION_COLUMNS]
    per_horizon = pd.DataFrame({"window_start": window, "model": "ridge", "horizon": [h.label for h in HORIZONS]})
    fits = per_horizon.assign(train_rows=version, latest_train_label_end=window - timedelta(days=10),
                              latest_train_date=window - timedelta(days=40), mlflow_run_id=f"run-{version}", seconds=1.0)
    scores = per_horizon.assign(n=version, ic=0.1, rank_ic=0.1, crps=0.01, pinball=0.01, coverage_80=0.8, brier=0.25)
    return FoldResult(predictions, fits, scores)


def projection(as_of: date, version: int) -> Projection:
    """A day's advice whose rows carry ``version`` (in ``last_price`` and ``prob_loss``)."""
    symbols = ["AAPL", "BTC", "JNJ"]
    allocations = pd.DataFrame({
        "as_of": as_of, "symbol": symbols, "rank": [1, 2, 3], "asset_class": ["equity", "crypto", "equity"],
        "confidence": [0.6, 0.55, 0.5], "kelly_weight": [0.4, 0.3, 0.0], "half_kelly_weight": [0.2, 0.15, 0.0],
        "last_price": float(version), **{f"expected_return_{h.label}": 0.01 for h in HORIZONS}})
    bands = pd.DataFrame([{"as_of": as_of, "symbol": s, "horizon": h.label, "p10": -0.1, "p25": -0.05, "p50": 0.01,
                           "p75": 0.05, "p90": 0.1, "prob_loss": version / (version + 1.0)}
                          for s in (*symbols, "PORTFOLIO") for h in HORIZONS])
    return Projection(bands, allocations, {})


class _PausingConnection:
    """A DuckDB connection that stops (tells the parent, then sleeps until killed) before running ``pause_sql``."""

    def __init__(self, con, pause_sql: str, ready) -> None:
        self._con, self._pause_sql, self._ready = con, pause_sql, ready

    def execute(self, sql, *args):
        if sql == self._pause_sql:
            _stop_here(self._ready)
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


class _PausingWarehouse(Warehouse):
    def __init__(self, path, pause_sql: str, ready) -> None:
        super().__init__(path)
        self._pause_sql, self._ready = pause_sql, ready

    def _connect(self, read_only: bool):
        return _PausingConnection(super()._connect(read_only), self._pause_sql, self._ready)


def _stop_here(ready) -> None:
    ready.set()
    time.sleep(3600)


def write_folds(path: str, first_version: int, pause: str | None, ready) -> None:
    """Store every window's fold, version after version, for ever (or pause at ``pause`` in the first write):
    ``after:<table>`` inside the transaction once that table is replaced, ``sql:<statement>`` before it runs."""
    warehouse = Warehouse(path)
    if pause and pause.startswith("sql:"):
        warehouse = _PausingWarehouse(path, pause[4:], ready)
    elif pause and pause.startswith("after:"):
        original = training.replace_in

        def replace_then_pause(con, table, frame, where):
            written = original(con, table, frame, where)
            if table == pause[6:]:
                _stop_here(ready)
            return written
        training.replace_in = replace_then_pause
    ready.set() if pause is None else None
    for version in itertools.count(first_version):
        for window in WINDOWS:
            store_fold(warehouse, fold(window, version))


def write_projections(path: str, first_version: int, ready) -> None:
    warehouse = Warehouse(path)
    ready.set()
    for version in itertools.count(first_version):
        for as_of in AS_OFS:
            write_projection(warehouse, as_of, projection(as_of, version))


def kill_while_writing(target, args, *, delay: float | None) -> None:
    """Start ``target(*args, ready)`` in a forked child; SIGKILL it ``delay`` s after it is ready (at once if None)."""
    ready = FORK.Event()
    child = FORK.Process(target=target, args=(*args, ready), daemon=True)
    child.start()
    assert ready.wait(60), "the writer never reached its kill point"
    if delay is not None:
        time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL


# --- the checks -----------------------------------------------------------------------------------------------

def snapshot(path, tables) -> dict[str, pd.DataFrame]:
    with Warehouse(path).reader() as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in tables}


def assert_opens_for_readers_and_writers(path) -> None:
    with Warehouse(path, wait_seconds=10).writer() as con:
        con.execute("CREATE TABLE IF NOT EXISTS main.opened (n INTEGER)")
    with Warehouse(path, wait_seconds=10).reader() as con:
        assert con.execute("SELECT count(*) FROM main.opened").fetchone() == (0,)


def assert_no_window_half_written(path) -> int:
    """Each window present has all its predictions, fits and scores, of one version; returns the windows present."""
    with Warehouse(path).reader() as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'forecasts'").fetchone()[0]:
            return 0
        rows = con.execute("""
            SELECT p.window_start, p.n, p.versions, p.version, f.n, f.run, s.n, s.version
            FROM (SELECT window_start, count(*) n, count(DISTINCT mean) versions, min(mean) version
                  FROM forecasts.predictions GROUP BY ALL) p
            FULL JOIN (SELECT window_start, count(*) n, min(mlflow_run_id) run FROM forecasts.fits GROUP BY ALL) f
                USING (window_start)
            FULL JOIN (SELECT window_start, count(*) n, min(n) version FROM forecasts.scores GROUP BY ALL) s
                USING (window_start)""").fetchall()
    for window, n, versions, version, fits, run, scores, score_version in rows:
        assert (n, versions, fits, scores) == (len(SYMBOLS) * DAYS * 4, 1, 4, 4), f"window {window} is half written"
        assert run == f"run-{int(version)}" and score_version == version, f"window {window} mixes versions"
    return len(rows)


def assert_no_day_half_written(path) -> int:
    with Warehouse(path).reader() as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'projections'").fetchone()[0]:
            return 0
        rows = con.execute("""
            SELECT a.as_of, a.n, a.price, b.n, b.versions, t.n
            FROM (SELECT as_of, count(*) n, min(last_price) price FROM projections.allocations GROUP BY ALL) a
            FULL JOIN (SELECT as_of, count(*) n, count(DISTINCT prob_loss) versions FROM projections.bands GROUP BY ALL) b
                USING (as_of)
            FULL JOIN (SELECT as_of, count(*) n FROM projections.trade_plan GROUP BY ALL) t USING (as_of)""").fetchall()
        for as_of, allocations, price, bands, versions, plan in rows:
            assert (allocations, bands, versions, plan) == (3, 16, 1, 4), f"day {as_of} is half written"
        if rows:
            assert len(con.execute("SELECT * FROM projector(10000)").fetchall()) == 4  # two positions, CASH, TOTAL
    return len(rows)


FOLD_TABLES = ("forecasts.predictions", "forecasts.fits", "forecasts.scores")
PROJECTION_TABLES = ("projections.bands", "projections.allocations", "projections.trade_plan")


def write_to_the_end(path, target) -> None:
    """What re-materializing does: every window (day) written once, at version FINAL."""
    warehouse = Warehouse(path)
    if target is write_folds:
        for window in WINDOWS:
            store_fold(warehouse, fold(window, FINAL))
    else:
        for as_of in AS_OFS:
            write_projection(warehouse, as_of, projection(as_of, FINAL))


@pytest.mark.parametrize("target, kills, check, tables", [
    (write_folds, [("after:forecasts.predictions", None), ("after:forecasts.fits", None), ("sql:COMMIT", None),
                   ("sql:CHECKPOINT", None), *((None, RANDOM.uniform(0.05, 1.5)) for _ in range(3))],
     assert_no_window_half_written, FOLD_TABLES),
    (write_projections, [(None, RANDOM.uniform(0.05, 1.0)) for _ in range(3)], assert_no_day_half_written,
     PROJECTION_TABLES),
], ids=["fold", "projections"])
def test_a_killed_writer_leaves_whole_windows_and_rewriting_gives_identical_rows(tmp_path, target, kills, check, tables):
    path = tmp_path / "warehouse.duckdb"
    write_to_the_end(tmp_path / "reference.duckdb", target)
    reference = snapshot(tmp_path / "reference.duckdb", tables)
    seen = []
    for version, (pause, delay) in enumerate(kills, start=1):
        args = (str(path), version * 10, pause) if target is write_folds else (str(path), version * 10)
        kill_while_writing(target, args, delay=delay)
        assert_opens_for_readers_and_writers(path)
        seen.append(check(path))
    assert max(seen) > 0  # some kills came after whole windows had been written, so the checks saw rows
    write_to_the_end(path, target)
    after = snapshot(path, tables)
    for table in tables:
        pd.testing.assert_frame_equal(after[table], reference[table])


def run_dbt_build(warehouse, scratch) -> subprocess.Popen:
    """``dbt run``: the part of ``dbt build`` that writes (its tests only read), at a fraction of the time."""
    env = {**os.environ, "QUANT_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.Popen(
        [str(DBT), "--no-version-check", "run", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
         "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_killed_dbt_run_leaves_a_warehouse_that_opens_and_rebuilds_identically(tmp_path):
    prices, onchain = make_universe(years=2)
    reference, path = tmp_path / "reference.duckdb", tmp_path / "warehouse.duckdb"
    for target in (reference, path):
        write_market(target, prices, onchain)
    build = run_dbt_build(reference, tmp_path / "ref")
    output, _ = build.communicate(timeout=600)
    assert build.returncode == 0, output[-2000:]
    expected = snapshot(reference, ("features.features", "labels.forward_returns"))
    models = int(re.search(r"1 of (\d+) START", output).group(1))
    for number in (2, models - 1):  # killed while dbt writes an early model, and a late one
        build = run_dbt_build(path, tmp_path / f"kill{number}")
        for line in build.stdout:
            if re.search(rf"\b{number} of {models} START", line):
                time.sleep(RANDOM.uniform(0.05, 0.3))
                build.kill()
                break
        build.communicate(timeout=60)
        assert build.returncode == -signal.SIGKILL
        assert_opens_for_readers_and_writers(path)
        with duckdb.connect(str(path), read_only=True) as con:  # and the market data dbt reads is whole
            assert con.execute("SELECT count(*) FROM market.prices").fetchone()[0] == len(prices)
    build = run_dbt_build(path, tmp_path / "final")
    output, _ = build.communicate(timeout=600)
    assert build.returncode == 0, output[-2000:]
    after = snapshot(path, ("features.features", "labels.forward_returns"))
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(after[table], frame)
