"""Seeded feature panels with a planted signal and GARCH volatility, for the forecasters' tests."""

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS, TARGET


def simulate_garch(rng, n, omega=4e-6, alpha=0.08, beta=0.9, nu=6.0):
    """Daily GARCH(1,1)-t shocks with unit-variance t innovations."""
    z = rng.standard_t(nu, n) / np.sqrt(nu / (nu - 2))
    shocks = np.empty(n)
    var = omega / (1 - alpha - beta)
    for t in range(n):
        shocks[t] = np.sqrt(var) * z[t]
        var = omega + alpha * shocks[t] ** 2 + beta * var
    return shocks


def ar1_signal(rng, n, rho):
    """A stationary AR(1) with unit variance: the planted signal of the panels."""
    signal = np.empty(n)
    signal[0] = rng.standard_normal()
    for t in range(1, n):
        signal[t] = rho * signal[t - 1] + np.sqrt(1 - rho**2) * rng.standard_normal()
    return signal


def panel_symbols(rng, n_symbols, n_days, rho):
    """Per symbol of a panel: its index, whether it is the crypto one (the last), and its AR(1) signal."""
    for i in range(n_symbols):
        yield i, i == n_symbols - 1, ar1_signal(rng, n_days, rho)


def symbol_columns(i, crypto, dates):
    """The key columns of the panels' i-th symbol (``S<i>``, an equity unless ``crypto``) over ``dates``."""
    return {"symbol": f"S{i}", "date": dates, "asset_class": "crypto" if crypto else "equity"}


def assert_valid_distribution(out, frame):
    """One row per input row in the input's order, finite distribution columns, ordered quantiles, positive std."""
    assert list(out.columns) == ["symbol", "date", *DISTRIBUTION_COLUMNS]
    assert len(out) == len(frame)
    pd.testing.assert_frame_equal(out[["symbol", "date"]], frame[["symbol", "date"]].reset_index(drop=True))
    assert np.isfinite(out[list(DISTRIBUTION_COLUMNS)].to_numpy()).all()
    assert (np.diff(out[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0).all()
    assert (out["std"] > 0).all() and out["p_up"].between(0, 1).all()


def make_panel(n_symbols=4, n_days=780, seed=7, kappa=0.004):
    """Symbols x business days; ``signal`` (an AR(1) state) drives tomorrow's return, so it predicts
    the 1w forward return (5 rows for equities, 7 for the crypto symbol)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2017-01-02", periods=n_days)
    frames = []
    for i, crypto, signal in panel_symbols(rng, n_symbols, n_days, 0.97):
        ret = np.concatenate([[0.0], kappa * signal[:-1]]) + simulate_garch(rng, n_days)
        steps = 7 if crypto else 5
        csum = np.concatenate([[0.0], np.cumsum(ret)])
        target = np.full(n_days, np.nan)
        target[: n_days - steps] = csum[steps + 1 : n_days + 1] - csum[1 : n_days - steps + 1]
        ret_s = pd.Series(ret)
        frame = pd.DataFrame({**symbol_columns(i, crypto, dates), "ret_1d": ret,
                              "ret_5d": ret_s.rolling(5).sum().to_numpy(),
                              "vol_21d": ret_s.rolling(21).std().to_numpy(), "signal": signal,
                              "noise": rng.standard_normal(n_days),
                              "oc_flow": rng.standard_normal(n_days) if crypto else np.nan, TARGET: target})
        frame.loc[0, "ret_1d"] = np.nan
        frames.append(frame)
    panel = pd.concat(frames, ignore_index=True)
    # Scattered missing features, as early history and gaps produce.
    holes = rng.random(len(panel)) < 0.03
    panel.loc[holes, "signal"] = np.nan
    return panel
