"""The meta-ensemble asset's work without Dagster: combine one window's nine forecasts, learning only from the past."""

from __future__ import annotations

from datetime import date

import pandas as pd

from quant_assets.lib.ensemble import build_ensemble
from quant_assets.lib.models import MODEL_NAMES
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets.lib.report import markdown_table
from quant_assets.lib.scoring import score_predictions
from quant_assets.lib.warehouse import Warehouse, replace_in

ENSEMBLE = "ensemble"


def load_window_predictions(warehouse: Warehouse, window_start: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nine models' predictions for the window, and earlier windows' predictions whose labels were
    realized before this window started (the only outcomes the ensemble may learn from)."""
    models = list(MODEL_NAMES)
    placeholders = ", ".join("?" for _ in models)
    current = warehouse.query(
        f"SELECT * FROM forecasts.predictions WHERE window_start = ? AND model IN ({placeholders})",
        [window_start, *models],
    )
    missing = sorted(set(models) - set(current["model"]))
    if missing:
        raise ValueError(f"window {window_start} lacks predictions of {', '.join(missing)}; materialize their fits first")
    history = warehouse.query(
        f"""SELECT * FROM forecasts.predictions
            WHERE window_start < ? AND label_end < ? AND realized IS NOT NULL AND model IN ({placeholders})""",
        [window_start, window_start, *models],
    )
    return current, history


def ensemble_window(warehouse: Warehouse, window_start: date) -> dict[str, object]:
    """Write the window's ensemble distributions and confidence, and its ``ensemble`` scores."""
    current, history = load_window_predictions(warehouse, window_start)
    classes = warehouse.query("SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY symbol")
    combined, info = build_ensemble(current, history, as_of=window_start,
                                    segments=dict(zip(classes["symbol"], classes["asset_class"])))
    outcomes = current.drop_duplicates(["symbol", "date", "horizon"])[["symbol", "date", "horizon", "realized", "label_end"]]
    frame = combined.drop(columns=[c for c in ("realized", "label_end") if c in combined.columns]).merge(
        outcomes, on=["symbol", "date", "horizon"], how="left"
    ).assign(window_start=window_start)
    frame = frame[["window_start", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS, "confidence", "realized", "label_end"]]
    scores = score_predictions(frame.assign(model=ENSEMBLE)).assign(window_start=window_start)
    with warehouse.writer() as con:
        replace_in(con, "forecasts.ensemble", frame, {"window_start": window_start})
        replace_in(con, "forecasts.scores", scores, {"window_start": window_start, "model": ENSEMBLE})
    return {
        "dagster/row_count": len(frame),
        "history_rows": len(history),
        "coverage": markdown_table(scores[["horizon", "n", "coverage_80", "crps", "brier"]]) if len(scores) else "no realized labels yet",
        "ensemble_info": info,
    }
