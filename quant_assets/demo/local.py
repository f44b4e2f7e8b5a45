"""`make demo`: materialize the whole pipeline on the sample through the Dagster definitions, then summarize.

Runs are recorded in the Dagster instance under ``$QUANT_HOME/dagster``, so `make ui` shows them afterwards;
their full logs (Dagster events, dbt output) go to ``$QUANT_HOME/demo.log`` and the terminal gets progress
and the summary.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from quant_assets.settings import get_settings

# A single-run backfill of twenty years of days records one planned event per asset, not one per day
# (thousands of rows written to the instance before the run starts), and hands its per-day materializations
# to the event log in batches, which the instance's storage writes in bulk; `make ui` sets the same.
SINGLE_RUN_EVENTS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true", "DAGSTER_EVENT_BATCH_SIZE": "1000"}
# Dagster's console logger at WARNING: the event stream is in the Dagster instance (`make ui`) anyway.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def instance_config(dagster_home: Path) -> str:
    """The checked-in instance configuration for ``dagster_home``, as `make ui` writes it."""
    template = (Path(__file__).resolve().parents[2] / "dagster.yaml").read_text()
    return template.replace("@CORES@", str(os.cpu_count() or 1)).replace("@DAGSTER_HOME@", str(dagster_home))


def _instance(settings):
    """The Dagster instance of ``settings.dagster_home``, created once whoever asks first: runs that start side by
    side on a fresh home would each create its SQLite schemas, and one would fail ('table runs already exists')."""
    import dagster as dg
    from filelock import FileLock

    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ.update(SINGLE_RUN_EVENTS)
    with FileLock(str(settings.dagster_home / "create.lock")):
        # The same instance configuration as `make ui` (run queue, one run per core), unless the user has one.
        config = settings.dagster_home / "dagster.yaml"
        if not config.exists():
            config.write_text(instance_config(settings.dagster_home))
        return dg.DagsterInstance.get()


def _run(job_name: str, partition_key: str | None = None, tags: dict[str, str] | None = None,
         asset_path: tuple[str, ...] | None = None) -> float:
    """Run one job (one partition, or the range in ``tags``; only the asset at ``asset_path`` if given) in this
    process with its output sent to the demo log; seconds taken."""
    import dagster as dg

    from quant_assets.definitions import defs

    settings = get_settings()
    instance = _instance(settings)
    selection = [dg.AssetKey(list(asset_path))] if asset_path else None
    started = time.perf_counter()
    with open(settings.home / "demo.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, partition_key=partition_key, run_config=QUIET, raise_on_error=False, tags=tags,
            asset_selection=selection)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"demo: job {job_name} {partition_key or ''} failed at {failed}; "
                           f"see {settings.home / 'demo.log'} or `make ui`")
    return time.perf_counter() - started


def market_and_features() -> tuple[int, float, float]:
    """Every day of market history, then the dbt features and labels; returns the number of days and the
    seconds of each stage. Each market asset loads all its days in one run (its single-run backfill policy);
    the two runs go side by side, because Dagster records a materialization per day and asset, and writing
    those events, not the data, is most of the stage."""
    from quant_assets.defs.automation import RANGE_END, RANGE_START
    from quant_assets.defs.market.assets import MARKET_KEYS
    from quant_assets.definitions import defs

    days = defs.resolve_job_def("market").partitions_def.get_partition_keys()
    history = {RANGE_START: days[0], RANGE_END: days[-1]}
    started = time.perf_counter()
    _side_by_side([("market", None, history, tuple(key.path)) for key in MARKET_KEYS])
    return len(days), time.perf_counter() - started, _run("features", tags=history)


def _worker_start(one_thread: bool) -> None:
    """Ctrl-C is the parent's to handle (it kills every worker). With ``one_thread``, one BLAS/OpenMP thread:
    with one window per core, a thread per core in every process would fight over the cores. Set before the
    worker imports numpy, and applied to anything loaded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not one_thread:
        return
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _side_by_side(calls: list[tuple], one_thread: bool = False, function=None) -> list:
    """``function(*call)`` (default ``_run``) for each call in spawned processes, one per core (forking a process
    that already runs Dagster threads is not safe). Ctrl-C kills them all at once: Dagster holds SIGINT and SIGTERM
    until its step ends, which in a twenty-year load or a window's fits would keep the demo running for minutes. A
    worker that dies (killed from outside, out of memory) stops the demo with its name instead of leaving it waiting
    for ever. The warehouse is safe to kill mid-write (a transaction is all there or not at all)."""
    workers = max(1, min(len(calls), os.cpu_count() or 1))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start,
                               initargs=(one_thread,))
    try:
        futures = [pool.submit(function or _run, *call) for call in calls]
        # A blocking wait would not see Ctrl-C when the signal lands on another thread; a timed one wakes to it.
        while wait(futures, timeout=0.5).not_done:
            pass
        for call, future in zip(calls, futures):
            if isinstance(future.exception(), BrokenProcessPool):
                raise RuntimeError(f"demo: a worker process died while running {call} (killed from outside, or out "
                                   "of memory); what was stored is intact: run the demo again")
        return [future.result() for future in futures]
    except BaseException:
        for child in multiprocessing.active_children():
            child.kill()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _backfill_windows(windows: list[str]) -> None:
    """The windows are independent and every model fits single-threaded: run them side by side, one per core."""
    seconds = _side_by_side([("walk_forward", key) for key in windows], one_thread=True)
    for key, taken in zip(windows, seconds):
        print(f"demo: walk-forward window {key}: 9 models + baseline in {taken:.0f}s", flush=True)


def main() -> int:
    from quant_assets.demo.summary import demo_summary

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    from quant_assets.definitions import defs

    windows = defs.resolve_job_def("walk_forward").partitions_def.get_partition_keys()[-settings.demo_windows:]
    started = time.perf_counter()
    print(f"demo: QUANT_HOME={settings.home} (run logs in {settings.home / 'demo.log'})", flush=True)
    try:
        days, market_seconds, feature_seconds = market_and_features()
        print(f"demo: market data for {days} days (prices and on-chain, a run each) in {market_seconds:.0f}s", flush=True)
        print(f"demo: features and labels in {feature_seconds:.0f}s", flush=True)
        _backfill_windows(windows)
        # In window order: each window's ensemble learns from the earlier windows' realized results.
        seconds = sum(_run("ensemble", key) for key in windows)
        print(f"demo: meta-ensemble for {len(windows)} windows in {seconds:.0f}s", flush=True)
        # The advice ledger's partition of the clock's day (the data's last date on the sample).
        seconds = _run("projections", settings.clock_today.isoformat())
        print(f"demo: projections, allocations, scorecard and decision backtest in {seconds:.0f}s", flush=True)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; what was stored stays consistent, and `make demo` again finishes the job",
              file=sys.stderr)
        return 130
    print(f"demo: materialization took {time.perf_counter() - started:.0f}s\n", flush=True)
    print(demo_summary(settings.warehouse_path, windows))
    return 0

