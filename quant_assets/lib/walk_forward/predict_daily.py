"""The daily prediction step: each new day's feature rows predicted with the stored models of the window
that contains the day, so a window fitted when it opened keeps forecasting through its month.

The rows are the ones the window's fit would have written for that day had the day existed at fit time,
through the fit's own code (``predict_rows``), but each model is given only the rows its prediction of the
day reads: the day's rows for the tabular models, each symbol's last ``lookback`` rows for the sequence models
and its last ``window`` for the baseline (a torch model ``TORCH_MIN_ROWS`` rows at least); GARCH's variance
filter runs from the first row of the window's context (the window's start minus ``CONTEXT_DAYS``), so it alone
reads the day's symbols over all of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.models.base import Forecaster
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets.lib.walk_forward.model_store import load_window_models
from quant_assets.lib.walk_forward.training import (
    CONTEXT_DAYS,
    PREDICTION_COLUMNS,
    feature_frame,
    load_panel,
    predict_rows,
)

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


# float32 matrix products on a handful of rows take other kernels than on the thousands a fit predicts at once, and
# round differently (1e-9 apart); from 16 rows on they agree bit for bit here, so a torch model gets 64 at least.
TORCH_MIN_ROWS = 64


def rows_read(model: Forecaster) -> int | None:
    """How many of a symbol's rows, ending at the predicted row, ``model`` reads to predict that row; ``None``
    for all of the context it is given (GARCH: its variance filter starts at the context's first row)."""
    if model.name == "garch":
        return None
    if model.name == BASELINE:
        return model.window
    if model.name == "drift_walk":
        return model.long_window
    return model.lookback if getattr(model, "sequence", False) else 1


def rows_given(model: Forecaster, symbols: int) -> int | None:
    """The rows per symbol ``model`` is given to predict a day of ``symbols`` rows: what it reads, and for a torch
    model enough for ``TORCH_MIN_ROWS`` in all."""
    rows = rows_read(model)
    if rows is not None and model.kind == "pytorch":
        rows = max(rows, -(-TORCH_MIN_ROWS // symbols))
    return rows


def day_context(panel: pd.DataFrame, day: date, rows: int | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature rows a model reading ``rows`` of each symbol's history needs to predict ``day`` (the symbols
    with a row that day, their last ``rows`` rows up to it; ``None``: all of them) and, on those, the day's rows.
    ``panel`` ends at ``day`` and is ordered by symbol and date, as ``load_day_panel`` reads it."""
    on_day = panel["date"] == pd.Timestamp(day)
    of_day_symbols = panel["symbol"].isin(panel.loc[on_day, "symbol"])
    if rows is not None:
        from_end = panel.groupby("symbol", sort=False).cumcount(ascending=False)
        of_day_symbols &= from_end < rows
    return feature_frame(panel[of_day_symbols]), on_day[of_day_symbols].to_numpy()


def predict_day(models: WindowModels, panel: pd.DataFrame, window_start: date, day: date) -> pd.DataFrame:
    """Rows of ``forecasts.predictions`` for ``day``: every model and horizon, every symbol with a feature
    row that day (no row at all when the day has none, e.g. a weekend without crypto)."""
    symbols = int((panel["date"] == pd.Timestamp(day)).sum())
    if not models or not symbols:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    contexts: dict[int | None, tuple[pd.DataFrame, np.ndarray]] = {}
    parts = []
    for name, by_horizon in models.items():
        for model in by_horizon.values():
            rows = rows_given(model, symbols)
            if rows not in contexts:
                contexts[rows] = day_context(panel, day, rows)
            context, on_day = contexts[rows]
            parts.append(predict_rows(model, context, on_day, panel, window_start, name))
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
