"""The meta-ensemble asset's work without Dagster: combine one window's ten forecasts, learning only from the past.

Reading and writing stay at the edges: ``load_window_inputs`` reads everything the window's ensemble needs,
``build_window_ensemble`` computes it from those frames alone, ``write_window_ensemble`` stores it;
``ensemble_window`` composes the three for the asset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from quant_assets.lib.ensemble.build import build_class_ensembles
from quant_assets.lib.ensemble.confidence import CONFIDENCE_COLUMNS
from quant_assets.lib.ensemble.sizing_prior import SIZING_COLUMNS
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets.lib.storage import refits
from quant_assets.lib.storage.memo import DiskMemo
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns, replace_in
from quant_assets.lib.walk_forward.outcomes import ENSEMBLE, OUTCOMES_SQL, predictions_with_outcomes, refresh_outcomes
from quant_assets.lib.walk_forward.scoring import score_predictions

KEYS = ["symbol", "date", "horizon"]
# The columns forecasts.ensemble gained after it was first written, added to older warehouses before a write.
ADDED_COLUMNS = {"sizing_mean": "DOUBLE", "mean_uncertainty": "DOUBLE", "sizing_prior": "DOUBLE",
                 "beats_reference": "BOOLEAN", "prob_gain": "DOUBLE", "prob_gain_base_rate": "DOUBLE",
                 "confidence_source": "VARCHAR"}


@dataclass(frozen=True)
class WindowInputs:
    """Everything one window's ensemble reads from the warehouse."""

    window_start: date
    current: pd.DataFrame  # the window's predictions of every member (the reference too), with outcomes
    history: pd.DataFrame  # earlier windows' predictions whose labels ended before the window started
    classes: dict[str, str]  # symbol -> asset class
    drift_days: dict[str, float]  # per horizon, the span the reference's drift was estimated on
    class_growth: dict[str, float]  # per asset class, the log mean daily gross return over the training span
    gain_rates: dict[str, dict[str, float]] | None = None  # per asset class and horizon, the training span's share of gains


@dataclass(frozen=True)
class WindowEnsemble:
    """One window's ensemble: its ``forecasts.ensemble`` rows, its ``forecasts.scores`` rows and how it was made."""

    window_start: date
    ensemble: pd.DataFrame
    scores: pd.DataFrame
    info: dict


def load_window_predictions(warehouse: Warehouse, window_start: date,
                            models: Sequence[str] = MODEL_NAMES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The models' (and the random-walk reference's) predictions for the window, and earlier windows' predictions
    whose labels exist and ended before this window started (the only outcomes the ensemble may learn from), both
    with their outcomes joined from ``labels.forward_returns`` as they stand now."""
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
    the window's training span: the long-run arithmetic return sizing assumes without information. An expanding
    window's plans have no ``train_start``: its span is all the history before the window."""
    frame = warehouse.query(
        """SELECT f.asset_class, ln(avg(exp(f.ret_1d))) AS growth FROM features.features f
           WHERE f.ret_1d IS NOT NULL AND f.date < ?
             AND f.date >= coalesce((SELECT min(train_start) FROM forecasts.plans WHERE window_start = ?),
                                    DATE '0001-01-01')
           GROUP BY f.asset_class""", [window_start, window_start])
    return dict(zip(frame["asset_class"], frame["growth"].astype("float64")))


def load_window_inputs(warehouse: Warehouse, window_start: date, models: Sequence[str] = MODEL_NAMES) -> WindowInputs:
    """Read the window's predictions, the earlier windows' it may learn from, the symbols' asset classes, the
    reference's drift spans and the classes' long-run growth."""
    current, history = load_window_predictions(warehouse, window_start, models)
    classes = warehouse.query("SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY symbol")
    return WindowInputs(window_start, current, history, dict(zip(classes["symbol"], classes["asset_class"])),
                        training_days_per_symbol(warehouse, window_start), class_growth(warehouse, window_start),
                        class_gain_rates(warehouse, window_start))


