"""MLflow tracking for walk-forward folds: one run per (model, window), safe across parallel processes.

MLflow's SQLite store answers "database is locked" when two processes write at once, and its first
use runs schema migrations that must not race; so every MLflow call here happens under one
cross-process file lock, in short critical sections.

A fold's run is written around the warehouse's commit, so that a ``forecasts.fits`` row always points at a
live run and MLflow never shows figures for predictions that were not stored:

1. ``reserve_run``: an empty run (status RUNNING, tag ``state=pending``) whose id the fit rows carry;
2. the warehouse commits the fold (on failure ``discard_run`` deletes the reserved run, and the earlier
   run, which the earlier fit rows point at, stays live);
3. ``complete_run``: the params, metrics and model files, status FINISHED, tag ``state=stored``, and only
   now the fold's earlier runs (and any run a killed process left pending) are deleted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

EXPERIMENT = "walk_forward"
FOLD_TAGS = ("model", "window")
STATE_TAG = "state"


@dataclass(frozen=True)
class TrackingStore:
    """Where the folds' runs are tracked: the MLflow URI, the lock every call takes, the experiment's artifacts."""

    uri: str
    lock_path: Path
    artifact_root: Path


def _configure(tracking_uri: str, artifact_root: Path):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root.as_uri())
    else:
        experiment_id = experiment.experiment_id
    return mlflow, experiment_id


def _locked(lock_path: Path) -> FileLock:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=600)


def reserve_run(*, tracking_uri: str, artifact_root: Path, lock_path: Path, run_name: str,
                tags: Mapping[str, str]) -> str:
    """Create the fold's run, empty and RUNNING with ``tags`` and ``state=pending``, and return its id.

    Nothing is logged to it until ``complete_run``, after the warehouse has stored what the run describes.
    """
    with _locked(lock_path):
        mlflow, experiment_id = _configure(tracking_uri, artifact_root)
        run = mlflow.MlflowClient().create_run(experiment_id, run_name=run_name,
                                               tags={**tags, STATE_TAG: "pending"})
        return run.info.run_id


def complete_run(*, tracking_uri: str, artifact_root: Path, lock_path: Path, run_id: str,
                 params: Mapping[str, object], metrics: Mapping[str, float],
                 save_artifacts: Callable[[Path], None]) -> None:
    """Log ``params``, the finite ``metrics`` and the files ``save_artifacts(folder)`` writes (under ``model/``)
    to the reserved run, mark it FINISHED and ``state=stored``, then delete the fold's other live runs.

    A fold is named by its ``model`` and ``window`` tags; the deletion is MLflow's soft delete, which hides a
    run from the UI and from searches but can be undone (``mlflow.restore_run``), so the experiment holds one
    live run per fold as the warehouse holds one set of predictions.
    """
    with tempfile.TemporaryDirectory() as folder:
        save_artifacts(Path(folder))
        with _locked(lock_path):
            mlflow, experiment_id = _configure(tracking_uri, artifact_root)
            with mlflow.start_run(run_id=run_id) as run:
                mlflow.log_params({k: _param(v) for k, v in params.items()})
                finite = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
                if finite:
                    mlflow.log_metrics(finite)
                mlflow.log_artifacts(folder, artifact_path="model")
                mlflow.set_tag(STATE_TAG, "stored")
            tags = run.data.tags
            fold = " and ".join(f"tags.{key} = '{tags[key]}'" for key in FOLD_TAGS)
            for earlier in mlflow.search_runs([experiment_id], filter_string=fold, output_format="list"):
                if earlier.info.run_id != run_id:
                    mlflow.delete_run(earlier.info.run_id)


def discard_run(*, tracking_uri: str, lock_path: Path, run_id: str) -> None:
    """Mark a reserved run FAILED and delete it: what it would have described was never stored."""
    import mlflow

    with _locked(lock_path):
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient()
        client.set_terminated(run_id, status="FAILED")
        client.delete_run(run_id)


def log_fold(*, tracking_uri: str, artifact_root: Path, lock_path: Path, run_name: str,
             params: Mapping[str, object], metrics: Mapping[str, float], tags: Mapping[str, str],
             save_artifacts: Callable[[Path], None]) -> str:
    """Reserve and complete a fold's run at once, for a fold with nothing to store elsewhere; returns its id."""
    run_id = reserve_run(tracking_uri=tracking_uri, artifact_root=artifact_root, lock_path=lock_path,
                         run_name=run_name, tags=tags)
    complete_run(tracking_uri=tracking_uri, artifact_root=artifact_root, lock_path=lock_path, run_id=run_id,
                 params=params, metrics=metrics, save_artifacts=save_artifacts)
    return run_id


def _param(value: object) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def find_runs(tracking_uri: str, lock_path: Path, filter_string: str = ""):
    """The runs of the walk-forward experiment as a pandas frame (empty if none)."""
    import mlflow
    import pandas as pd

    with FileLock(str(lock_path), timeout=600):
        mlflow.set_tracking_uri(tracking_uri)
        experiment = mlflow.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            return pd.DataFrame()
        return mlflow.search_runs([experiment.experiment_id], filter_string=filter_string)
