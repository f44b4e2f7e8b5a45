"""One order of writes for a fold: the warehouse commits first, MLflow is completed after it. Whichever side fails,
a ``forecasts.fits`` row points at a live MLflow run (or there is no fit row), and MLflow shows no figures for
predictions that were never stored."""

from datetime import date

import mlflow
import pandas as pd
import pytest

from quant_assets.lib.walk_forward import folds
from quant_assets.lib.walk_forward import training
from quant_assets.lib.walk_forward.tracking import find_runs
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.synthetic import labels_known_on, synthetic_market

WINDOW = date(2021, 3, 1)
MODEL = "ridge"


class Planted(RuntimeError):
    """The failure a test plants on one side of the write."""


@pytest.fixture
def fold(quant_home, monkeypatch):
    """Settings and a warehouse holding synthetic features, labels and the window's plan."""
    monkeypatch.setenv("QUANT_WF_TRAIN_YEARS", "2")
    settings = Settings()
    warehouse = Warehouse(settings.warehouse_path)
    prices, features = synthetic_market()
    warehouse.replace("features.features", features)
    warehouse.replace("labels.forward_returns", labels_known_on(prices, None))
    folds.plan_and_store(warehouse, settings.window_rules, WINDOW, date(2021, 4, 1))
    return settings, warehouse


def fit(fold):
    settings, warehouse = fold
    return folds.fit_and_store(warehouse, MODEL, WINDOW, seed=settings.seed, models_home=settings.models_home,
                               tracking=settings.tracking_store, dagster_run_id="test-run")


def live_runs(settings) -> pd.DataFrame:
    return find_runs(settings.mlflow_uri, settings.mlflow_lock)


def stored(warehouse) -> dict[str, pd.DataFrame]:
    return {table: warehouse.query(f"SELECT * FROM {table} ORDER BY ALL")
            for table in ("forecasts.predictions", "forecasts.fits", "forecasts.scores")}


def fit_rows_point_at_live_runs(fold) -> set[str]:
    """The run ids the fit rows carry, after checking each one is a live run; returns them."""
    settings, warehouse = fold
    if not warehouse.table_exists("forecasts.fits"):
        return set()
    pointed = set(warehouse.query("SELECT DISTINCT mlflow_run_id FROM forecasts.fits")["mlflow_run_id"])
    live = set(live_runs(settings)["run_id"]) if pointed else set()
    assert pointed <= live, f"fit rows point at runs that are not live: {pointed - live}"
    return pointed


def failing_scores_write(original):
    """``replace_in`` that fails on the fold's third table, after predictions and fits were replaced in the
    transaction: the rollback must undo those two."""
    def replace_in(con, table, frame, where):
        if table == "forecasts.scores":
            raise Planted("disk full while writing forecasts.scores")
        return original(con, table, frame, where)
    return replace_in


def test_a_good_fit_stores_rows_pointing_at_its_finished_run(fold):
    summary = fit(fold)
    assert fit_rows_point_at_live_runs(fold) == {summary["mlflow_run_id"]}
    run = mlflow.MlflowClient(fold[0].mlflow_uri).get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["state"] == "stored"
    assert run.data.metrics["crps_1w"] > 0 and run.data.params["model"] == MODEL


def test_a_failed_first_store_leaves_no_fit_row_and_no_live_run(fold, monkeypatch):
    monkeypatch.setattr(training, "replace_in", failing_scores_write(training.replace_in))
    with pytest.raises(Planted):
        fit(fold)
    settings, warehouse = fold
    assert not warehouse.table_exists("forecasts.predictions")  # the rollback took even the new tables
    assert fit_rows_point_at_live_runs(fold) == set() and live_runs(settings).empty
    client = mlflow.MlflowClient(settings.mlflow_uri)
    failed = client.search_runs([client.get_experiment_by_name("walk_forward").experiment_id],
                                run_view_type=mlflow.entities.ViewType.ALL)
    assert [(r.info.status, r.info.lifecycle_stage) for r in failed] == [("FAILED", "deleted")]


def test_a_failed_store_over_an_earlier_fit_keeps_the_earlier_rows_and_run(fold, monkeypatch):
    first = fit(fold)["mlflow_run_id"]
    before = stored(fold[1])
    monkeypatch.setattr(training, "replace_in", failing_scores_write(training.replace_in))
    with pytest.raises(Planted):
        fit(fold)
    after = stored(fold[1])
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame)
    assert fit_rows_point_at_live_runs(fold) == {first}
    assert set(live_runs(fold[0])["run_id"]) == {first}  # the refit's reserved run is gone, the earlier one kept


def test_mlflow_failing_before_the_commit_changes_nothing_stored(fold, monkeypatch):
    first = fit(fold)["mlflow_run_id"]
    before = stored(fold[1])

    def unreachable_tracking_server(**kwargs):
        raise Planted("MLflow tracking server unreachable")

    monkeypatch.setattr(folds, "reserve_run", unreachable_tracking_server)
    with pytest.raises(Planted):
        fit(fold)
    for table, frame in stored(fold[1]).items():
        pd.testing.assert_frame_equal(frame, before[table])
    assert fit_rows_point_at_live_runs(fold) == {first} and set(live_runs(fold[0])["run_id"]) == {first}


def test_mlflow_failing_after_the_commit_leaves_the_new_rows_on_a_live_run(fold, monkeypatch):
    first = fit(fold)["mlflow_run_id"]

    def failing_log_metrics(*args, **kwargs):
        raise Planted("MLflow store went away while logging metrics")

    monkeypatch.setattr(mlflow, "log_metrics", failing_log_metrics)
    with pytest.raises(Planted):
        fit(fold)
    (pointed,) = fit_rows_point_at_live_runs(fold)
    assert pointed != first  # the warehouse committed the refit; its run is live (status FAILED, no metrics)
    run = mlflow.MlflowClient(fold[0].mlflow_uri).get_run(pointed)
    assert run.info.status == "FAILED" and run.info.lifecycle_stage == "active" and not run.data.metrics

    monkeypatch.undo()
    again = fit(fold)["mlflow_run_id"]  # the next fit of the fold leaves one live run, the stored one
    assert fit_rows_point_at_live_runs(fold) == {again} and set(live_runs(fold[0])["run_id"]) == {again}
