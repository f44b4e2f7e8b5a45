"""Seeded feature panels with a planted signal and GARCH volatility, for the forecasters' tests."""

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import TARGET


def simulate_garch(rng, n, omega=4e-6, alpha=0.08, beta=0.9, nu=6.0):
    """Daily GARCH(1,1)-t shocks with unit-variance t innovations."""
    z = rng.standard_t(nu, n) / np.sqrt(nu / (nu - 2))
    shocks = np.empty(n)
    var = omega / (1 - alpha - beta)
    for t in range(n):
        shocks[t] = np.sqrt(var) * z[t]
        var = omega + alpha * shocks[t] ** 2 + beta * var
    return shocks


def make_panel(n_symbols=4, n_days=780, seed=7, kappa=0.004):
    """Symbols x business days; ``signal`` (an AR(1) state) drives tomorrow's return, so it predicts
    the 1w forward return (5 rows for equities, 7 for the crypto symbol)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2017-01-02", periods=n_days)
    frames = []
    for i in range(n_symbols):
        crypto = i == n_symbols - 1
        signal = np.empty(n_days)
        signal[0] = rng.standard_normal()
        for t in range(1, n_days):
            signal[t] = 0.97 * signal[t - 1] + np.sqrt(1 - 0.97**2) * rng.standard_normal()
        ret = np.concatenate([[0.0], kappa * signal[:-1]]) + simulate_garch(rng, n_days)
        steps = 7 if crypto else 5
        csum = np.concatenate([[0.0], np.cumsum(ret)])
        target = np.full(n_days, np.nan)
        target[: n_days - steps] = csum[steps + 1 : n_days + 1] - csum[1 : n_days - steps + 1]
        ret_s = pd.Series(ret)
        frame = pd.DataFrame(
            {
                "symbol": f"S{i}",
                "date": dates,
                "asset_class": "crypto" if crypto else "equity",
                "ret_1d": ret,
                "ret_5d": ret_s.rolling(5).sum().to_numpy(),
                "vol_21d": ret_s.rolling(21).std().to_numpy(),
                "signal": signal,
                "noise": rng.standard_normal(n_days),
                "oc_flow": rng.standard_normal(n_days) if crypto else np.nan,
                TARGET: target,
            }
        )
        frame.loc[0, "ret_1d"] = np.nan
        frames.append(frame)
    panel = pd.concat(frames, ignore_index=True)
    # Scattered missing features, as early history and gaps produce.
    holes = rng.random(len(panel)) < 0.03
    panel.loc[holes, "signal"] = np.nan
    return panel
