"""What a backtest may hold, and what holding it returned, from each symbol's own prices (pure).

A symbol is in the cross-section while it has prices: it enters at its first close after a decision, and
leaves at its last close when its prices end, never carried forward at a stale price. Each symbol counts time in
its own calendar (sessions for equities, days for crypto).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.vocabulary import CRYPTO

# Steps a year in each class's own calendar: sessions for equities, days for crypto (which trades every day).
STEPS_PER_YEAR = {CRYPTO: 365.0}
EQUITY_STEPS_PER_YEAR = 252.0
# Daily returns a trailing volatility needs before inverse-volatility weighting trusts it (about three months).
MIN_VOLATILITY_DAYS = 60


def steps_per_year(asset_class: str) -> float:
    """A class's steps a year in its own calendar: 365 days for crypto, 252 sessions otherwise."""
    return STEPS_PER_YEAR.get(asset_class, EQUITY_STEPS_PER_YEAR)


def holding_returns(prices: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Each symbol's simple return over each holding period, entered at its first close after the decision.

    ``prices``: long ``symbol, date, close`` rows (only the days each symbol traded). ``periods``: indexed by
    ``window_start``, with the ``decision`` date and ``exit`` (the next decision's date when the money stays
    invested, its entry then being this period's exit) and ``exit_rule``: ``next_entry`` (sell at the first close
    after ``exit``, the moment the next decision buys) or ``close_at`` (sell at the last close at or before ``exit``:
    a period before a gap, or the one in progress).

    A symbol with no close after the decision and before its exit cannot be entered (NaN). One whose prices end
    within the period is sold at its last close: its return is to that close, and the money is cash after it.
    """
    missing = [c for c in ("decision", "exit", "exit_rule") if c not in periods.columns]
    if missing:
        raise ValueError(f"the holding periods lack column(s) {missing}")
    unknown = sorted(set(periods["exit_rule"]) - {"next_entry", "close_at"})
    if unknown:
        raise ValueError(f"unknown exit rule(s) {unknown}; expected next_entry or close_at")
    table = {}
    for symbol, rows in prices.groupby("symbol", sort=True):
        rows = rows.sort_values("date")
        days = pd.to_datetime(rows["date"]).to_numpy()
        closes = rows["close"].to_numpy(dtype="float64")
        table[symbol] = [_period_return(days, closes, p.decision, p.exit, p.exit_rule) for p in periods.itertuples()]
    return pd.DataFrame(table, index=periods.index, dtype="float64")


def _period_return(days: np.ndarray, closes: np.ndarray, decision, exit_, rule: str) -> float:
    decision, exit_ = np.datetime64(pd.Timestamp(decision)), np.datetime64(pd.Timestamp(exit_))
    entry = int(np.searchsorted(days, decision, side="right"))  # the first close strictly after the decision
    if entry >= len(days) or days[entry] > exit_:
        return float("nan")
    if rule == "next_entry":
        # The next decision's entry; prices that end before it are sold at their last close.
        leave = min(int(np.searchsorted(days, exit_, side="right")), len(days) - 1)
    else:
        leave = int(np.searchsorted(days, exit_, side="right")) - 1
    return float(closes[leave] / closes[entry] - 1.0)


def inverse_volatility_weights(daily_returns: pd.DataFrame, classes: dict[str, str], symbols: list[str]) -> dict[str, float]:
    """Weights proportional to one over each symbol's trailing annual volatility, summing to 1, over ``symbols``.

    ``daily_returns``: a wide date x symbol frame of the daily log returns known at the decision (point in time).
    Each symbol's volatility is annualized in its own calendar (``steps_per_year``); a symbol with fewer than
    ``MIN_VOLATILITY_DAYS`` returns (or none that vary) gets no weight.
    """
    inverse = {}
    for symbol in symbols:
        series = daily_returns[symbol].dropna() if symbol in daily_returns else pd.Series(dtype="float64")
        vol = float(series.std(ddof=1)) * np.sqrt(steps_per_year(classes.get(symbol, ""))) if len(series) > 1 else 0.0
        if len(series) >= MIN_VOLATILITY_DAYS and vol > 0:
            inverse[symbol] = 1.0 / vol
    total = sum(inverse.values())
    return {s: inverse.get(s, 0.0) / total if total else 0.0 for s in symbols}


def fresh_symbols(marginals: pd.DataFrame, decision: date, stale_days: int) -> pd.DataFrame:
    """The ensemble rows of the symbols whose latest row is at most ``stale_days`` old at the decision: a symbol
    whose prices ended before it is no longer in the cross-section."""
    latest = pd.to_datetime(marginals["date"]).groupby(marginals["symbol"]).transform("max")
    return marginals[latest >= pd.Timestamp(decision) - pd.Timedelta(days=stale_days)]
