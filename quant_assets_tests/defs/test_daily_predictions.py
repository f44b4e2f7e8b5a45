"""The daily step as a user runs it: a window fitted when only the days before D existed; day D's features
arrive; daily_predictions[D] predicts them with the window's stored models, the ensemble picks them up, and
the rows equal what the window's own fit predicts for D once D exists at fit time."""

import shutil
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.folds import stored_plans
from quant_assets.lib.walk_forward.model_store import models_folder
from quant_assets.lib.walk_forward.predict_daily import load_models
from quant_assets.lib.walk_forward.training import load_panel, panel_span, predict_rows, window_context
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import TINY_UNIVERSE, materialize, use_home

WINDOW = "2022-12-01"
DAY = "2022-12-15"  # a Thursday: every symbol of the tiny universe has a row
NEXT_DAY = "2022-12-16"
DAY_BEFORE = "2022-12-14"
SATURDAY = "2022-12-10"  # only BTC has a row: the daily step's smallest batch
ALL_FITS = [*MODEL_NAMES, BASELINE]
FEATURE_TABLES = ("features.features", "labels.forward_returns")
KEY = ["model", "symbol", "horizon"]


def _hide_from(warehouse: Warehouse, day: str) -> None:
    """Move the feature and label rows dated on or after ``day`` aside, as if that day had not come yet."""
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS hidden")
        for table in FEATURE_TABLES:
            name = table.replace(".", "_")
            con.execute(f"CREATE TABLE hidden.{name} AS SELECT * FROM {table} WHERE date >= ?", [day])
            con.execute(f"DELETE FROM {table} WHERE date >= ?", [day])


def _reveal_until(warehouse: Warehouse, day: str) -> None:
    """Bring back the hidden rows dated up to ``day`` (the session of ``day`` has completed)."""
    with warehouse.writer() as con:
        for table in FEATURE_TABLES:
            name = table.replace(".", "_")
            con.execute(f"INSERT INTO {table} SELECT * FROM hidden.{name} WHERE date <= ?", [day])
            con.execute(f"DELETE FROM hidden.{name} WHERE date <= ?", [day])


def _day_rows(warehouse: Warehouse, day: str):
    return warehouse.query("SELECT * FROM forecasts.predictions WHERE window_start = ? AND date = ? ORDER BY ALL",
                           [WINDOW, day])


@pytest.fixture(scope="module")
def fitted_before_day(tmp_path_factory):
    """Market data and features; the window fitted while its latest feature row was the day before DAY."""
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, tmp_path_factory.mktemp("daily") / "quant", QUANT_WF_START="2022-11-01",
                 QUANT_WF_END="2023-01-01", QUANT_WF_TRAIN_YEARS="3")
        # The lookahead audit of the features is tested on its own; it is not what this module is about.
        assert materialize(dg.AssetSelection.groups("market", "features").without_checks()).success
        warehouse = Warehouse(Settings().warehouse_path)
        _hide_from(warehouse, DAY)
        assert materialize(dg.AssetSelection.groups("walk_forward"), partition_key=WINDOW).success
        assert _day_rows(warehouse, DAY).empty
        yield Settings(), warehouse


@pytest.fixture(scope="module")
def day_predicted(fitted_before_day):
    settings, warehouse = fitted_before_day
    _reveal_until(warehouse, DAY)
    result = materialize([dg.AssetKey("daily_predictions")], partition_key=DAY)
    return result, _day_rows(warehouse, DAY)


def test_daily_step_predicts_the_new_day_with_every_stored_model(fitted_before_day, day_predicted):
    settings, warehouse = fitted_before_day
    result, rows = day_predicted
    symbols = warehouse.query("SELECT DISTINCT symbol FROM features.features WHERE date = ?", [DAY])["symbol"]
    assert len(symbols) == len(TINY_UNIVERSE.split(","))
    assert len(rows) == len(symbols) * len(ALL_FITS) * len(HORIZONS)
    assert set(rows["model"]) == set(ALL_FITS) and not rows.duplicated(KEY).any()
    assert rows[list(DISTRIBUTION_COLUMNS)].notna().all().all() and (rows["std"] > 0).all()
    metadata = result.asset_materializations_for_node("daily_predictions")[0].metadata
    assert metadata["dagster/row_count"].value == len(rows)
    assert metadata["window_start"].value == WINDOW and "note" not in metadata
    # Materializing the day again replaces its rows: nothing doubles.
    assert materialize([dg.AssetKey("daily_predictions")], partition_key=DAY).success
    assert len(_day_rows(warehouse, DAY)) == len(rows)


