"""A random walk with each symbol's own drift and a forecast volatility.

Where a symbol's long-run drift says more than its class's (the baseline's), the ensemble can lean on this member:
it is the random walk with each symbol's expanding-mean drift, fitted like every member on the training rows
alone. Returns are hard to forecast and volatility is not, so its spread is not the trailing year's volatility
but a blend of the last month's and the last year's realized variance (volatility clusters: the recent month
says more about the next week, the year more about the next year), with the blend and a scale chosen per asset
class and horizon to minimize the CRPS of the training outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from quant_assets.lib.models.base import (
    TARGET,
    Forecaster,
    crps_gaussian,
    finish,
    gaussian_distribution,
    horizon_steps,
    subsample_rows,
    training_rows,
)

# The shares of the short-window variance in the blend tried on the training rows, and the range of the spread's
# scale searched for each (a bounded one-dimensional search: the CRPS is smooth in the scale).
BLEND_GRID = np.linspace(0.0, 1.0, 6)
SCALE_BOUNDS = (0.5, 2.0)
# Training rows an asset class needs to get its own blend and scale (else every class's rows are pooled).
MIN_CLASS_ROWS = 200
SPREAD_FIT_ROWS = 20_000


class DriftWalkForecaster(Forecaster):
    """``mean = drift_s * h`` with ``drift_s`` the mean daily log return of symbol ``s`` over the training rows (its
    class's pooled drift for a symbol without ``min_days`` of them); ``std = sqrt(k^2 v h + se_s^2 h^2)`` with
    ``v = w var_short + (1 - w) var_long`` the blend of the symbol's trailing ``short_window`` and ``long_window``
    daily variances in the frame, up to the row's own date, ``se_s`` the standard error of its drift, and ``(w, k)``
    per asset class minimizing the Gaussian CRPS of the training targets. Rows without ``min_periods`` returns in a
    window take the other window's variance, or the class's pooled one."""

    name = "drift_walk"

    defaults = {"short_window": 21, "long_window": 252, "min_periods": 15, "min_days": 252}

    def fit(self, frame: pd.DataFrame) -> "DriftWalkForecaster":
        """Per symbol its drift and the drift's standard error; per asset class the pooled drift and volatility and
        the variance blend and scale of least training CRPS."""
        if "ret_1d" not in frame.columns:
            raise ValueError("drift_walk: the training frame has no 'ret_1d' column")
        horizon_steps(frame, self.horizon)  # validates asset_class
        # The drifts come from the training rows (known targets) alone, like the baseline's; the trailing variances
        # below read the whole frame, each row only its own past.
        labelled = training_rows(frame, self.name)
        returns = labelled.assign(ret=labelled["ret_1d"].astype("float64"))
        if returns["ret"].notna().sum() < 2:
            raise ValueError("drift_walk: the training frame has fewer than two non-null 'ret_1d' values")
        per_symbol = returns.groupby("symbol")["ret"].agg(["mean", "std", "count"])
        per_symbol = per_symbol[per_symbol["count"] >= self.min_days]
        self.drift_ = {s: (float(r["mean"]), float(r["std"] / np.sqrt(r["count"]))) for s, r in per_symbol.iterrows()}
        self.pooled_ = {}
        for asset_class, rows in returns.groupby("asset_class"):
            own = rows["ret"].dropna()
            self.pooled_[asset_class] = (float(own.mean()), float(own.std()), float(own.std() / np.sqrt(len(own))))
        overall = returns["ret"].dropna()
        self.pooled_["*"] = (float(overall.mean()), float(overall.std()), float(overall.std() / np.sqrt(len(overall))))

        # A seeded subset is enough for two numbers, and overlapping labels make neighbouring rows near copies.
        known = subsample_rows(training_rows(self._with_variances(frame), self.name), SPREAD_FIT_ROWS, self.seed)
        steps = horizon_steps(known, self.horizon).astype("float64")
        mean, drift_se = self._drift(known)
        y = known[TARGET].to_numpy(dtype="float64") - mean * steps
        self.spread_ = {"*": _best_spread(y, known, steps, drift_se)}
        for asset_class in known["asset_class"].unique():
            mask = (known["asset_class"] == asset_class).to_numpy()
            if mask.sum() >= MIN_CLASS_ROWS:
                self.spread_[asset_class] = _best_spread(y[mask], known[mask], steps[mask], drift_se[mask])
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Gaussian distribution per row: the symbol's drift, the blended trailing variance of its class's fit."""
        if "ret_1d" not in frame.columns:
            raise ValueError("drift_walk: the frame to predict has no 'ret_1d' column")
        rows = self._with_variances(frame)
        steps = horizon_steps(rows, self.horizon).astype("float64")
        drift, drift_se = self._drift(rows)
        blend = np.array([self.spread_.get(c, self.spread_["*"]) for c in rows["asset_class"]])
        variance = blend[:, 0] * rows["var_short"].to_numpy() + (1.0 - blend[:, 0]) * rows["var_long"].to_numpy()
        std = np.sqrt(blend[:, 1] ** 2 * variance * steps + (drift_se * steps) ** 2)
        return finish(frame, gaussian_distribution(drift * steps, std))

    def _drift(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row its symbol's drift and standard error, or its class's pooled ones."""
        pairs = [self.drift_.get(s) or self._pooled(c)[::2] for s, c in zip(rows["symbol"], rows["asset_class"])]
        values = np.asarray(pairs, dtype="float64").reshape(-1, 2)
        return values[:, 0], values[:, 1]

    def _pooled(self, asset_class: str) -> tuple[float, float, float]:
        return self.pooled_.get(asset_class, self.pooled_["*"])

    def _with_variances(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (index reset) with each row's trailing short and long daily variances up to its own date."""
        out = frame.reset_index(drop=True)
        keyed = pd.DataFrame({"symbol": out["symbol"].to_numpy(), "date": out["date"].to_numpy(),
                              "ret": out["ret_1d"].astype("float64").to_numpy()}).sort_values(["symbol", "date"],
                                                                                               kind="stable")
        grouped = keyed.groupby("symbol", sort=False)["ret"]
        trailing = {}
        for name, window in (("short", self.short_window), ("long", self.long_window)):
            var = grouped.rolling(window, min_periods=min(self.min_periods, window)).var().reset_index(level=0, drop=True)
            trailing[name] = var.sort_index().to_numpy()
        pooled = np.array([self._pooled(c)[1] ** 2 for c in out["asset_class"]])
        long_ok = np.isfinite(trailing["long"]) & (trailing["long"] > 0)
        short_ok = np.isfinite(trailing["short"]) & (trailing["short"] > 0)
        var_long = np.where(long_ok, trailing["long"], np.where(short_ok, trailing["short"], pooled))
        var_short = np.where(short_ok, trailing["short"], var_long)
        return out.assign(var_short=var_short, var_long=var_long)


def _best_spread(y: np.ndarray, rows: pd.DataFrame, steps: np.ndarray, drift_se: np.ndarray) -> tuple[float, float]:
    """The blend of ``BLEND_GRID`` and the scale within ``SCALE_BOUNDS`` whose Gaussian CRPS of the residuals ``y``
    is least."""
    best, best_score = (0.0, 1.0), np.inf
    short, long = rows["var_short"].to_numpy(), rows["var_long"].to_numpy()
    drift_variance = (drift_se * steps) ** 2
    for w in BLEND_GRID:
        variance = (w * short + (1.0 - w) * long) * steps

        def score(k: float, variance: np.ndarray = variance) -> float:
            return float(np.mean(crps_gaussian(y, 0.0, np.sqrt(k**2 * variance + drift_variance))))

        found = optimize.minimize_scalar(score, bounds=SCALE_BOUNDS, method="bounded", options={"xatol": 1e-3})
        if found.fun < best_score:
            best, best_score = (float(w), float(found.x)), float(found.fun)
    return best
