"""One walk-forward fold: fit a forecaster per horizon on purged training rows, predict the window, score it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from quant_assets.lib.models import make_model
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, TARGET, Forecaster
from quant_assets.lib.storage import refits
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.plan import WindowPlan, eval_mask, training_mask
from quant_assets.lib.walk_forward.scoring import score_predictions

# Predictions read each symbol's recent past (GARCH filtering, sequence models, trailing baselines).
CONTEXT_DAYS = 550
PREDICTION_COLUMNS = ["window_start", "model", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS, "realized", "label_end"]
LABEL_COLUMNS = tuple(f"fwd_{h.label}" for h in HORIZONS) + tuple(f"end_{h.label}" for h in HORIZONS)


@dataclass
class FoldResult:
    """What one (model, window) fold produced."""

    predictions: pd.DataFrame
    fits: pd.DataFrame
    scores: pd.DataFrame
    models: dict[str, Forecaster] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat per-horizon metrics for MLflow (``crps_1m``, ``rank_ic_1w``...)."""
        out: dict[str, float] = {}
        for row in self.scores.itertuples():
            for name in ("ic", "rank_ic", "crps", "pinball", "coverage_80", "brier"):
                out[f"{name}_{row.horizon}"] = getattr(row, name)
        return out


def load_panel(warehouse: Warehouse, start: date, end: date) -> pd.DataFrame:
    """Features joined to labels for dates in [start, end), ordered by symbol and date."""
    return warehouse.query(
        """
        SELECT f.*, l.* EXCLUDE (symbol, date, asset_class)
        FROM features.features f JOIN labels.forward_returns l USING (symbol, date)
        WHERE f.date >= ? AND f.date < ?
        ORDER BY f.symbol, f.date
        """,
        [start, end],
    )


def panel_span(plans: list[WindowPlan]) -> tuple[date, date]:
    """The dates a fold must read: its earliest training row to the window's end."""
    first = min(p.train_start for p in plans) if all(p.train_start for p in plans) else date(1900, 1, 1)
    return min(first, plans[0].window_start - timedelta(days=CONTEXT_DAYS)), plans[0].window_end


def run_fold(model_name: str, plans: list[WindowPlan], panel: pd.DataFrame, seed: int) -> FoldResult:
    """Fit ``model_name`` once per horizon plan on its purged rows and predict every row of the window."""
    window_start = plans[0].window_start
    features = feature_frame(panel)
    context, in_context_window = window_context(panel, plans[0])
    predictions, fits, models = [], [], {}
    # One BLAS/OpenMP thread: fits run side by side (one per executor process or demo worker), and thread
    # pools sized to every core would make them fight over the cores.
    with threadpool_limits(limits=1):
        for plan in plans:
            h = plan.horizon
            started = time.perf_counter()
            train_rows = training_mask(panel, plan)
            train = features[train_rows].assign(**{TARGET: panel.loc[train_rows, f"fwd_{h}"]})
            if train.empty:
                raise ValueError(f"window {window_start} horizon {h}: no training rows whose label ended before the window")
            model = make_model(model_name, horizon=h, seed=seed).fit(train)
            predictions.append(predict_rows(model, context, in_context_window, panel,
                                            window_start, model_name))
            fits.append({
                "window_start": window_start, "model": model_name, "horizon": h, "train_rows": int(train_rows.sum()),
                "latest_train_label_end": panel.loc[train_rows, f"end_{h}"].max().date(),
                "latest_train_date": panel.loc[train_rows, "date"].max().date(),
                "seconds": time.perf_counter() - started,
            })
            models[h] = model
    prediction_frame = pd.concat(predictions, ignore_index=True)[PREDICTION_COLUMNS]
    scores = score_predictions(prediction_frame).assign(window_start=window_start)
    return FoldResult(prediction_frame, pd.DataFrame(fits), scores, models)


def feature_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel without its label columns: what a model may see."""
    return panel.drop(columns=[c for c in LABEL_COLUMNS if c in panel.columns])


def window_context(panel: pd.DataFrame, plan: WindowPlan) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature rows a window's models predict (``CONTEXT_DAYS`` before the window to its end: the past
    GARCH, the sequence models and the baseline read) and, on them, which rows lie in the window."""
    features = feature_frame(panel)
    dates = panel["date"]
    context = features[(dates >= pd.Timestamp(plan.window_start - timedelta(days=CONTEXT_DAYS))) & (dates < pd.Timestamp(plan.window_end))]
    return context, eval_mask(panel, plan)[context.index].to_numpy()


def predict_rows(model: Forecaster, context: pd.DataFrame, keep: np.ndarray, panel: pd.DataFrame,
                 window_start: date, model_name: str) -> pd.DataFrame:
    """The prediction rows of ``model`` for the rows of ``context`` flagged by ``keep``, with the labels of
    ``panel`` as they stand (``realized``, ``label_end``). A model that reads history (GARCH, the sequence
    models, the baseline) predicts the whole context, as a fit does, and reads each row's past from it; a
    row-wise model predicts the kept rows alone (the same values, a fraction of the work)."""
    h = model.horizon.label
    predicted = model.predict(context)[keep] if model.reads_history else model.predict(context[keep])
    labels = panel.loc[panel.index.isin(context.index[keep]), ["symbol", "date", f"fwd_{h}", f"end_{h}"]]
    predicted = predicted.merge(labels, on=["symbol", "date"], how="left").rename(
        columns={f"fwd_{h}": "realized", f"end_{h}": "label_end"}
    )
    return predicted.assign(window_start=window_start, model=model_name, horizon=h)


def save_models(models: dict[str, Forecaster], folder: Path) -> None:
    """Write each horizon's fitted model: the model's own format where it has one, joblib otherwise."""
    for horizon, model in models.items():
        if hasattr(model, "save"):
            model.save(folder / f"{model.name}_{horizon}.pt")
        else:
            joblib.dump(model, folder / f"{model.name}_{horizon}.joblib")


def store_fold(warehouse: Warehouse, result: FoldResult) -> None:
    """Replace this fold's predictions, fit records and scores in one transaction."""
    window_start = result.fits["window_start"].iloc[0]
    model = result.fits["model"].iloc[0]
    where = {"window_start": window_start, "model": model}
    with warehouse.writer() as con:
        replace_in(con, "forecasts.predictions", result.predictions, where)
        replace_in(con, "forecasts.fits", result.fits, where)
        replace_in(con, "forecasts.scores", result.scores, where)
        refits.refresh(con, refits.FIT, window_start, [model])
