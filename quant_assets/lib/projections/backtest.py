"""Decision backtest: strategies' weights per window applied to realized period returns, net of costs.

Conventions match empyrical: the annual return is the CAGR, volatility and Sharpe use the sample
standard deviation (ddof = 1) of period returns with a zero risk-free rate, and the maximum drawdown is
measured on wealth starting at 1 (a first-period loss is a drawdown).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quant_assets.lib.projections.statistics import (
    deflated_sharpe_ratio, moments, probabilistic_sharpe_ratio, sharpe_ratio, sharpe_standard_error,
)

PERIOD_COLUMNS: tuple[str, ...] = (
    "strategy", "window_start", "period_return", "log_growth", "turnover", "cumulative_log_growth", "cost", "invested",
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

    Returns the per-window frame (``PERIOD_COLUMNS``: also the ``cost`` paid, a fraction of the period's starting
    wealth, and the share ``invested``) and one summary row per strategy
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
            "cost": turnover * cost_bp / 1e4, "invested": w.sum(axis=1),
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


HELD_SUMMARY_COLUMNS: tuple[str, ...] = (
    *SUMMARY_COLUMNS, "years_held", "gaps", "gap_days", "in_progress_return",
)


def held_backtest(
    asset_returns: pd.DataFrame,
    weights: Mapping[str, pd.DataFrame],
    periods: pd.DataFrame,
    *,
    periods_per_year: float,
    cost_bp: float = 10.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``run_backtest`` over holding periods that are not all complete or adjacent.

    ``periods`` (index ``window_start`` like ``asset_returns``) gives each period's ``period_start`` and
    ``period_end`` (the decision and the exit), its ``status`` (``complete``, ``before_gap``: complete but
    followed by days no decision covered, or ``in_progress``) and ``gap_days_after``. Costs and drift are
    chained over every period; the summary compounds only the complete ones (a gap is time the money was not
    followed, an in-progress period an unfinished outcome): ``log_growth``, Sharpe, volatility and drawdown of
    the complete periods, ``annual_return`` over the ``years_held`` (their summed length, gaps excluded),
    ``gaps`` / ``gap_days`` and the ``in_progress_return`` so far, reported apart.
    """
    missing = [c for c in ("period_start", "period_end", "status", "gap_days_after") if c not in periods.columns]
    if missing:
        raise ValueError(f"the periods frame lacks column(s) {missing}")
    if not periods.index.equals(asset_returns.index):
        raise ValueError("the periods frame must have the same window_start index as the asset returns")
    unknown = sorted(set(periods["status"]) - {"complete", "before_gap", "in_progress"})
    if unknown:
        raise ValueError(f"unknown period status {unknown}; expected complete, before_gap or in_progress")
    if (periods["status"] == "in_progress").iloc[:-1].any():
        raise ValueError("only the last period can be in progress")
    table, _ = run_backtest(asset_returns, weights, periods_per_year=periods_per_year, cost_bp=cost_bp)
    table = table.merge(periods.rename_axis("window_start").reset_index(), on="window_start", how="left")
    complete = table["status"] != "in_progress"
    table["cumulative_log_growth"] = table["log_growth"].where(complete).groupby(table["strategy"]).cumsum()
    days = (pd.to_datetime(periods["period_end"]) - pd.to_datetime(periods["period_start"])).dt.days
    finished = (periods["status"] != "in_progress").to_numpy()
    years = float(days[finished].sum()) / 365.25
    rows = []
    for strategy, group in table.groupby("strategy", sort=False):
        done = group[group["status"] != "in_progress"]
        stats = performance(done["period_return"].to_numpy(), periods_per_year)
        stats["annual_return"] = float(np.expm1(stats["log_growth"] / years)) if years > 0 else float("nan")
        running = group.loc[group["status"] == "in_progress", "period_return"]
        rows.append({"strategy": strategy, **stats, "years_held": years,
                     "gaps": int((periods["gap_days_after"] > 0).sum()), "gap_days": int(periods["gap_days_after"].sum()),
                     "in_progress_return": float(running.iloc[0]) if len(running) else float("nan")})
    summary = pd.DataFrame(rows)[list(HELD_SUMMARY_COLUMNS)].astype({"periods": "int64"})
    return table, summary


