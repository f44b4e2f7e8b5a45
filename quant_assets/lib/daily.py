"""The daily prediction step: each new day's feature rows predicted with the stored models of the window
that contains the day, so a window fitted when it opened keeps forecasting through its month.

The rows are the ones the window's fit would have written for that day had the day existed at fit time:
the same models predict the same context (the window's start minus ``CONTEXT_DAYS`` up to the day, which
is all GARCH, the sequence models and the baseline read of a row's past), through the fit's own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from quant_assets.lib.model_store import load_window_models
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.models.base import Forecaster
from quant_assets.lib.training import CONTEXT_DAYS, PREDICTION_COLUMNS, feature_frame, load_panel, predict_rows
from quant_assets.lib.warehouse import Warehouse, replace_in

WindowModels = Mapping[str, Mapping[str, Forecaster]]


def load_models(home: Path | str, window_start: date,
                models: Sequence[str] = (*MODEL_NAMES, BASELINE)) -> tuple[dict[str, dict[str, Forecaster]], list[str]]:
    """The stored fits of the window (model -> horizon -> forecaster) and the names of the models that have none."""
    loaded, missing = {}, []
    for name in models:
        fitted = load_window_models(home, window_start, name)
        if fitted is None:
            missing.append(name)
        else:
            loaded[name] = fitted
    return loaded, missing


def load_day_panel(warehouse: Warehouse, window_start: date, day: date) -> pd.DataFrame:
    """Feature rows (with their labels as they stand) from the window's prediction context up to ``day``."""
    return load_panel(warehouse, window_start - timedelta(days=CONTEXT_DAYS), day + timedelta(days=1))


def predict_day(models: WindowModels, panel: pd.DataFrame, window_start: date, day: date) -> pd.DataFrame:
    """Rows of ``forecasts.predictions`` for ``day``: every model and horizon, every symbol with a feature
    row that day (no row at all when the day has none, e.g. a weekend without crypto)."""
    on_day = (panel["date"] == pd.Timestamp(day)).to_numpy()
    if not on_day.any() or not models:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    context = feature_frame(panel)
    parts = [predict_rows(model, context, on_day, panel, window_start, name)
             for name, by_horizon in models.items() for model in by_horizon.values()]
    return pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]


def store_day(warehouse: Warehouse, rows: pd.DataFrame, window_start: date, day: date, models: Sequence[str]) -> int:
    """Replace the day's rows of each of ``models`` in the window, in one transaction. Models not listed
    (those without a stored fit) keep whatever rows they have."""
    with warehouse.writer() as con:
        for name in models:
            replace_in(con, "forecasts.predictions", rows[rows["model"] == name],
                       {"window_start": window_start, "model": name, "date": day})
    return len(rows)


def predict_and_store_day(warehouse: Warehouse, home: Path | str, window_start: date, day: date) -> dict[str, object]:
    """Load the window's stored models and the day's context once, predict the day, replace its rows;
    returns the metadata the asset shows (row counts, the window, models without a stored fit)."""
    started = time.perf_counter()
    models, missing = load_models(home, window_start)
    rows = predict_day(models, load_day_panel(warehouse, window_start, day), window_start, day)
    store_day(warehouse, rows, window_start, day, list(models))
    summary: dict[str, object] = {
        "dagster/row_count": len(rows), "window_start": str(window_start), "day": str(day),
        "symbols": int(rows["symbol"].nunique()), "models": sorted(models), "seconds": round(time.perf_counter() - started, 2),
    }
    if missing:
        summary["note"] = (f"no stored fit for {', '.join(missing)} in window {window_start}: skipped; "
                           "materialize their fits for this window to predict with them")
    return summary
