"""The distributed profile on one window, as `make cluster-demo` runs it: PostgreSQL, Redis, moto's S3 server, an
MLflow server, a Celery worker and the Dagster daemon started for the test; the walk_forward backfill goes through
the daemon and Celery; the fits' Parquet lands on the object store and in the warehouse; the predictions and the
Projector equal a single-machine run; every service is gone afterwards."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from quant_assets.deploy import demo
from quant_assets.deploy.services import BUCKET
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets_tests.support.runs import materialize

ALL_FITS = [*MODEL_NAMES, BASELINE]


def test_one_window_through_the_cluster_equals_one_machine(quant_home, tmp_path, monkeypatch):
    """One test, one cluster: pytest-xdist would start a module fixture's services once per worker."""
    monkeypatch.setenv("QUANT_WF_TRAIN_YEARS", "3")
    # Market data and features in process (an ephemeral instance: minutes faster than the demo's stage), then the
    # demo's own preparation, which keeps them and copies the warehouse to the cluster's home.
    monkeypatch.setenv("QUANT_HOME", str(tmp_path / "single"))
    assert materialize(dg.AssetSelection.groups("market", "features")).success
    single_home, cluster_home, windows = demo.prepare(tmp_path, 1)
    window = windows[0]
    cluster = demo.start_cluster(tmp_path, cluster_home, workers=1)
    groups = [process.pid for _, process in cluster.stack.processes]
    try:
        demo.backfill(cluster, windows)
        seen = _inspect(cluster)
        demo.stage("finish", cluster.env, *windows, log=tmp_path / "demo.log")
    finally:
        cluster.stack.stop()

    # Every service is stopped, with the processes it started (each service leads its own process group).
    assert len(groups) == 6  # PostgreSQL, Redis, S3, MLflow, one Celery worker, the daemon
    assert members_of(groups) == []

    # The instance is PostgreSQL, and every step ran on the Celery worker, the fits and the warehouse steps.
    assert seen["storage"] == "PostgresRunStorage"
    celery = " ".join(seen["celery_steps"])
    for step in ["walk_forward_plan", "walk_forward_inputs", "walk_forward_outputs", *(f"fit_{m}" for m in ALL_FITS)]:
        assert f"Executing steps {step} in celery worker" in celery

    # The inputs and each fit's three tables are Parquet on the object store.
    expected = {f"walk_forward_inputs/{window}/{t}.parquet" for t in ("forecasts.plans", "features.features", "labels.forward_returns")}
    expected |= {f"fit_{m}/{window}/{t}.parquet" for m in ALL_FITS for t in ("forecasts.predictions", "forecasts.fits", "forecasts.scores")}
    assert set(seen["parquet"]) == expected

    # The fitted models are on the object store too, where the warehouse's host reads them for the daily step.
    assert {path.split("/")[2] for path in seen["models"]} == set(ALL_FITS)
    assert not (cluster_home / "models").exists()
    assert f"rows from models in s3://{BUCKET}/warehouse" in (tmp_path / "demo.log").read_text()

    # MLflow: one run per fold in the server's PostgreSQL store, the models as artifacts on the object store.
    assert seen["mlflow_windows"] == [window] and seen["mlflow_models"] == sorted(ALL_FITS)
    assert seen["artifact_uris"] == ["mlflow-artifacts"]
    assert any(path.endswith((".joblib", ".pt")) for path in seen["artifacts"])

    # The same window on one machine: the same predictions and the same Projector.
    demo.stage("single", {**demo.base_env(), "QUANT_HOME": str(single_home)}, *windows, log=tmp_path / "demo.log")
    comparison = demo.compare(single_home, cluster_home, windows)
    rows = comparison["rows"]
    assert rows["single"] > 0 and rows["single"] == rows["cluster"] == comparison["matched"]
    assert comparison["max_abs_diff"] <= demo.TOLERANCE
    assert comparison["projector_identical"]
    assert {"CASH", "TOTAL"} <= set(comparison["projector"]["symbol"])


def members_of(groups):
    """Live processes in the given process groups (each service leads its own group, its children inside it)."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) in groups and fields[0] != "Z":
            alive.append(int(pid))
    return alive


def _inspect(cluster):
    """What a person would look at while the cluster runs: the object store, MLflow, and the Dagster instance."""
    code = f"""
import json, mlflow
from dagster import DagsterInstance, DagsterEventType, EventRecordsFilter
from quant_assets.lib.storage.object_store import filesystem
from quant_assets.settings import get_settings
settings = get_settings()
fs = filesystem(settings.s3_endpoint_url)
parquet = sorted(p.split("/", 2)[2] for p in fs.find("{BUCKET}/warehouse") if p.endswith(".parquet"))
models = sorted(p.split("/", 2)[2] for p in fs.find("{BUCKET}/warehouse/models"))
artifacts = sorted(p.split("/", 1)[1] for p in fs.find("{BUCKET}/mlflow"))
runs = mlflow.search_runs(experiment_names=["walk_forward"], output_format="list")
with DagsterInstance.get() as instance:
    engine = [r.event_log_entry.dagster_event.message for r in instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ENGINE_EVENT), limit=500)]
    storage = type(instance.run_storage).__name__
print(json.dumps({{"parquet": parquet, "models": models, "artifacts": artifacts, "storage": storage,
                  "mlflow_windows": sorted({{r.data.tags["window"] for r in runs}}),
                  "mlflow_models": sorted({{r.data.tags["model"] for r in runs}}),
                  "artifact_uris": sorted({{r.info.artifact_uri.split(":")[0] for r in runs}}),
                  "celery_steps": sorted(m for m in engine if m and "in celery worker" in m)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], env=cluster.env, capture_output=True, text=True, check=True)
    return __import__("json").loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("executor, expected", [("celery", "celery_walk_forward"), ("k8s", "k8s")])
def test_the_profile_setting_chooses_the_walk_forward_executor(quant_home, monkeypatch, executor, expected):
    from quant_assets.definitions import build_definitions

    monkeypatch.setenv("QUANT_PROFILE", "cluster")
    monkeypatch.setenv("QUANT_OBJECT_STORE", "s3://quant/warehouse")
    monkeypatch.setenv("QUANT_CLUSTER_EXECUTOR", executor)
    job = build_definitions().resolve_job_def("walk_forward")
    assert job.executor_def.name == expected
    assert {"walk_forward_inputs", "walk_forward_outputs", "fit_ridge"} <= {node.name for node in job.nodes}


def test_the_single_machine_default_is_unchanged(quant_home):
    from quant_assets.definitions import build_definitions

    job = build_definitions().resolve_job_def("walk_forward")
    assert job.executor_def.name == "preloaded_multiprocess"
    assert "walk_forward_inputs" not in {node.name for node in job.nodes}


def test_the_cluster_profile_without_an_object_store_is_refused_in_one_sentence(quant_home, monkeypatch):
    from quant_assets.settings import Settings

    monkeypatch.setenv("QUANT_PROFILE", "cluster")
    with pytest.raises(ValueError, match="QUANT_PROFILE=cluster needs QUANT_OBJECT_STORE"):
        Settings()
