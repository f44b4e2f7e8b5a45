"""Decision backtest: strategies' weights per window applied to realized period returns, net of costs.

Conventions match empyrical: the annual return is the CAGR, volatility and Sharpe use the sample
standard deviation (ddof = 1) of period returns with a zero risk-free rate, and the maximum drawdown is
measured on wealth starting at 1 (a first-period loss is a drawdown).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

PERIOD_COLUMNS: tuple[str, ...] = (
    "strategy", "window_start", "period_return", "log_growth", "turnover", "cumulative_log_growth",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "strategy", "periods", "log_growth", "annual_return", "annual_volatility", "sharpe", "max_drawdown",
)


def performance(period_returns, periods_per_year: float) -> dict[str, float]:
    """Summary statistics of a series of period simple returns.

    ``log_growth`` is the total ``sum log(1 + r)``; ``annual_return`` the CAGR
    ``exp(log_growth * periods_per_year / n) - 1``; ``annual_volatility`` ``std(r, ddof=1) * sqrt(ppy)``;
    ``sharpe`` ``mean(r) / std(r, ddof=1) * sqrt(ppy)`` (NaN when the std is 0 or undefined);
    ``max_drawdown`` the most negative ``wealth / running peak - 1`` (0 or less). NaN returns are an error.
    """
    r = np.asarray(period_returns, dtype="float64").ravel()
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    if not np.all(np.isfinite(r)):
        raise ValueError("performance: the period returns contain NaN or infinite values")
    if np.any(r <= -1):
        raise ValueError("performance: a period return of -100% or worse leaves no wealth to compound")
    n = r.size
    if n == 0:
        nan = float("nan")
        return {"periods": 0, "log_growth": 0.0, "annual_return": nan, "annual_volatility": nan,
                "sharpe": nan, "max_drawdown": nan}
    log_growth = float(np.sum(np.log1p(r)))
    std = float(np.std(r, ddof=1)) if n > 1 else float("nan")
    # Identical returns have zero dispersion; rounding in the mean must not make it 1e-18.
    if n > 1 and np.all(r == r[0]):
        std = 0.0
    wealth = np.exp(np.concatenate([[0.0], np.cumsum(np.log1p(r))]))
    drawdown = float(np.min(wealth / np.maximum.accumulate(wealth) - 1.0))
    return {
        "periods": n,
        "log_growth": log_growth,
        "annual_return": float(np.expm1(log_growth * periods_per_year / n)),
        "annual_volatility": std * float(np.sqrt(periods_per_year)),
        "sharpe": float(np.mean(r) / std * np.sqrt(periods_per_year)) if std > 0 else float("nan"),
        "max_drawdown": drawdown,
    }


def run_backtest(
    asset_returns: pd.DataFrame,
    weights: Mapping[str, pd.DataFrame],
    *,
    periods_per_year: float,
    cost_bp: float = 10.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply each strategy's weights to the assets' period returns, charging turnover costs.

    ``asset_returns``: index ``window_start`` (one consecutive holding period per row), columns symbols,
    values simple returns over the period. ``weights[strategy]``: same index (every window), columns a
    subset of the symbols, the weights set at the start of each window (NaN counts as 0; the rest is
    cash at 0%). Turnover is ``sum |w_t - w_drifted|`` against the previous window's weights after they
    drifted with its returns (from all-cash at the start); every unit traded costs ``cost_bp`` basis
    points, paid before the period's return: ``1 + r_net = (1 - cost) (1 + w . r)``.

    Returns the per-window frame (``PERIOD_COLUMNS``) and one summary row per strategy
    (``SUMMARY_COLUMNS``, from ``performance`` of the net returns).
    """
    if cost_bp < 0:
        raise ValueError(f"cost_bp must be non-negative, got {cost_bp}")
    if asset_returns.index.has_duplicates or not asset_returns.index.is_monotonic_increasing:
        raise ValueError("asset_returns must be indexed by increasing, unique window_start values")
    periods, summaries = [], []
    for strategy, frame in weights.items():
        w = _aligned_weights(str(strategy), frame, asset_returns)
        r = asset_returns.to_numpy(dtype="float64")
        held = w != 0
        bad = held & ~np.isfinite(r)
        if bad.any():
            t, i = np.argwhere(bad)[0]
            raise ValueError(f"strategy {strategy!r} holds {asset_returns.columns[i]!r} in window "
                             f"{asset_returns.index[t]} whose return is missing")
        r = np.where(held, r, 0.0)
        gross = np.sum(w * r, axis=1)
        if np.any(gross <= -1):
            t = int(np.argmax(gross <= -1))
            raise ValueError(f"strategy {strategy!r} loses everything in window {asset_returns.index[t]}")
        drifted = np.vstack([np.zeros(w.shape[1]), w[:-1] * (1.0 + r[:-1]) / (1.0 + gross[:-1, None])])
        turnover = np.sum(np.abs(w - drifted), axis=1)
        net = (1.0 - turnover * cost_bp / 1e4) * (1.0 + gross) - 1.0
        log_growth = np.log1p(net)
        periods.append(pd.DataFrame({
            "strategy": str(strategy), "window_start": asset_returns.index, "period_return": net,
            "log_growth": log_growth, "turnover": turnover, "cumulative_log_growth": np.cumsum(log_growth),
        }))
        summaries.append({"strategy": str(strategy), **performance(net, periods_per_year)})
    if not periods:
        return pd.DataFrame(columns=list(PERIOD_COLUMNS)), pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    summary = pd.DataFrame(summaries)[list(SUMMARY_COLUMNS)].astype({"periods": "int64"})
    return pd.concat(periods, ignore_index=True)[list(PERIOD_COLUMNS)], summary


def _aligned_weights(strategy: str, frame: pd.DataFrame, asset_returns: pd.DataFrame) -> np.ndarray:
    unknown = sorted(set(frame.columns) - set(asset_returns.columns), key=str)
    if unknown:
        raise ValueError(f"strategy {strategy!r} has weights for symbol(s) {unknown} without returns")
    missing = asset_returns.index.difference(frame.index)
    if len(missing):
        raise ValueError(f"strategy {strategy!r} has no weights for window {missing[0]} "
                         f"({len(missing)} window(s) missing)")
    if frame.index.has_duplicates:
        raise ValueError(f"strategy {strategy!r} has several weight rows for the same window")
    w = frame.reindex(index=asset_returns.index, columns=asset_returns.columns).astype("float64")
    values = w.fillna(0.0).to_numpy()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"strategy {strategy!r} has infinite weights")
    return values
