"""`make demo`: materialize the whole pipeline on the sample through the Dagster definitions, then summarize.

Runs are recorded in the Dagster instance under ``$QUANT_HOME/dagster``, so `make ui` shows them afterwards.
"""

from __future__ import annotations

import os
import sys
import time

from quant_assets.settings import get_settings


def _instance(settings):
    import dagster as dg

    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return dg.DagsterInstance.get()


def _run(job, instance, partition_key=None) -> None:
    result = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise SystemExit(f"demo: job {job.name} {partition_key or ''} failed at {failed}; see `make ui` for the logs")


def main() -> int:
    from quant_assets.definitions import defs
    from quant_assets.lib.summary import demo_summary

    settings = get_settings()
    instance = _instance(settings)
    started = time.perf_counter()
    print(f"demo: QUANT_HOME={settings.home}", flush=True)
    _run(defs.get_job_def("market_and_features"), instance)
    print(f"demo: market and features materialized in {time.perf_counter() - started:.0f}s", flush=True)
    windows = defs.get_job_def("walk_forward").partitions_def.get_partition_keys()[-settings.demo_windows:]
    for key in windows:
        t0 = time.perf_counter()
        _run(defs.get_job_def("walk_forward"), instance, partition_key=key)
        print(f"demo: walk-forward window {key} (9 models + baseline) in {time.perf_counter() - t0:.0f}s", flush=True)
    t0 = time.perf_counter()
    for key in windows:
        _run(defs.get_job_def("ensemble"), instance, partition_key=key)
    _run(defs.get_job_def("projections"), instance)
    print(f"demo: ensemble, projections and backtest in {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"demo: materialization took {time.perf_counter() - started:.0f}s\n", flush=True)
    print(demo_summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
