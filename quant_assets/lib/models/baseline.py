"""The random-walk baseline every model is scored against: trailing drift and volatility, Gaussian."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import Forecaster, finish, gaussian_distribution, horizon_steps, training_rows


class RandomWalkBaseline(Forecaster):
    """``mean = drift * h``, ``std = vol * sqrt(h)`` from each symbol's trailing ``window`` daily
    returns (``ret_1d``) in the frame being predicted, up to and including the row's own date.

    Rows with fewer than ``min_periods`` past returns use the pooled daily drift and volatility of
    the training rows of the same asset class; how many did is in ``fallback_rows`` after predict.
    """

    name = "baseline"
    family = "baseline"
    kind = "python"

    def __init__(self, horizon: str, seed: int = 0, window: int = 252, min_periods: int = 60) -> None:
        super().__init__(horizon, seed)
        if not 2 <= min_periods <= window:
            raise ValueError(f"baseline: need 2 <= min_periods <= window, got {min_periods} and {window}")
        self.window = window
        self.min_periods = min_periods

    def fit(self, frame: pd.DataFrame) -> "RandomWalkBaseline":
        """Record the pooled daily drift and volatility per asset class (the fallback values)."""
        rows = training_rows(frame, self.name)
        if "ret_1d" not in rows.columns:
            raise ValueError("baseline: the training frame has no 'ret_1d' column")
        horizon_steps(rows, self.horizon)  # validates asset_class
        returns = rows["ret_1d"].astype("float64")
        if returns.notna().sum() < 2:
            raise ValueError("baseline: the training frame has fewer than two non-null 'ret_1d' values")
        overall = (float(returns.mean()), float(returns.std()))
        self.pooled_ = {}
        for asset_class in ("equity", "crypto"):
            own = returns[rows["asset_class"] == asset_class].dropna()
            self.pooled_[asset_class] = (float(own.mean()), float(own.std())) if len(own) >= 2 else overall
        self.fallback_rows = 0
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Gaussian distribution per row from the symbol's own trailing returns in ``frame``."""
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
        rolling = keyed.groupby("symbol", sort=False)["ret"].rolling(self.window, min_periods=self.min_periods)
        keyed["drift"] = rolling.mean().reset_index(level=0, drop=True)
        keyed["vol"] = rolling.std().reset_index(level=0, drop=True)
        keyed = keyed.sort_index()
        drift = keyed["drift"].to_numpy()
        vol = keyed["vol"].to_numpy()
        missing = ~(np.isfinite(drift) & np.isfinite(vol) & (vol > 0))
        is_crypto = frame["asset_class"].to_numpy() == "crypto"
        drift = np.where(missing, np.where(is_crypto, self.pooled_["crypto"][0], self.pooled_["equity"][0]), drift)
        vol = np.where(missing, np.where(is_crypto, self.pooled_["crypto"][1], self.pooled_["equity"][1]), vol)
        self.fallback_rows = int(missing.sum())
        return finish(frame, gaussian_distribution(drift * steps, vol * np.sqrt(steps)))

    def params(self) -> dict[str, object]:
        """Hyper-parameters worth logging."""
        return {**super().params(), "window": self.window, "min_periods": self.min_periods}
