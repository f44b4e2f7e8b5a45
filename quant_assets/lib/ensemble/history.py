"""What earlier windows' predictions are worth: the rows the ensemble may learn from and how many independent
observations they count for.

History size is counted in *effective* rows, ``rows / horizon steps / design effect``: consecutive
dates' labels overlap by all but one step, so a year of daily 1y labels is about one independent observation
per symbol; and symbols move together on a date (the market), so a cross-section of m outcomes with
intraclass correlation rho counts as ``m / (1 + (m - 1) rho)`` (Kish's design effect). Without the second
factor a single month's market move, seen in every symbol, would pass for hundreds of observations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.lib.ensemble.frames import PREDICTION_REQUIRED, horizon_steps, require
from quant_assets.lib.vocabulary import HORIZON_BY_LABEL


def usable_history(history: pd.DataFrame, as_of=None) -> pd.DataFrame:
    """Rows of ``history`` with a realized label, known (``label_end < as_of``) when ``as_of`` is given.

    With ``as_of``, ``history`` must carry ``label_end``: without it no row can be shown to be known.
    """
    require(history, (*PREDICTION_REQUIRED, "realized", *(["label_end"] if as_of is not None else [])),
            "the history frame")
    keep = np.isfinite(pd.to_numeric(history["realized"], errors="coerce").astype("float64").to_numpy())
    if as_of is not None:
        label_end = pd.to_datetime(history["label_end"])
        keep &= (label_end < pd.Timestamp(as_of)).fillna(False).to_numpy()
    return history[keep].reset_index(drop=True)


def effective_rows(dates, realized, horizon: str) -> float:
    """Independent observations among realized labels: rows / horizon steps / Kish design effect, the
    intraclass correlation of outcomes within a date estimated by one-way ANOVA (clipped to [0, 1]). Steps are
    counted in the rows' own calendar (``_label_steps``: crypto's days, the equities' sessions)."""
    y = pd.Series(np.asarray(realized, dtype="float64"), index=pd.Index(np.asarray(dates)))
    n = len(y)
    if n == 0:
        return 0.0
    groups = y.groupby(level=0)
    per_date = n / groups.ngroups
    within = float(groups.var(ddof=1).mean()) if per_date > 1 else float("nan")
    between = float(groups.mean().var(ddof=1)) if groups.ngroups > 1 else float("nan")
    icc = 0.0
    if np.isfinite(within) and np.isfinite(between) and between + within > 0:
        between_component = max(between - within / per_date, 0.0)
        icc = between_component / (between_component + within) if between_component + within > 0 else 0.0
    return n / _label_steps(y.index, horizon) / (1.0 + (per_date - 1.0) * icc)


def _label_steps(dates: pd.Index, horizon: str) -> int:
    """The rows one horizon's labels overlap across, in the rows' own calendar: a class that trades on weekends
    (crypto) steps in days, 30 to a month; the others in sessions, 21 to a month."""
    weekdays = pd.DatetimeIndex(pd.to_datetime(dates)).dayofweek
    if horizon in HORIZON_BY_LABEL and len(weekdays) and (weekdays >= 5).any():
        return HORIZON_BY_LABEL[horizon].crypto_days
    return horizon_steps(horizon)
