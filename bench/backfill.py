"""Backfill speed: one walk-forward window in process (what `make demo` does) against the daemon's path
(`execute_job` of the `walk_forward` job against a real DagsterInstance: the run's steps go to the job's
multiprocess executor, forkserver with the model libraries preloaded). Goal: the daemon path ≤ 1.2×.

Set-up (not timed): a fresh QUANT_HOME with the tiny test universe, market and features (recorded in a
throwaway instance: thousands of daily partitions are slow to record in the SQLite instance and are not what
is measured). Then the same window is run both ways in this one process tree, and the ratio printed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

WINDOW = "2022-12-01"
TINY_UNIVERSE = "AAPL,MSFT,JNJ,SP500,BTC"


def walk_forward_job():
    from quant_assets.definitions import defs

    return defs.resolve_job_def("walk_forward")


def main() -> int:
    import dagster as dg

    home = tempfile.mkdtemp(prefix="bench_backfill_")
    os.environ.update(QUANT_HOME=home, QUANT_UNIVERSE=os.environ.get("QUANT_UNIVERSE", TINY_UNIVERSE),
                      QUANT_HISTORY_START=os.environ.get("QUANT_HISTORY_START", "2012-01-01"),
                      DAGSTER_HOME=os.path.join(home, "dagster"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    from quant_assets.demo import local as demo
    from quant_assets.settings import get_settings

    from quant_assets.defs.automation import RANGE_END, RANGE_START
    from quant_assets.definitions import defs

    demo._instance(get_settings())  # the instance configuration of `make ui`
    started = time.perf_counter()
    scratch = dg.DagsterInstance.ephemeral()
    days = defs.resolve_job_def("market").partitions_def.get_partition_keys()
    every_day = {RANGE_START: days[0], RANGE_END: days[-1]}
    assert defs.resolve_job_def("market").execute_in_process(instance=scratch, tags=every_day, run_config=demo.QUIET).success
    assert defs.resolve_job_def("features").execute_in_process(instance=scratch, tags=every_day,
                                                               run_config=demo.QUIET).success
    print(f"set-up: market and features in {time.perf_counter() - started:.0f} s (not timed)", flush=True)

    in_process = demo._run("walk_forward", WINDOW)
    print(f"in process: window {WINDOW} in {in_process:.1f} s", flush=True)

    instance = dg.DagsterInstance.get()
    started = time.perf_counter()
    result = dg.execute_job(dg.reconstructable(walk_forward_job), instance=instance,
                            tags={"dagster/partition": WINDOW}, run_config=demo.QUIET)
    daemon_path = time.perf_counter() - started
    if not result.success:
        print("the multiprocess run failed; see `make ui` with DAGSTER_HOME=" + os.environ["DAGSTER_HOME"])
        return 1
    print(f"daemon path (multiprocess, forkserver, preloaded): window {WINDOW} in {daemon_path:.1f} s", flush=True)
    print(f"ratio daemon path / in process: {daemon_path / in_process:.2f} (goal ≤ 1.20; load average "
          f"{os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
