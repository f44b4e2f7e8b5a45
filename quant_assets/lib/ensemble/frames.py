"""What every part of the ensemble shares: the predictions frame's columns and small helpers on frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_LEVELS
from quant_assets.lib.vocabulary import HORIZON_BY_LABEL, HORIZON_LABELS

PREDICTION_REQUIRED: tuple[str, ...] = ("model", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS)
LEVELS = np.asarray(QUANTILE_LEVELS)


def key_columns(frame: pd.DataFrame) -> list[str]:
    """The columns naming one forecast: ``symbol, date, horizon``, after ``window_start`` when present."""
    return [*(["window_start"] if "window_start" in frame.columns else []), "symbol", "date", "horizon"]


def by_model(frame: pd.DataFrame, models: list[str], columns) -> tuple[pd.MultiIndex, np.ndarray]:
    """(keys index, n x M x C array) of ``columns`` per key and model; NaN where a model has no row."""
    keys = key_columns(frame)
    duplicated = frame.duplicated([*keys, "model"])
    if duplicated.any():
        first = frame.loc[duplicated, [*keys, "model"]].iloc[0].to_dict()
        raise ValueError(f"the predictions frame has several rows for the same key and model, e.g. {first}")
    wide = frame.set_index([*keys, "model"])[list(columns)].astype("float64").unstack("model")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([list(columns), models]))
    values = wide.to_numpy().reshape(len(wide), len(columns), len(models)).transpose(0, 2, 1)
    return wide.index, values


def horizon_steps(horizon: str) -> int:
    """The horizon's length in equity sessions (1 for a label outside the vocabulary)."""
    return HORIZON_BY_LABEL[horizon].equity_sessions if horizon in HORIZON_BY_LABEL else 1


def horizon_order(label: str) -> tuple[int, str]:
    """A sort key putting horizons shortest first, labels outside the vocabulary last."""
    return (HORIZON_LABELS.index(label) if label in HORIZON_LABELS else len(HORIZON_LABELS), label)


def require(frame: pd.DataFrame, columns, what: str) -> None:
    """Raise one sentence naming ``what`` and the ``columns`` it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")
