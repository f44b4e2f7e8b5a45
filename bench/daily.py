"""Cost of one new session against a full demo materialization, measured in the same run (goal ≤ 10%).

1. The demo's materialization with the clock one session back (`QUANT_TODAY` = the sample's second-to-last
   session): market and features, the demo's walk-forward windows, their ensembles, the day's projections.
2. The clock moves to the sample's last session, and, in a new process that has loaded the code location (as
   the daemon's code server has it), the new day is brought up to date the way the automation does it: the
   market schedule's run (the days since the last loaded one), the features, the day's daily_predictions (the
   current window's stored models), the current window's meta_ensemble, and that day's projections with the
   advice scorecard and the decision backtest.

`QUANT_DEMO_WINDOWS` (default here 2) and `QUANT_UNIVERSE` change the size of the reference.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

PREVIOUS_SESSION, NEW_SESSION = "2022-12-27", "2022-12-28"


def daily_predictions(defs, instance, day: str, run_config) -> float:
    """The day's rows of every stored model of its window (the asset has no job of its own); seconds taken."""
    import dagster as dg

    from quant_assets.defs.walk_forward.daily import DAILY_PREDICTIONS_KEY

    started = time.perf_counter()
    result = dg.materialize([*defs.assets], selection=[DAILY_PREDICTIONS_KEY], resources=defs.resources,
                            instance=instance, partition_key=day, run_config=run_config)
    rows = result.asset_materializations_for_node("daily_predictions")[0].metadata["dagster/row_count"].value
    if not rows:
        raise SystemExit(f"daily_predictions {day} stored no row: is its window fitted?")
    return time.perf_counter() - started


def step_breakdown(instance, since: float) -> dict[str, float]:
    """Seconds of every step of the runs started after ``since`` (a Unix time), by step key, and each run's own
    cost around its steps (run start and end, step planning, event writes) under ``<run job> (Dagster run)``."""
    from dagster import DagsterEventType, RunsFilter

    out: dict[str, float] = {}
    kinds = {DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS, DagsterEventType.STEP_START,
             DagsterEventType.STEP_SUCCESS}
    records = instance.get_run_records(filters=RunsFilter(created_after=datetime.fromtimestamp(since, timezone.utc)))
    for record in sorted(records, key=lambda r: r.create_timestamp):
        run, started, steps = record.dagster_run, {}, 0.0
        events = instance.all_logs(run.run_id, of_type=kinds)
        for entry in events:
            kind = entry.dagster_event.event_type
            if kind == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif kind == DagsterEventType.STEP_SUCCESS and entry.step_key in started:
                seconds = entry.timestamp - started[entry.step_key]
                out[f"{run.job_name}: {entry.step_key}"] = out.get(f"{run.job_name}: {entry.step_key}", 0.0) + seconds
                steps += seconds
        wall = events[-1].timestamp - record.create_timestamp.timestamp() if events else 0.0
        key = f"{run.job_name} (Dagster run around its steps)"
        out[key] = out.get(key, 0.0) + max(wall - steps, 0.0)
    return out


def new_session() -> int:
    """The new day, in this fresh process; loading the code location (imports and Definitions, which a kept
    code server pays once) is timed apart from the day's runs."""
    began = time.perf_counter()
    from quant_assets.demo import local as demo
    from quant_assets.definitions import build_definitions
    from quant_assets.defs.automation import missing_days_request

    os.environ["QUANT_TODAY"] = NEW_SESSION
    defs = build_definitions()
    print(f"new session {NEW_SESSION}: code location load (imports, Definitions) {time.perf_counter() - began:.1f} s "
          "(paid once by a kept code server; not in the total)")
    # demo._run resolves its jobs from the module's Definitions: give it the new day's (a new daily partition).
    sys.modules["quant_assets.definitions"].defs = defs
    instance = demo._instance(demo.get_settings())
    stages = {}
    started, since = time.perf_counter(), time.time()
    request = missing_days_request(instance, defs.resolve_job_def("market").partitions_def,
                                   datetime.now(timezone.utc))
    stages["market (schedule's run)"] = demo._run("market", tags=request.tags)
    stages["features"] = demo._run("features", tags=request.tags)  # the same days, one incremental dbt run
    stages["daily_predictions"] = daily_predictions(defs, instance, NEW_SESSION, demo.QUIET)
    window = defs.resolve_job_def("ensemble").partitions_def.get_last_partition_key()
    stages[f"meta_ensemble {window}"] = demo._run("ensemble", window)
    projections = defs.resolve_job_def("projections")
    stages["projections"] = demo._run("projections", NEW_SESSION if projections.partitions_def else None)
    new_day = time.perf_counter() - started
    for name, seconds in stages.items():
        print(f"new session {NEW_SESSION}: {name} {seconds:.1f} s")
    for name, seconds in step_breakdown(instance, since).items():
        print(f"new session {NEW_SESSION}:   {name} {seconds:.1f} s")
    print(f"one new session: {new_day:.1f} s", flush=True)
    return 0


def main() -> int:
    home = tempfile.mkdtemp(prefix="bench_daily_")
    os.environ.update(QUANT_HOME=home, QUANT_TODAY=PREVIOUS_SESSION, DBT_SEND_ANONYMOUS_USAGE_STATS="false",
                      QUANT_DEMO_WINDOWS=os.environ.get("QUANT_DEMO_WINDOWS", "2"))
    from quant_assets.demo import local as demo

    started = time.perf_counter()
    if demo.main() != 0:
        return 1
    full = time.perf_counter() - started
    print(f"\nfull demo materialization (clock {PREVIOUS_SESSION}): {full:.0f} s", flush=True)

    # A day runs in processes of its own (the daemon's runs), which import what the backfill's process already
    # holds (torch for the day's predictions, among others): measured in one new process, the imports counted.
    child = subprocess.run([sys.executable, __file__, "--new-session"], env=os.environ, capture_output=True,
                           text=True, check=False)
    print(child.stdout, end="")
    if child.returncode != 0:
        print(child.stderr[-3000:])
        return 1
    new_day = float(re.search(r"one new session: ([0-9.]+) s", child.stdout).group(1))
    print(f"one new session: {new_day:.1f} s = {new_day / full:.1%} of the full materialization (goal ≤ 10%; "
          f"load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(new_session() if sys.argv[1:] == ["--new-session"] else main())
