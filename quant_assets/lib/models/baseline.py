"""The random-walk baseline every model is scored against: long-run drift, trailing volatility, Gaussian."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import Forecaster, finish, gaussian_distribution, horizon_steps, training_rows


class RandomWalkBaseline(Forecaster):
    """``mean = drift * h`` with the long-run daily drift of the row's asset class over the training rows;
    ``std = sqrt(vol**2 * h + se**2 * h**2)`` with ``vol`` from the symbol's trailing ``window`` daily returns
    (``ret_1d``) in the frame being predicted, up to and including the row's own date, and ``se`` the standard
    error of that drift (its uncertainty grows with the horizon's square, and matters at 1y).

    A trailing year's mean is no drift estimate: its error is as large as a year's volatility, so a reference
    built on it extrapolates last year's crash or rally a year ahead. Rows with fewer than ``min_periods``
    past returns take the pooled volatility of their class; how many did is in ``fallback_rows`` after predict.
    """

    name = "baseline"

    defaults = {"window": 252, "min_periods": 60}

    def __init__(self, horizon: str, seed: int = 0, **hyperparameters: object) -> None:
        super().__init__(horizon, seed, **hyperparameters)
        if not 2 <= self.min_periods <= self.window:
            raise ValueError(f"baseline: need 2 <= min_periods <= window, got {self.min_periods} and {self.window}")

    def fit(self, frame: pd.DataFrame) -> "RandomWalkBaseline":
        """Record per asset class the pooled daily drift, its standard error and the pooled volatility."""
        rows = training_rows(frame, self.name)
        if "ret_1d" not in rows.columns:
            raise ValueError("baseline: the training frame has no 'ret_1d' column")
        horizon_steps(rows, self.horizon)  # validates asset_class
        returns = rows["ret_1d"].astype("float64")
        if returns.notna().sum() < 2:
            raise ValueError("baseline: the training frame has fewer than two non-null 'ret_1d' values")

        def moments(mask: pd.Series) -> tuple[float, float, float]:
            own = returns[mask & returns.notna()]
            # Symbols of a class move together on a day: the drift is known to the precision of its days, not rows.
            days = rows.loc[own.index, "date"].nunique()
            return float(own.mean()), float(own.std()), float(own.std() / np.sqrt(days))

        overall = moments(returns.notna())
        self.pooled_ = {}
        for asset_class in ("equity", "crypto"):
            mask = rows["asset_class"] == asset_class
            self.pooled_[asset_class] = moments(mask) if (mask & returns.notna()).sum() >= 2 else overall
        self.fallback_rows = 0
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Gaussian distribution per row: its class's long-run drift, the symbol's trailing volatility in ``frame``."""
        if "ret_1d" not in frame.columns:
            raise ValueError("baseline: the frame to predict has no 'ret_1d' column")
        steps = horizon_steps(frame, self.horizon).astype("float64")
        keyed = pd.DataFrame(
            {
                "symbol": frame["symbol"].to_numpy(),
                "date": frame["date"].to_numpy(),
                "ret": frame["ret_1d"].astype("float64").to_numpy(),
            }
        ).sort_values(["symbol", "date"], kind="stable")
        keyed["vol"] = (keyed.groupby("symbol", sort=False)["ret"].rolling(self.window, min_periods=self.min_periods)
                        .std().reset_index(level=0, drop=True))
        vol = keyed.sort_index()["vol"].to_numpy()
        is_crypto = frame["asset_class"].to_numpy() == "crypto"
        drift, pooled_vol, drift_se = (np.where(is_crypto, crypto, equity)
                                       for crypto, equity in zip(self.pooled_["crypto"], self.pooled_["equity"]))
        missing = ~(np.isfinite(vol) & (vol > 0))
        vol = np.where(missing, pooled_vol, vol)
        self.fallback_rows = int(missing.sum())
        return finish(frame, gaussian_distribution(drift * steps, np.sqrt(vol**2 * steps + (drift_se * steps) ** 2)))
