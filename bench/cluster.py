"""Wall time of the walk_forward backfill of four windows through the distributed profile (daemon + Celery) with one
and with two Celery workers, and the per-step costs the README's capacity plan is computed from: seconds per step
(Dagster's step events), peak memory of a worker process, and the object store's volume per window.

    nice -n 10 .venv/bin/python bench/cluster.py [--windows 4] [--workers 1 2] [--keep DIR]

Uses `make cluster-demo`'s universe unless QUANT_UNIVERSE / QUANT_HISTORY_START / QUANT_WF_TRAIN_YEARS are set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_assets.deploy import demo  # noqa: E402
from quant_assets.deploy.services import BUCKET  # noqa: E402


class WorkerUsage(threading.Thread):
    """Samples the Celery workers' process groups twice a second: the peak resident memory of one process, and the
    CPU seconds of every process (user + system, last seen), which is what the steps cost in core-seconds."""

    def __init__(self, groups: list[int]) -> None:
        super().__init__(daemon=True)
        self.groups, self.peak_mib, self.done = set(groups), 0.0, threading.Event()
        self.cpu_seconds: dict[int, float] = {}

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.done.wait(0.5):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                    if int(stat[2]) in self.groups:
                        self.cpu_seconds[int(pid)] = (int(stat[11]) + int(stat[12])) / tick
                        rss = next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))
                        self.peak_mib = max(self.peak_mib, int(rss.split()[1]) / 1024)
                except (OSError, StopIteration, IndexError, ValueError):
                    continue


def step_seconds(cluster: demo.Cluster) -> dict[str, list[float]]:
    """Seconds of every successful step of every run in the instance, by step key."""
    from dagster import DagsterEventType, DagsterInstance

    os.environ["QUANT_DAGSTER_PG_URL"] = cluster.env["QUANT_DAGSTER_PG_URL"]
    out: dict[str, list[float]] = defaultdict(list)
    with DagsterInstance.from_config(str(cluster.dagster_home)) as instance:
        for run in instance.get_runs():
            started = {}
            for entry in instance.all_logs(run.run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}):
                if entry.dagster_event.event_type == DagsterEventType.STEP_START:
                    started[entry.step_key] = entry.timestamp
                elif entry.step_key in started:
                    out[entry.step_key].append(entry.timestamp - started[entry.step_key])
    return out


def object_store_mib(cluster: demo.Cluster) -> dict[str, float]:
    from quant_assets.lib.storage.object_store import filesystem

    fs = filesystem(cluster.env["QUANT_S3_ENDPOINT_URL"])
    os.environ.update({k: cluster.env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    return {prefix: sum(fs.du(f"{BUCKET}/{prefix}", total=False).values()) / 2**20 for prefix in ("warehouse", "mlflow")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep its market data and features for "
                        "the next run (a `make cluster-demo --keep` folder works too)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="quant-bench-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _, prepared, windows = demo.prepare(work, args.windows)
        print(f"universe {demo.base_env()['QUANT_UNIVERSE']}; windows {', '.join(windows)}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        wall = {}
        for workers in args.workers:
            home = work / f"cluster-{workers}"
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(work / f"run-{workers}", ignore_errors=True)
            home.mkdir()
            shutil.copy(prepared / "warehouse.duckdb", home / "warehouse.duckdb")
            cluster = demo.start_cluster(work / f"run-{workers}", home, workers)
            try:
                usage = WorkerUsage([p.pid for name, p in cluster.stack.processes if name.startswith("worker-")])
                usage.start()
                time.sleep(1.5)  # a first sample: the workers' start-up is not the steps' cost
                before = sum(usage.cpu_seconds.values())
                wall[workers] = demo.backfill(cluster, windows)
                usage.done.set()
                usage.join()
                steps = step_seconds(cluster)
                volume = object_store_mib(cluster)
            finally:
                cluster.stack.stop()
            print(f"\n{workers} worker(s): backfill of {len(windows)} windows in {wall[workers]:.1f} s wall; "
                  f"workers' CPU {sum(usage.cpu_seconds.values()) - before:.0f} core-seconds; peak worker process memory "
                  f"{usage.peak_mib:.0f} MiB; object store {volume['warehouse']:.2f} MiB Parquet + "
                  f"{volume['mlflow']:.2f} MiB MLflow artifacts; load average {os.getloadavg()[0]:.1f}", flush=True)
            print(f"{'step':<36}{'n':>4}{'mean s':>9}{'max s':>9}")
            for key in sorted(steps, key=lambda k: -statistics.mean(steps[k])):
                print(f"{key:<36}{len(steps[key]):>4}{statistics.mean(steps[key]):>9.1f}{max(steps[key]):>9.1f}")
            fits = sum(sum(v) for k, v in steps.items() if k.startswith("fit_") and "training_cutoff" not in k)
            print(f"fit steps: {fits:.0f} worker-seconds in all, {fits / len(windows):.0f} per window", flush=True)
        if 1 in wall and 2 in wall:
            print(f"\nspeed-up with two workers: {wall[1] / wall[2]:.2f}x (two cores shared with other work; ideal 2x)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
