"""MLflow folds logged from parallel processes: no run lost, no "database is locked"."""

import multiprocessing
from pathlib import Path

from quant_assets.lib.walk_forward.tracking import find_runs, log_fold

PROCESSES, RUNS_EACH = 4, 5


def _log_runs(home: str, worker: int) -> list[str]:
    root = Path(home)
    ids = []
    for i in range(RUNS_EACH):
        ids.append(log_fold(
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts",
            lock_path=root / "mlflow.lock", run_name=f"w{worker}-{i}",
            params={"worker": worker, "fold": i}, metrics={"crps_1w": 0.01 * i, "ic_1w": float("nan")},
            tags={"model": f"m{worker}", "window": f"2022-{i + 1:02d}-01"},
            save_artifacts=lambda folder: (folder / "model.txt").write_text(f"{worker}-{i}"),
        ))
    return ids


def test_parallel_processes_lose_no_run(tmp_path):
    # A fresh store: the first calls also race on MLflow's schema migrations.
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        ids = pool.starmap(_log_runs, [(str(tmp_path), w) for w in range(PROCESSES)])
    logged = {run_id for batch in ids for run_id in batch}
    assert len(logged) == PROCESSES * RUNS_EACH
    runs = find_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow.lock")
    assert set(runs["run_id"]) == logged
    assert set(zip(runs["tags.model"], runs["tags.window"])) == {
        (f"m{w}", f"2022-{i + 1:02d}-01") for w in range(PROCESSES) for i in range(RUNS_EACH)}
    assert "metrics.ic_1w" not in runs.columns  # NaN metrics are left out, not logged as NaN
    artifacts = sorted(p.read_text() for p in (tmp_path / "artifacts").rglob("model.txt"))
    assert artifacts == sorted(f"{w}-{i}" for w in range(PROCESSES) for i in range(RUNS_EACH))


def test_logging_a_fold_again_leaves_one_live_run_and_keeps_the_earlier_one_restorable(tmp_path):
    import mlflow
    from mlflow.entities import ViewType

    def log(crps):
        return log_fold(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts",
            lock_path=tmp_path / "mlflow.lock", run_name="ridge 2022-10-01", params={}, metrics={"crps_1w": crps},
            tags={"model": "ridge", "window": "2022-10-01"}, save_artifacts=lambda folder: None,
        )

    first, other = log(0.02), _log_runs(str(tmp_path), 0)
    second = log(0.01)
    runs = find_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow.lock")
    assert second in set(runs["run_id"]) and first not in set(runs["run_id"])
    assert set(other) <= set(runs["run_id"]) and len(runs) == 1 + len(other)
    everything = mlflow.search_runs(search_all_experiments=True, run_view_type=ViewType.ALL, output_format="list")
    assert {r.info.run_id: r.info.lifecycle_stage for r in everything}[first] == "deleted"
