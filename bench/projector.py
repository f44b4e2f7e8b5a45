"""Projector latency: p50/p99 of `SELECT * FROM projector(10000)` through DuckDB, and the CLI's cold start.

Run after `make demo` (it reads $QUANT_HOME/warehouse.duckdb). Goals: p50 <= 5 ms, cold start <= 0.6 s.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from quant_assets import paths

GOAL_P50_MS = 5.0
GOAL_COLD_S = 0.6


def main() -> int:
    path = paths.warehouse_path(paths.home())
    if not path.exists():
        print(f"no warehouse at {path}; run `make demo` first")
        return 1
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SELECT * FROM projector(10000)").fetchall()  # warm the catalog
    samples = []
    for _ in range(500):
        started = time.perf_counter()
        rows = con.execute("SELECT * FROM projector(10000)").fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    con.close()
    samples.sort()
    p50, p99 = statistics.median(samples), samples[int(0.99 * len(samples)) - 1]
    print(f"projector(10000) via DuckDB: {len(rows)} rows, p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"(goal p50 <= {GOAL_P50_MS} ms; ratio to goal {p50 / GOAL_P50_MS:.2f})")

    quant = Path(sys.executable).parent / "quant"
    cold = []
    for _ in range(10):
        started = time.perf_counter()
        done = subprocess.run([str(quant), "project", "10000"], capture_output=True, text=True)
        cold.append(time.perf_counter() - started)
        if done.returncode != 0:
            print(f"quant project failed: {done.stderr.strip()}")
            return 1
    print(f"`quant project 10000` wall time over 10 fresh processes: median {statistics.median(cold):.3f} s, "
          f"max {max(cold):.3f} s (goal <= {GOAL_COLD_S} s; ratio to goal {statistics.median(cold) / GOAL_COLD_S:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
