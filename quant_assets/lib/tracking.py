"""MLflow tracking for walk-forward folds: one run per (model, window), safe across parallel processes.

MLflow's SQLite store answers "database is locked" when two processes write at once, and its first
use runs schema migrations that must not race; so every MLflow call here happens under one
cross-process file lock, in a single short critical section at the end of a fit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from filelock import FileLock

EXPERIMENT = "walk_forward"
FOLD_TAGS = ("model", "window")


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


def log_fold(
    *,
    tracking_uri: str,
    artifact_root: Path,
    lock_path: Path,
    run_name: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    save_artifacts: Callable[[Path], None],
) -> str:
    """Log one fold as an MLflow run and return its run id.

    ``save_artifacts(folder)`` writes the fitted model files into ``folder``; they are logged under ``model/``.
    A fold is named by its ``model`` and ``window`` tags: earlier live runs of the same fold (a window
    materialized again) are deleted, MLflow's soft delete that hides them from the UI and from searches but
    can be undone (``mlflow.restore_run``), so the experiment holds one live run per fold as the warehouse
    holds one set of predictions.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save_artifacts(Path(folder))
        with FileLock(str(lock_path), timeout=600):
            mlflow, experiment_id = _configure(tracking_uri, artifact_root)
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                mlflow.set_tags(dict(tags))
                mlflow.log_params({k: _param(v) for k, v in params.items()})
                finite = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
                if finite:
                    mlflow.log_metrics(finite)
                mlflow.log_artifacts(folder, artifact_path="model")
            fold = " and ".join(f"tags.{key} = '{tags[key]}'" for key in FOLD_TAGS)
            for earlier in mlflow.search_runs([experiment_id], filter_string=fold, output_format="list"):
                if earlier.info.run_id != run.info.run_id:
                    mlflow.delete_run(earlier.info.run_id)
            return run.info.run_id


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
