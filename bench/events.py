"""The demo's market + features stage with Dagster's default SQLite event log and with the instance's
(`quant_assets/defs/instance_storage.py`, batches of asset events written in bulk), in one run on the same data.

Each storage gets a fresh QUANT_HOME and its own process: `demo.market_and_features()` as `make demo` runs it
(the two market assets side by side, each loading every day in one run, then the dbt features over the range),
from ``--start`` (default 2019-01-01) to the sample's last day. Printed: seconds of each stage, the
materializations recorded and their rate, and the load average before and after.

Run: `nice -n 10 .venv/bin/python bench/events.py [--start 2019-01-01]`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Dagster's default storage: an instance configuration without storage keys.
DEFAULT_CONFIG = "telemetry:\n  enabled: false\n"


def measure(storage: str) -> dict:
    """In this process (QUANT_HOME and QUANT_HISTORY_START set by the caller): the stage on ``storage``."""
    sys.path.insert(0, str(ROOT))
    from dagster import DagsterEventType

    from quant_assets.demo import local as demo
    from quant_assets.settings import get_settings

    settings = get_settings()
    if storage == "default":
        settings.dagster_home.mkdir(parents=True)
        (settings.dagster_home / "dagster.yaml").write_text(DEFAULT_CONFIG)
    instance = demo._instance(settings)
    days, market_seconds, feature_seconds = demo.market_and_features()
    materializations = sum(len(instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION))
                           for run in instance.get_runs())
    return {"storage": type(instance.event_log_storage).__name__, "days": days, "market": market_seconds,
            "features": feature_seconds, "materializations": materializations}


def run_case(storage: str, start: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-events-{storage}-") as home:
        env = {**os.environ, "QUANT_HOME": home, "QUANT_HISTORY_START": start, "PYTHONPATH": str(ROOT)}
        output = subprocess.run([sys.executable, __file__, "--measure", storage], env=env, check=True,
                                capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2019-01-01", help="first day of market history")
    parser.add_argument("--measure", choices=["default", "batched"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    print(f"events bench: market + features from {args.start}; load average {os.getloadavg()}", flush=True)
    results = []
    for storage in ("default", "batched"):
        started = time.perf_counter()
        result = run_case(storage, args.start)
        result["total"] = time.perf_counter() - started
        results.append(result)
        stage = result["market"] + result["features"]
        print(f"{result['storage']:>30}: {result['days']} days, market {result['market']:.0f}s + features "
              f"{result['features']:.0f}s = {stage:.0f}s; {result['materializations']} materializations, "
              f"{result['materializations'] / stage:.0f}/s; load average {os.getloadavg()}", flush=True)
    default, batched = results
    speedup = (default["market"] + default["features"]) / (batched["market"] + batched["features"])
    print(f"events bench: the stage {speedup:.1f}x faster with the batched event log "
          f"(market {default['market'] / batched['market']:.1f}x, features "
          f"{default['features'] / batched['features']:.1f}x)")


if __name__ == "__main__":
    main()
