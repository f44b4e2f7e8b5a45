"""The pipeline at growing universe sizes (QUANT_SAMPLE_SYMBOLS=N), each N in its own QUANT_HOME, and how each
stage's cost grows with N (the exponent k of seconds ∝ N^k, fitted by least squares on log-log).

Per N, each stage in a fresh process (its imports counted, as a run of the daemon pays them), in this order:

- market + features: every day of market history and the dbt features and labels (`make demo`'s first step);
- one walk-forward window: the last window's nine models and the baseline, one BLAS/OpenMP thread;
- that window's meta-ensemble (untimed in the goals, needed by what follows);
- one day's projections: Monte Carlo scenarios, full and fractional Kelly, bands, scorecard, decision backtest
  (the `projections` job of the clock's day, the sample's second-to-last session);
- the daily update: the clock moves one session on and `bench/daily.py --new-session` brings the day up to date
  (market, features, the day's predictions, the window's ensemble, the day's projections);
- `projector(10000)` p50 through DuckDB and `/api/projector` p50 through the API in its own process.

Peak memory is each stage's process (and its children) maximum resident set. The last line is one JSON object of
every figure. Goals at N = 500 (issue #22): one day's projections <= 60 s, /api/projector p50 <= 20 ms, the daily
update <= 5 min, any step <= 4 GiB, every k <= 1.1.

    nice -n 10 .venv/bin/python bench/scale.py [--quick] [--sizes 25 100 500] [--keep DIR]

`--quick` runs N = 25 and 50 on three training years from 2016 (minutes); the full run N = 25, 100 and 500 on
the default windows (ten training years). Benchmarks on a shared machine are slower than on a quiet one: the
load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PREVIOUS_SESSION = "2022-12-27"
QUICK = {"sizes": [25, 50], "env": {"QUANT_WF_TRAIN_YEARS": "3", "QUANT_HISTORY_START": "2016-01-01"}}
FULL = {"sizes": [25, 100, 500], "env": {}}
STAGES = ("market_features", "walk_forward", "ensemble", "projections", "daily_update")
LATENCY_SAMPLES = 200
GOALS = {"projections_s": 60.0, "api_projector_p50_ms": 20.0, "daily_update_s": 300.0, "peak_gib": 4.0, "k": 1.1}


def _stage(name: str) -> None:
    """Runs one stage in this process and prints its seconds and peak memory (the parent parses the line)."""
    from quant_assets.demo import local as demo
    from quant_assets.definitions import defs

    started = time.perf_counter()
    window = defs.resolve_job_def("walk_forward").partitions_def.get_last_partition_key()
    if name == "market_features":
        demo.market_and_features()
    elif name == "walk_forward":
        demo._worker_start(one_thread=True)
        demo._run("walk_forward", window)
    elif name == "ensemble":
        demo._run("ensemble", window)
    elif name == "projections":
        demo._run("projections", demo.get_settings().clock_today.isoformat())
    elif name == "daily_update":
        sys.argv = [str(ROOT / "bench" / "daily.py"), "--new-session"]
        from bench import daily

        daily.new_session()
    seconds = time.perf_counter() - started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    peak_kib = max(u.ru_maxrss for u in usage)
    # CPU seconds (this process and its children, imports included) read through a shared machine's load.
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    line = f"STAGE {name} {seconds:.3f} s peak {peak_kib / 2**20:.3f} GiB cpu {cpu:.3f} s"
    with open(Path(os.environ["QUANT_HOME"]) / "scale-stages.log", "a") as log:
        log.write(line + "\n")
    print(line, flush=True)


def _decide_stage(n: int) -> None:
    """One day's Monte Carlo + Kelly + bands (``sizing.decide`` and ``montecarlo.bands``, the projections' maths) on
    ``n`` symbols, without the pipeline around it: the residuals are the last year of the widened sample's own
    returns (market and sector factors, fat tails), the ensemble rows Student-t laws with a spread of drifts."""
    import numpy as np
    import pandas as pd
    import polars as pl

    from quant_assets.lib.market.providers.sample import load_sample
    from quant_assets.lib.models.base import student_t_distribution
    from quant_assets.lib.projections.montecarlo import bands
    from quant_assets.lib.projections.sizing import SizingPolicy, decide
    from quant_assets.lib.vocabulary import DEFAULT_UNIVERSE, HORIZONS, SAMPLE_LAST_DATE, synthetic_symbols

    from datetime import date

    universe = (*DEFAULT_UNIVERSE, *synthetic_symbols(n - len(DEFAULT_UNIVERSE)))
    prices, _ = load_sample(universe, date(2021, 6, 1), 7, n - len(DEFAULT_UNIVERSE))
    wide = (prices.sort("symbol", "date").with_columns(pl.col("close").log().diff().over("symbol").alias("r"))
            .pivot(on="symbol", index="date", values="r").sort("date").tail(252).drop("date").to_pandas())
    residuals = wide - wide.mean()
    symbols = sorted(universe)
    rng = np.random.default_rng(0)
    daily_vol = residuals.std().reindex(symbols).fillna(0.02).to_numpy()
    drift = rng.normal(0.0003, 0.0004, len(symbols))
    rows = []
    for h in HORIZONS:
        steps = h.equity_sessions
        dist = student_t_distribution(drift * steps, daily_vol * np.sqrt(steps), dof=5.0)
        rows.append(dist.assign(symbol=symbols, horizon=h.label, confidence=rng.uniform(0.45, 0.65, len(symbols))))
    marginals = pd.concat(rows, ignore_index=True)
    started, cpu = time.perf_counter(), time.process_time()
    decision = decide(marginals, residuals, SAMPLE_LAST_DATE, SizingPolicy())
    bands(decision.scenarios, decision.fractional)
    seconds = time.perf_counter() - started
    held = sum(w > 0 for w in decision.fractional.values())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"DECIDE {n} {seconds:.3f} s peak {peak_kib / 2**20:.3f} GiB eligible {len(decision.eligible)} "
          f"held {held} cpu {time.process_time() - cpu:.3f} s", flush=True)


def _run_stage(name: str, env: dict[str, str]) -> tuple[float, float, float, str]:
    child = subprocess.run([sys.executable, __file__, "--stage", name], env=env, cwd=ROOT, capture_output=True,
                           text=True, check=False)
    found = re.search(rf"STAGE {name} ([0-9.]+) s peak ([0-9.]+) GiB cpu ([0-9.]+) s", child.stdout)
    if child.returncode != 0 or not found:
        raise RuntimeError(f"stage {name} failed (exit {child.returncode}): {child.stderr[-2000:]}")
    return float(found.group(1)), float(found.group(2)), float(found.group(3)), child.stdout


def _projector_p50_ms(warehouse: Path) -> float:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SELECT * FROM projector(10000)").fetchall()
    samples = []
    for _ in range(LATENCY_SAMPLES):
        started = time.perf_counter()
        con.execute("SELECT * FROM projector(10000)").fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    con.close()
    return statistics.median(samples)


def _api_p50_ms(env: dict[str, str]) -> float:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "quant_assets.api", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/projector"
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start within 120 s")
                time.sleep(0.2)
            client.get(url, params={"amount": 10000}).raise_for_status()  # warm: first read, live overlay cache
            samples = []
            for _ in range(LATENCY_SAMPLES):
                started = time.perf_counter()
                client.get(url, params={"amount": 10000}).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return statistics.median(samples)


def exponent(sizes: list[int], costs: list[float]) -> float:
    """k of cost ∝ N^k: the least-squares slope of log cost on log N (NaN with fewer than two sizes)."""
    if len(sizes) < 2:
        return float("nan")
    x, y = [math.log(n) for n in sizes], [math.log(max(c, 1e-9)) for c in costs]
    mx, my = statistics.mean(x), statistics.mean(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)


def _k_verdict(fitted: dict[str, float]) -> str:
    known = [k for k in fitted.values() if math.isfinite(k)]
    if not known:
        return "not measured (one size)"
    return "met" if all(k <= GOALS["k"] for k in known) else "not met"


def measure(n: int, home: Path, extra_env: dict[str, str]) -> dict[str, float]:
    env = {**os.environ, **extra_env, "QUANT_HOME": str(home), "QUANT_SAMPLE_SYMBOLS": str(n),
           "QUANT_TODAY": PREVIOUS_SESSION, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONPATH": str(ROOT)}
    for name in ("QUANT_UNIVERSE", "QUANT_PRICES_FILE", "QUANT_ONCHAIN_FILE", "QUANT_PROVIDER", "POLYGON_API_KEY"):
        env.pop(name, None)
    figures: dict[str, float] = {"n": n}
    for stage in STAGES:
        seconds, peak, cpu, out = _run_stage(stage, env)
        figures[f"{stage}_s"], figures[f"{stage}_peak_gib"], figures[f"{stage}_cpu_s"] = seconds, peak, cpu
        detail = "".join(f"\n    {line}" for line in out.splitlines() if line.startswith("new session"))
        print(f"N={n}: {stage} {seconds:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.2f} GiB "
              f"(load average {os.getloadavg()[0]:.1f}){detail}", flush=True)
    # The Projector and the API read the day's advice: measured after the projections and the daily update.
    figures["projector_p50_ms"] = _projector_p50_ms(home / "warehouse.duckdb")
    figures["api_projector_p50_ms"] = _api_p50_ms(env)
    print(f"N={n}: projector(10000) p50 {figures['projector_p50_ms']:.2f} ms, /api/projector p50 "
          f"{figures['api_projector_p50_ms']:.1f} ms (load average {os.getloadavg()[0]:.1f})", flush=True)
    return figures


def decide_only(sizes: list[int]) -> int:
    """One day's sizing maths per N, each in a fresh process, and its exponent k."""
    rows = []
    for n in sizes:
        child = subprocess.run([sys.executable, __file__, "--decide", str(n)], cwd=ROOT, capture_output=True,
                               text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
        found = re.search(r"DECIDE (\d+) ([0-9.]+) s peak ([0-9.]+) GiB eligible (\d+) held (\d+) cpu ([0-9.]+) s",
                          child.stdout)
        if child.returncode != 0 or not found:
            print(f"N={n}: failed (exit {child.returncode}): {child.stderr[-2000:]}")
            return 1
        rows.append({"n": n, "decide_s": float(found.group(2)), "decide_peak_gib": float(found.group(3)),
                     "eligible": int(found.group(4)), "held": int(found.group(5)),
                     "decide_cpu_s": float(found.group(6))})
        row = rows[-1]
        print(f"N={n}: Monte Carlo (10,000 scenarios) + full and half Kelly over {row['eligible']} candidates + "
              f"bands: {row['decide_s']:.1f} s wall, {row['decide_cpu_s']:.1f} s CPU, peak {row['decide_peak_gib']:.2f} "
              f"GiB, {row['held']} held (load average {os.getloadavg()[0]:.1f})", flush=True)
    k = exponent([r["n"] for r in rows], [r["decide_s"] for r in rows])
    k_cpu = exponent([r["n"] for r in rows], [r["decide_cpu_s"] for r in rows])
    print(f"k of the day's sizing maths: {k:.2f} wall, {k_cpu:.2f} CPU (goal <= {GOALS['k']}); at N={rows[-1]['n']} "
          f"{rows[-1]['decide_s']:.1f} s (goal <= {GOALS['projections_s']:.0f} s for the whole projections step)")
    print(json.dumps({"sizes": sizes, "decide_only": True, "per_n": rows, "k": {"decide_s": k, "decide_cpu_s": k_cpu},
                      "load_average": os.getloadavg()[0]}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 25 and 50 on three training years")
    parser.add_argument("--sizes", type=int, nargs="+", help="the universe sizes N (each at least 23)")
    parser.add_argument("--decide-only", action="store_true",
                        help="only one day's Monte Carlo + Kelly + bands per N, without the pipeline (seconds)")
    parser.add_argument("--keep", type=Path, help="work (and keep each N's QUANT_HOME) in this folder")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    sizes = args.sizes or plan["sizes"]
    if args.decide_only:
        return decide_only(args.sizes or FULL["sizes"])
    work = args.keep or Path(tempfile.mkdtemp(prefix="quant-bench-scale-"))
    began = time.perf_counter()
    rows = []
    try:
        for n in sizes:
            home = work / f"n{n}"
            shutil.rmtree(home, ignore_errors=True)
            rows.append(measure(n, home, plan["env"]))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    costs = [f"{s}_{kind}" for s in STAGES for kind in ("s", "cpu_s")] + ["projector_p50_ms", "api_projector_p50_ms"]
    fitted = {name: exponent([r["n"] for r in rows], [r[name] for r in rows]) for name in costs}
    print(f"\n{'stage':<22}" + "".join(f"{'N=' + str(r['n']):>12}" for r in rows) + f"{'k':>8}")
    for name in costs:
        print(f"{name:<22}" + "".join(f"{r[name]:>12.2f}" for r in rows) + f"{fitted[name]:>8.2f}")
    largest = rows[-1]
    peak = max(v for r in rows for k, v in r.items() if k.endswith("_peak_gib"))
    print(f"at N={largest['n']}: projections {largest['projections_s']:.1f} s (goal <= {GOALS['projections_s']:.0f}), "
          f"/api/projector p50 {largest['api_projector_p50_ms']:.1f} ms (goal <= {GOALS['api_projector_p50_ms']:.0f}), "
          f"daily update {largest['daily_update_s']:.0f} s (goal <= {GOALS['daily_update_s']:.0f}), peak memory "
          f"{peak:.2f} GiB (goal <= {GOALS['peak_gib']:.0f}); every k <= {GOALS['k']}: "
          f"{_k_verdict(fitted)}; whole bench "
          f"{time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.1f} (a shared machine)")
    print(json.dumps({"sizes": sizes, "quick": args.quick, "per_n": rows,
                      "k": {name: k if math.isfinite(k) else None for name, k in fitted.items()},
                      "load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--decide"]:
        _decide_stage(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:2] == ["--stage"]:
        _stage(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
