"""`make cluster-demo`: the distributed profile end to end on this machine, checked against one machine.

1. A single-machine QUANT_HOME gets market data and features (the demo's small universe unless QUANT_UNIVERSE is
   set); its warehouse is copied to a cluster QUANT_HOME.
2. PostgreSQL, Redis, an S3 endpoint (moto), an MLflow server (PostgreSQL + S3 artifacts), Celery workers and the
   Dagster daemon start; ``dagster job backfill`` submits the walk_forward job for N windows; the daemon launches
   the runs, whose steps run on the Celery workers and write Parquet to the object store; the warehouse imports it.
3. The same windows run on one machine (the single profile's multiprocess executor).
4. Both homes run the ensemble and projections; the predictions (max abs diff) and the Projector are compared.

Everything started is stopped on exit, on failure too. Usage: ``python -m quant_assets.deploy.demo [--windows 4]
[--workers 2] [--keep DIR]``; the stage commands (``prepare``, ``single``, ``finish``) are what the demo runs in
child processes, each with its own profile's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from quant_assets import paths
from quant_assets.deploy.services import BIN, BUCKET, LOCAL_S3_CREDENTIALS, REPO, ServiceStack

# A universe and training span small enough for minutes on two cores (the history starts where the first window's
# training needs it); QUANT_* in the environment win.
DEMO_DEFAULTS = {"QUANT_UNIVERSE": "AAPL,MSFT,JNJ,XOM,SP500,BTC", "QUANT_WF_TRAIN_YEARS": "4",
                 "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
# Variables of the person's own setup that must not leak into the demo's two homes.
PRIVATE = ("QUANT_HOME", "QUANT_PROFILE", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "QUANT_OBJECT_STORE",
           "QUANT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "QUANT_CELERY_BROKER", "QUANT_DAGSTER_PG_URL")
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TOLERANCE = 1e-9
DEMO_PAUSED_SENSORS = ("automation", "prices_freshness_sensor")


@dataclass
class Cluster:
    """The running services of one demo and the environment of every process of the cluster profile."""

    stack: ServiceStack
    env: dict[str, str]
    dagster_home: Path


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    for name, value in DEMO_DEFAULTS.items():
        env.setdefault(name, value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def stage(name: str, env: dict[str, str], *args: str, log: Path) -> None:
    """Run one stage of this module in a child process with ``env`` (one profile per process: the Definitions
    are built once per import)."""
    with open(log, "ab") as out:
        done = subprocess.run([sys.executable, "-m", "quant_assets.deploy.demo", name, *args], env=env, cwd=REPO,
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"cluster demo: stage {name} failed (exit {done.returncode}); see {log}")


def start_cluster(work: Path, home: Path, workers: int) -> Cluster:
    """Start the services into ``work/services`` for a cluster QUANT_HOME ``home``; the caller stops them."""
    stack = ServiceStack(work / "services", env=base_env())
    stack.__enter__()
    try:
        pg = stack.start_postgres()
        broker = stack.start_redis()
        endpoint = stack.start_object_store()
        s3 = {**LOCAL_S3_CREDENTIALS, "QUANT_S3_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
        stack.env.update(s3)
        tracking = stack.start_mlflow(f"{pg}/mlflow", f"s3://{BUCKET}/mlflow")
        dagster_home = paths.dagster_home(home)
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        stack.env.update({"QUANT_HOME": str(home), "QUANT_PROFILE": "cluster", "QUANT_OBJECT_STORE": f"s3://{BUCKET}/warehouse",
                          "QUANT_CELERY_BROKER": broker, "QUANT_DAGSTER_PG_URL": f"{pg}/dagster",
                          "MLFLOW_TRACKING_URI": tracking, "DAGSTER_HOME": str(dagster_home)})
        _create_experiment(stack.env)
        config = work / "celery.yaml"
        config.write_text(json.dumps({"execution": {"config": {"broker": broker, "backend": broker}}}))
        for index in range(workers):
            # The first worker stands on the warehouse's host and also serves the steps that open the warehouse.
            queues = ("dagster", "warehouse") if index == 0 else ("dagster",)
            stack.start_celery_worker(f"worker{index + 1}", queues, config)
        _pause_sensors(stack.env)
        stack.start_daemon()
    except BaseException:
        stack.stop()
        raise
    return Cluster(stack, stack.env, dagster_home)


def _pause_sensors(env: dict[str, str]) -> None:
    """The demo measures its backfill alone: the sensors that are on by default (automation, the hourly freshness
    check) are stopped in the demo's instance before the daemon starts. A team's deployment leaves them on."""
    for sensor in DEMO_PAUSED_SENSORS:
        done = subprocess.run([str(BIN / "dagster"), "sensor", "stop", sensor, "-w", str(REPO / "workspace.yaml")],
                              env=env, cwd=REPO, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"cluster demo: could not stop the sensor {sensor}: {done.stderr.strip()[-500:]}")


def _create_experiment(env: dict[str, str]) -> None:
    """The walk-forward experiment created by the server, so its artifacts go through it to the object store
    (a client creating it would give it a local artifact folder)."""
    done = subprocess.run([sys.executable, "-c", "import mlflow; from quant_assets.lib.walk_forward.tracking import EXPERIMENT; "
                           "mlflow.get_experiment_by_name(EXPERIMENT) or mlflow.create_experiment(EXPERIMENT)"],
                          env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"cluster demo: could not create the MLflow experiment: {done.stderr.strip()[-500:]}")


def backfill(cluster: Cluster, windows: list[str], timeout: float = 3600) -> float:
    """Submit the walk_forward backfill of ``windows`` to the daemon and wait for its runs; seconds taken."""
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import RunsFilter

    started = time.perf_counter()
    submitted = subprocess.run([str(BIN / "dagster"), "job", "backfill", "-w", str(REPO / "workspace.yaml"), "-j", "walk_forward",
                                "--partitions", ",".join(windows), "--noprompt"],
                               env=cluster.env, cwd=REPO, capture_output=True, text=True)
    if submitted.returncode:
        raise RuntimeError(f"cluster demo: the backfill was refused: {submitted.stderr.strip()[-2000:]}")
    os.environ["QUANT_DAGSTER_PG_URL"] = cluster.env["QUANT_DAGSTER_PG_URL"]
    with DagsterInstance.from_config(str(cluster.dagster_home)) as instance:
        backfill_id = instance.get_backfills(limit=1)[0].backfill_id
        while time.perf_counter() - started < timeout:
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            if len(runs) == len(windows) and all(run.status.value in FINISHED for run in runs):
                failed = [run.tags.get("dagster/partition") for run in runs if run.status.value != "SUCCESS"]
                if failed:
                    raise RuntimeError(f"cluster demo: walk_forward failed for windows {sorted(failed)}; "
                                       f"see the runs in the Dagster instance at {cluster.dagster_home}")
                return time.perf_counter() - started
            time.sleep(1)
    raise RuntimeError(f"cluster demo: the backfill of {windows} did not finish within {timeout:.0f}s")


def compare(single_home: Path, cluster_home: Path, windows: list[str]) -> dict[str, object]:
    """Predictions of both homes joined on their key (max abs diff of every numeric column) and both Projectors."""
    import duckdb

    from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS

    key = ["window_start", "model", "symbol", "date", "horizon"]
    columns = [*DISTRIBUTION_COLUMNS, "realized"]
    con = duckdb.connect()
    for alias, home in (("single", single_home), ("cluster", cluster_home)):
        con.execute(f"ATTACH '{paths.warehouse_path(home)}' AS {alias} (READ_ONLY)")
    chosen = ", ".join(f"DATE '{w}'" for w in windows)
    rows = {alias: con.execute(f"SELECT count(*) FROM {alias}.forecasts.predictions WHERE window_start IN ({chosen})").fetchone()[0]
            for alias in ("single", "cluster")}
    diffs = ", ".join(f"max(abs(s.{c} - c.{c}))" for c in columns)
    matched, *worst = con.execute(
        f"""SELECT count(*), {diffs} FROM single.forecasts.predictions s JOIN cluster.forecasts.predictions c USING ({', '.join(key)})
            WHERE s.window_start IN ({chosen})""").fetchone()
    projectors = {}
    for alias in ("single", "cluster"):
        con.execute(f"USE {alias}")
        projectors[alias] = con.execute("SELECT * FROM projector(10000)").df()
    con.close()
    max_diff = max((d for d in worst if d is not None), default=float("nan"))
    return {"rows": rows, "matched": matched, "max_abs_diff": max_diff,
            "projector_identical": projectors["single"].equals(projectors["cluster"]), "projector": projectors["cluster"]}


def prepare(work: Path, windows_count: int) -> tuple[Path, Path, list[str]]:
    """Market data and features in ``work/single`` (kept from an earlier demo in the same folder), copied to
    ``work/cluster``; the last ``windows_count`` windows."""
    single_home, cluster_home = work / "single", work / "cluster"
    env = base_env()
    if not paths.warehouse_path(single_home).exists():
        stage("prepare", {**env, "QUANT_HOME": str(single_home)}, log=work / "demo.log")
    shutil.rmtree(cluster_home, ignore_errors=True)
    cluster_home.mkdir(parents=True)
    shutil.copy(paths.warehouse_path(single_home), paths.warehouse_path(cluster_home))
    return single_home, cluster_home, _last_windows(env, windows_count)


def run_demo(windows_count: int, workers: int, work: Path) -> int:
    log = work / "demo.log"
    env = base_env()
    print(f"cluster demo: working in {work} (stage logs in {log}, service logs in {work / 'services'})", flush=True)
    started = time.perf_counter()
    single_home, cluster_home, windows = prepare(work, windows_count)
    print(f"cluster demo: market data and features for {env['QUANT_UNIVERSE']} in {time.perf_counter() - started:.0f}s", flush=True)

    cluster = start_cluster(work, cluster_home, workers)
    try:
        print(f"cluster demo: PostgreSQL, Redis, S3 (moto), MLflow, {workers} Celery workers and the daemon are up", flush=True)
        seconds = backfill(cluster, windows)
        print(f"cluster demo: walk_forward backfill of {len(windows)} windows ({', '.join(windows)}) through Celery "
              f"on {workers} workers in {seconds:.0f}s", flush=True)
        stage("finish", cluster.env, *windows, log=log)
    finally:
        cluster.stack.stop()
    print("cluster demo: services stopped", flush=True)

    single = time.perf_counter()
    stage("single", {**env, "QUANT_HOME": str(single_home)}, *windows, log=log)
    print(f"cluster demo: the same windows on one machine, with ensemble and projections, in "
          f"{time.perf_counter() - single:.0f}s", flush=True)
    result = compare(single_home, cluster_home, windows)
    print(f"cluster demo: predictions {result['rows']['cluster']} rows from the cluster, {result['rows']['single']} on one "
          f"machine, {result['matched']} matched; max abs diff {result['max_abs_diff']:.3g} (goal <= {TOLERANCE:g})")
    print(f"cluster demo: projector(10000) identical on both: {result['projector_identical']}")
    print(result["projector"].to_string(index=False))
    ok = (result["matched"] == result["rows"]["single"] == result["rows"]["cluster"] > 0
          and result["max_abs_diff"] <= TOLERANCE and result["projector_identical"])
    print("cluster demo: PASS" if ok else "cluster demo: FAIL", flush=True)
    return 0 if ok else 1


def _last_windows(env: dict[str, str], count: int) -> list[str]:
    listed = subprocess.run([sys.executable, "-c", "from quant_assets.settings import get_settings; "
                             "from quant_assets.defs.walk_forward.partitions import window_partitions; "
                             "print(','.join(window_partitions(get_settings()).get_partition_keys()))"],
                            env={**env, "QUANT_HOME": "/nonexistent"}, capture_output=True, text=True, check=True)
    return listed.stdout.strip().split(",")[-count:]


def _stage_main(name: str, windows: list[str]) -> None:
    from quant_assets.demo import local as demo
    from quant_assets.settings import get_settings

    if name == "prepare":
        demo.market_and_features()
        return
    if name == "single":
        for window in windows:
            demo._run("walk_forward", window)
    _predict_latest_day(demo)
    for window in windows:
        demo._run("ensemble", window)
    demo._run("projections", get_settings().clock_today.isoformat())


def _predict_latest_day(demo) -> None:
    """The daily step on the last day: in the cluster profile it predicts with the models the workers stored on the
    object store, so its rows (replacing the fit's own for that day) are compared with one machine's."""
    import dagster as dg

    from quant_assets.defs.walk_forward.daily import DAILY_PREDICTIONS_KEY
    from quant_assets.definitions import defs
    from quant_assets.settings import get_settings

    settings = get_settings()
    result = dg.materialize([defs.get_assets_def(DAILY_PREDICTIONS_KEY)], partition_key=settings.clock_today.isoformat(),
                            resources=defs.resources, instance=demo._instance(settings), run_config=demo.QUIET)
    metadata = result.asset_materializations_for_node(DAILY_PREDICTIONS_KEY.path[-1])[0].metadata
    if "note" in metadata or not metadata["dagster/row_count"].value:
        raise RuntimeError(f"cluster demo: the daily step on {settings.clock_today} predicted "
                           f"{metadata['dagster/row_count'].value} rows; {metadata.get('note', '')}")
    print(f"daily predictions {settings.clock_today}: {metadata['dagster/row_count'].value} rows from models in "
          f"{settings.models_home}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quant_assets.deploy.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", nargs="?", choices=["prepare", "single", "finish"])
    parser.add_argument("windows", nargs="*")
    parser.add_argument("--windows-count", "-n", type=int, default=4, help="walk-forward windows to backfill (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2, one step each)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it, market data and features included, "
                        "for the next demo (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.stage:
        _stage_main(args.stage, args.windows)
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="quant-cluster-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run_demo(args.windows_count, args.workers, work.resolve())
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