def class_gain_rates(warehouse: Warehouse, window_start: date) -> dict[str, dict[str, float]]:
    """Per asset class and horizon, the share of gains among the labels the window's models trained on (from the
    plan's train start, ended before its label cut-off): the long-run base rate of a gain, known at the window."""
    frame = warehouse.query(
        f"""SELECT p.asset_class, o.horizon, avg(CAST(o.realized > 0 AS DOUBLE)) AS share
            FROM ({OUTCOMES_SQL}) o
            JOIN (SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY 1) p USING (symbol)
            JOIN forecasts.plans f ON f.horizon = o.horizon AND f.window_start = ?
            WHERE o.date >= f.train_start AND o.label_end < f.train_label_end_before
            GROUP BY ALL""", [window_start])
    out: dict[str, dict[str, float]] = {}
    for row in frame.itertuples():
        out.setdefault(row.asset_class, {})[row.horizon] = float(row.share)
    return out


def build_window_ensemble(inputs: WindowInputs, memo: Callable[..., Any] | None = None) -> WindowEnsemble:
    """The window's ensemble distributions, confidence and sizing columns, per asset class against the random walk,
    and its ``ensemble`` scores on the outcomes known now; from ``inputs`` alone. ``memo`` as in ``build_ensemble``."""
    window_start = inputs.window_start
    combined, info = build_class_ensembles(inputs.current, inputs.history, window_start, inputs.classes,
                                           reference=BASELINE, reference_drift_days=inputs.drift_days,
                                           class_growth=inputs.class_growth, class_base_rates=inputs.gain_rates,
                                           memo=memo)
    outcomes = inputs.current.drop_duplicates(KEYS)[[*KEYS, "realized", "label_end"]]
    frame = combined.drop(columns=[c for c in ("realized", "label_end") if c in combined.columns]).merge(
        outcomes, on=KEYS, how="left"
    ).assign(window_start=window_start)
    frame = frame[["window_start", *KEYS, *DISTRIBUTION_COLUMNS, *CONFIDENCE_COLUMNS, *SIZING_COLUMNS, "realized", "label_end"]]
    scores = score_predictions(frame.assign(model=ENSEMBLE)).assign(window_start=window_start)
    return WindowEnsemble(window_start, frame, scores, info)


def write_window_ensemble(warehouse: Warehouse, result: WindowEnsemble) -> None:
    """Replace the window's rows of ``forecasts.ensemble`` and its ``ensemble`` scores, in one transaction."""
    with warehouse.writer() as con:
        ensure_columns(con, "forecasts.ensemble", ADDED_COLUMNS)
        replace_in(con, "forecasts.ensemble", result.ensemble, {"window_start": result.window_start})
        replace_in(con, "forecasts.scores", result.scores, {"window_start": result.window_start, "model": ENSEMBLE})
        refits.refresh(con, refits.ENSEMBLE, result.window_start)


def ensemble_window(warehouse: Warehouse, window_start: date, models: Sequence[str] = MODEL_NAMES,
                    cache_dir: Path | None = None) -> dict[str, object]:
    """Bring stored outcomes and scores up to date with the labels, then write the window's ensemble
    distributions and confidence, and its ``ensemble`` scores. With ``cache_dir``, what the ensemble learns from
    the earlier windows is kept there: the window's later runs (one a day) read it back. Returns the run's
    account; ``coverage`` is the scores' frame (horizon, n, coverage_80, crps, brier), for the caller to render."""
    with warehouse.writer() as con:
        refreshed = refresh_outcomes(con)
    inputs = load_window_inputs(warehouse, window_start, models)
    result = build_window_ensemble(inputs, memo=DiskMemo(cache_dir) if cache_dir else None)
    write_window_ensemble(warehouse, result)
    return {
        "dagster/row_count": len(result.ensemble),
        "history_rows": len(inputs.history),
        "history_windows": sorted(str(pd.Timestamp(w).date()) for w in inputs.history["window_start"].unique()),
        "outcomes_refreshed": refreshed,
        "coverage": result.scores[["horizon", "n", "coverage_80", "crps", "brier"]],
        "ensemble_info": result.info,
    }