def test_the_window_ensemble_picks_up_the_new_day(fitted_before_day, day_predicted):
    settings, warehouse = fitted_before_day
    assert materialize([dg.AssetKey("meta_ensemble")], partition_key=WINDOW).success
    ensemble = warehouse.query("SELECT * FROM forecasts.ensemble WHERE window_start = ? AND date = ?", [WINDOW, DAY])
    assert len(ensemble) == len(TINY_UNIVERSE.split(",")) * len(HORIZONS)
    assert ensemble[list(DISTRIBUTION_COLUMNS)].notna().all().all()


def test_a_model_without_stored_fit_is_skipped_and_named(fitted_before_day, day_predicted):
    settings, warehouse = fitted_before_day
    _reveal_until(warehouse, NEXT_DAY)
    tcn = models_folder(settings.home, date.fromisoformat(WINDOW), "tcn")
    aside = tcn.with_name("tcn-aside")
    shutil.move(tcn, aside)
    try:
        result = materialize([dg.AssetKey("daily_predictions")], partition_key=NEXT_DAY)
    finally:
        shutil.move(aside, tcn)
    metadata = result.asset_materializations_for_node("daily_predictions")[0].metadata
    assert "tcn" in metadata["note"].value and "tcn" not in metadata["models"].value
    rows = _day_rows(warehouse, NEXT_DAY)
    assert set(rows["model"]) == set(ALL_FITS) - {"tcn"}


def test_a_day_before_every_window_predicts_nothing(fitted_before_day):
    result = materialize([dg.AssetKey("daily_predictions")], partition_key="2022-06-15")
    metadata = result.asset_materializations_for_node("daily_predictions")[0].metadata
    assert metadata["dagster/row_count"].value == 0 and "no walk-forward window" in metadata["note"].value


def _assert_same_rows(daily, fitted):
    assert len(daily) == len(fitted) > 0
    merged = daily.merge(fitted, on=KEY, suffixes=("_daily", "_fit"))
    assert len(merged) == len(daily)
    for column in DISTRIBUTION_COLUMNS:
        # The torch models compute in float32: a day's batch and the fit's batch of the window round apart by up to
        # float32's precision (about 1e-8 measured); every other model agrees to 1e-15.
        assert np.abs(merged[f"{column}_daily"] - merged[f"{column}_fit"]).max() <= 1e-7, column


@pytest.mark.parametrize("day", [DAY_BEFORE, SATURDAY])
def test_a_day_the_fit_saw_is_predicted_as_the_fit_stored_it(fitted_before_day, day_predicted, day):
    settings, warehouse = fitted_before_day
    stored_by_fit = _day_rows(warehouse, day)
    assert materialize([dg.AssetKey("daily_predictions")], partition_key=day).success
    _assert_same_rows(_day_rows(warehouse, day), stored_by_fit)


def test_the_new_day_is_predicted_as_the_fit_predicts_it_once_the_month_exists(fitted_before_day, day_predicted):
    """The window's own prediction code (the whole month as its context, as a fit sees it) with the same
    stored models gives the daily step's rows for DAY, to 1e-9."""
    settings, warehouse = fitted_before_day
    _, daily = day_predicted
    _reveal_until(warehouse, "2022-12-31")
    window_start = date.fromisoformat(WINDOW)
    plans = stored_plans(warehouse, window_start)
    panel = load_panel(warehouse, *panel_span(plans))
    context, in_window = window_context(panel, plans[0])
    models, missing = load_models(settings.home, window_start)
    assert missing == [] and in_window.sum() > len(daily) / len(ALL_FITS) / len(HORIZONS)
    whole_month = pd.concat([predict_rows(model, context, in_window, panel, window_start, name)
                             for name, by_horizon in models.items() for model in by_horizon.values()])
    _assert_same_rows(daily, whole_month[whole_month["date"] == pd.Timestamp(DAY)])