STATISTICS_COLUMNS: tuple[str, ...] = (
    "sharpe_se", "skewness", "kurtosis", "psr_vs_equal_weight", "trials", "deflated_sharpe", "turnover",
    "annual_turnover", "costs_paid", "mean_invested", "invested_std",
)
EQUAL_WEIGHT = "equal_weight"


def period_sharpes(table: pd.DataFrame) -> dict[str, float]:
    """Each strategy's per-period Sharpe ratio over its complete periods (``status`` not ``in_progress``)."""
    done = table[table["status"] != "in_progress"] if "status" in table else table
    return {str(k): sharpe_ratio(g["period_return"]) for k, g in done.groupby("strategy", sort=False)}


def strategy_statistics(table: pd.DataFrame, summary: pd.DataFrame, periods_per_year: float,
                        trials: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the statistics a quant asks for, per strategy over its complete periods.

    ``sharpe_se``: the annual Sharpe's standard error (Mertens 2002, skewness and kurtosis of the period returns);
    ``psr_vs_equal_weight``: the probabilistic Sharpe ratio (Bailey & López de Prado 2012) of the strategy against
    equal weight's observed Sharpe, the probability its true Sharpe is the higher; ``trials``: the strategies and
    settings tried (rows of ``trials``, each with its per-period ``sharpe``) and ``deflated_sharpe`` the
    probability the Sharpe beats the best of that many skill-less trials (Bailey & López de Prado 2014; with one
    trial, the probabilistic Sharpe ratio against 0); ``turnover`` the mean one-way traded share per period and
    ``annual_turnover`` a year's; ``costs_paid`` the sum of the periods' costs as fractions of wealth;
    ``mean_invested`` / ``invested_std`` the share invested at the decisions and how much it moves.
    """
    done = table[table["status"] != "in_progress"] if "status" in table else table
    sharpes = period_sharpes(table)
    benchmark = sharpes.get(EQUAL_WEIGHT, float("nan"))
    n_trials = len(trials)
    trial_sharpes = trials["sharpe"].astype("float64").dropna() if n_trials else pd.Series(dtype="float64")
    variance = float(trial_sharpes.var(ddof=1)) if len(trial_sharpes) > 1 else float("nan")
    rows = []
    for strategy in summary["strategy"]:
        group = done[done["strategy"] == strategy]
        r = group["period_return"].to_numpy(dtype="float64")
        skew, kurtosis = moments(r)
        sharpe = sharpes.get(str(strategy), float("nan"))
        rows.append({
            "strategy": strategy, "sharpe_se": sharpe_standard_error(r) * np.sqrt(periods_per_year),
            "skewness": skew, "kurtosis": kurtosis,
            "psr_vs_equal_weight": probabilistic_sharpe_ratio(sharpe, benchmark, len(r), skew, kurtosis),
            "trials": n_trials,
            "deflated_sharpe": deflated_sharpe_ratio(sharpe, len(r), skew, kurtosis, max(n_trials, 1),
                                                     variance if n_trials > 1 else 0.0),
            "turnover": float(group["turnover"].mean()) if len(group) else float("nan"),
            "annual_turnover": float(group["turnover"].mean()) * periods_per_year if len(group) else float("nan"),
            "costs_paid": float(group["cost"].sum()),
            "mean_invested": float(group["invested"].mean()) if len(group) else float("nan"),
            "invested_std": float(group["invested"].std(ddof=1)) if len(group) > 1 else float("nan"),
        })
    return summary.merge(pd.DataFrame(rows, columns=["strategy", *STATISTICS_COLUMNS]), on="strategy", how="left")
