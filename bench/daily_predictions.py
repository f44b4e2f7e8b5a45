"""Benchmark: the daily prediction step for one day on the full sample universe (all ten models of the
window loaded from the model store and predicting the day), in a fresh process as the daemon runs it.

Set-up (skipped with ``--home``): the market and features assets and the window's plan and fits are
materialized into a temporary QUANT_HOME through Dagster, which writes the model store. Then ``--repeat``
fresh processes each run ``predict_and_store_day`` for ``--day`` and report, in seconds: the interpreter and
library imports, ``import torch`` alone (the deep models need it to load), loading the ten models, reading
the day's context, predicting, and writing; "step" is everything after the imports; "with torch" adds the
torch import. The reference is the fit of the same window (all ten models), timed in the set-up.

Run: ``nice -n 10 .venv/bin/python bench/daily_predictions.py`` (a few minutes on 2 shared cores: the fit).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SETUP = """
import sys
from quant_assets.definitions import defs
from quant_assets.defs.automation import RANGE_END, RANGE_START
job, key = sys.argv[1], (sys.argv[2] or None)
days = defs.resolve_job_def("market").partitions_def.get_partition_keys()
# The daily market and features jobs load every day in one run (their single-run backfill policy).
tags = {RANGE_START: days[0], RANGE_END: days[-1]} if key is None else None
raise SystemExit(0 if defs.resolve_job_def(job).execute_in_process(partition_key=key, tags=tags).success else 1)
"""

STEP = """
import json, sys, time
t0 = time.perf_counter()
from datetime import date
from quant_assets.lib.walk_forward import predict_daily as daily
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
t1 = time.perf_counter()
import torch
t2 = time.perf_counter()
settings, window, day = Settings(), date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2])
warehouse = Warehouse(settings.warehouse_path)
models, missing = daily.load_models(settings.models_home, window)
t3 = time.perf_counter()
panel = daily.load_day_panel(warehouse, window, day)
t4 = time.perf_counter()
rows = daily.predict_day(models, panel, window, day)
t5 = time.perf_counter()
daily.store_day(warehouse, rows, window, day, list(models))
t6 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "torch_import": t2 - t1, "load_models": t3 - t2, "read_context": t4 - t3,
                  "predict": t5 - t4, "write": t6 - t5, "step": t6 - t2, "with_torch": t6 - t1,
                  "rows": len(rows), "context_rows": len(panel), "models": len(models), "missing": missing}))
"""


def run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{code.strip().splitlines()[1]} ... {args} failed:\n{done.stderr[-4000:]}")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="an existing QUANT_HOME whose window is fitted (skips the set-up)")
    parser.add_argument("--window", default="2022-12-01", help="the window's first date")
    parser.add_argument("--day", default="2022-12-15", help="the day to predict (inside the window)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train-years", default="3", help="QUANT_WF_TRAIN_YEARS: the history the set-up loads and fits on")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-daily-")) / "quant"
    env = {**os.environ, "QUANT_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "PYTHONPATH": str(REPO), "QUANT_WF_START": args.window,
           "QUANT_WF_TRAIN_YEARS": args.train_years}
    if args.home is None:
        started = time.perf_counter()
        run(SETUP, env, "market", "")
        run(SETUP, env, "features", "")
        data_seconds = time.perf_counter() - started
        started = time.perf_counter()
        run(SETUP, env, "walk_forward", args.window)
        print(f"set-up: market and features {data_seconds:.1f} s; window {args.window} plan and ten fits "
              f"{time.perf_counter() - started:.1f} s (the reference a daily step replaces)")
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        figures = json.loads(run(STEP, env, args.window, args.day).stdout.strip().splitlines()[-1])
        figures["process"] = time.perf_counter() - started
        runs.append(figures)
    first = runs[0]
    print(f"QUANT_HOME {home}; day {args.day} of window {args.window}: {first['rows']} rows from {first['models']} "
          f"models (missing: {first['missing'] or 'none'}), context {first['context_rows']} feature rows")
    print(f"{'seconds (median of ' + str(len(runs)) + ')':<28}" + "".join(f"{k:>13}" for k in FIELDS))
    print(f"{'':<28}" + "".join(f"{statistics.median(r[k] for r in runs):>13.2f}" for k in FIELDS))
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} / {five:.2f} on {os.cpu_count()} cores")
    return 0


FIELDS = ("imports", "torch_import", "load_models", "read_context", "predict", "write", "step", "with_torch", "process")

if __name__ == "__main__":
    raise SystemExit(main())
