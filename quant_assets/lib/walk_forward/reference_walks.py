"""Two random walks computed from the raw closes alone, independent of every model of the project: the yardsticks
an evaluation scores the ensemble's distributions against.

Per symbol and date, from the symbol's own rows up to and including that date: ``zero_drift`` is Gaussian with
mean 0, ``expanding_drift`` with the mean of all its daily log returns so far times the horizon's steps; both have
the trailing ``VOL_ROWS``-row standard deviation of daily log returns times the square root of the steps (sessions
for equities, days for crypto). Rows with fewer than ``VOL_ROWS`` returns behind them have no walk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS
from quant_assets.lib.vocabulary import CRYPTO, HORIZON_BY_LABEL
from quant_assets.lib.walk_forward.scoring import crps_quantiles

VOL_ROWS = 252
WALKS: tuple[str, ...] = ("zero_drift", "expanding_drift")


def walk_moments(closes: pd.DataFrame) -> pd.DataFrame:
    """Per ``symbol, date`` of ``closes`` (``symbol, date, asset_class, close``): the expanding mean and the trailing
    ``VOL_ROWS``-row standard deviation of the symbol's daily log returns up to that date (NaN before enough)."""
    frame = closes.sort_values(["symbol", "date"], ignore_index=True)
    log_return = np.log(frame["close"].astype("float64")).groupby(frame["symbol"]).diff()
    grouped = log_return.groupby(frame["symbol"])
    return frame[["symbol", "date", "asset_class"]].assign(
        drift=grouped.transform(lambda r: r.expanding().mean()),
        vol=grouped.transform(lambda r: r.rolling(VOL_ROWS, min_periods=VOL_ROWS).std()))


def walk_quantiles(moments: pd.DataFrame, keys: pd.DataFrame, walk: str) -> pd.DataFrame:
    """``keys`` (``symbol, date, horizon``) with the ``walk``'s quantile columns (NaN where it has no moments)."""
    if walk not in WALKS:
        raise ValueError(f"unknown walk {walk!r}; expected one of {', '.join(WALKS)}")
    rows = keys.merge(moments, on=["symbol", "date"], how="left")
    steps = np.array([HORIZON_BY_LABEL[h].crypto_days if c == CRYPTO else HORIZON_BY_LABEL[h].equity_sessions
                      for h, c in zip(rows["horizon"], rows["asset_class"])], dtype="float64")
    mean = rows["drift"].to_numpy(dtype="float64") * steps if walk == "expanding_drift" else np.zeros(len(rows))
    std = rows["vol"].to_numpy(dtype="float64") * np.sqrt(steps)
    z = stats.norm.ppf(QUANTILE_LEVELS)
    return rows[list(keys.columns)].assign(**{c: mean + std * z[i] for i, c in enumerate(QUANTILE_COLUMNS)})


def walk_crps(moments: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``rows`` (``symbol, date, horizon, realized``): the quantile CRPS (``crps_quantiles``, the
    scorer of the ensemble's own rows) of each walk, as ``crps_zero_drift`` and ``crps_expanding_drift``."""
    keys = rows[["symbol", "date", "horizon"]].reset_index(drop=True)
    y = rows["realized"].to_numpy(dtype="float64")
    out = {}
    for walk in WALKS:
        q = walk_quantiles(moments, keys, walk)[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64")
        out[f"crps_{walk}"] = np.where(np.isfinite(q).all(axis=1), crps_quantiles(y, np.nan_to_num(q)), np.nan)
    return keys.assign(**out)
