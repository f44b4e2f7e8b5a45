"""The meta-ensemble asset's work without Dagster: combine one window's nine forecasts, learning only from the past."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from quant_assets.lib.ensemble.build import SIZING_COLUMNS, build_class_ensembles
from quant_assets.lib.storage.memo import DiskMemo
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets.render.report import markdown_table
from quant_assets.lib.walk_forward.outcomes import ENSEMBLE, ensure_columns, predictions_with_outcomes, refresh_outcomes
from quant_assets.lib.walk_forward.scoring import score_predictions
from quant_assets.lib.storage.warehouse import Warehouse, replace_in


def load_window_predictions(warehouse: Warehouse, window_start: date,
                            models: Sequence[str] = MODEL_NAMES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The models' (and the random-walk reference's) predictions for the window, and earlier windows' predictions whose labels exist and
    ended before this window started (the only outcomes the ensemble may learn from), both with their
    outcomes joined from ``labels.forward_returns`` as they stand now."""
    models = [*models, *([BASELINE] if BASELINE not in models else [])]
    with warehouse.reader() as con:
        current = predictions_with_outcomes(con, models=models, window_start=window_start)
        history = predictions_with_outcomes(con, models=models, before_window=window_start, known_before=window_start)
    missing = sorted(set(models) - set(current["model"]))
    if missing:
        raise ValueError(f"window {window_start} lacks predictions of {', '.join(missing)}; materialize their fits first")
    return current, history


def training_days_per_symbol(warehouse: Warehouse, window_start: date) -> dict[str, float]:
    """Per horizon, the window's training rows per symbol: the span the random walk's drift was estimated on."""
    plans = warehouse.query("SELECT horizon, max(train_rows) AS train_rows FROM forecasts.plans WHERE window_start = ? "
                            "GROUP BY horizon", [window_start])
    symbols = warehouse.query("SELECT count(DISTINCT symbol) AS n FROM forecasts.predictions WHERE window_start = ?",
                              [window_start])["n"].iloc[0]
    # A plan without a row count (an older warehouse) leaves the horizon to the default span.
    return {row.horizon: row.train_rows / max(int(symbols), 1) for row in plans.dropna().itertuples()}


def class_growth(warehouse: Warehouse, window_start: date) -> dict[str, float]:
    """Per asset class, the log of the mean daily gross return (``exp(ret_1d)``, pooled over symbols and days) over
    the window's training span: the long-run arithmetic return sizing assumes without information."""
    frame = warehouse.query(
        """SELECT f.asset_class, ln(avg(exp(f.ret_1d))) AS growth FROM features.features f
           WHERE f.ret_1d IS NOT NULL AND f.date < ?
             AND f.date >= (SELECT min(train_start) FROM forecasts.plans WHERE window_start = ?)
           GROUP BY f.asset_class""", [window_start, window_start])
    return dict(zip(frame["asset_class"], frame["growth"].astype("float64")))


def ensemble_window(warehouse: Warehouse, window_start: date, models: Sequence[str] = MODEL_NAMES,
                    cache_dir: Path | None = None) -> dict[str, object]:
    """Bring stored outcomes and scores up to date with the labels, then write the window's ensemble
    distributions and confidence, and its ``ensemble`` scores. With ``cache_dir``, what the ensemble learns from
    the earlier windows is kept there: the window's later runs (one a day) read it back."""
    with warehouse.writer() as con:
        refreshed = refresh_outcomes(con)
    current, history = load_window_predictions(warehouse, window_start, models)
    classes = warehouse.query("SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY symbol")
    combined, info = build_class_ensembles(current, history, window_start,
                                           dict(zip(classes["symbol"], classes["asset_class"])), reference=BASELINE,
                                           reference_drift_days=training_days_per_symbol(warehouse, window_start),
                                           class_growth=class_growth(warehouse, window_start),
                                           memo=DiskMemo(cache_dir) if cache_dir else None)
    outcomes = current.drop_duplicates(["symbol", "date", "horizon"])[["symbol", "date", "horizon", "realized", "label_end"]]
    frame = combined.drop(columns=[c for c in ("realized", "label_end") if c in combined.columns]).merge(
        outcomes, on=["symbol", "date", "horizon"], how="left"
    ).assign(window_start=window_start)
    frame = frame[["window_start", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS, "confidence", *SIZING_COLUMNS,
                   "realized", "label_end"]]
    scores = score_predictions(frame.assign(model=ENSEMBLE)).assign(window_start=window_start)
    with warehouse.writer() as con:
        ensure_columns(con, "forecasts.ensemble", {"sizing_mean": "DOUBLE", "mean_uncertainty": "DOUBLE",
                                                   "sizing_prior": "DOUBLE", "beats_reference": "BOOLEAN"})
        replace_in(con, "forecasts.ensemble", frame, {"window_start": window_start})
        replace_in(con, "forecasts.scores", scores, {"window_start": window_start, "model": ENSEMBLE})
    return {
        "dagster/row_count": len(frame),
        "history_rows": len(history),
        "history_windows": sorted(str(pd.Timestamp(w).date()) for w in history["window_start"].unique()),
        "outcomes_refreshed": refreshed,
        "coverage": markdown_table(scores[["horizon", "n", "coverage_80", "crps", "brier"]]) if len(scores) else "no realized labels yet",
        "ensemble_info": info,
    }
