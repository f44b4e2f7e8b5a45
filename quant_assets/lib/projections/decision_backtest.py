"""The decision backtest: decide at each ensemble window's first session, hold until the next decision, and
compare fractional Kelly (stored as ``half_kelly``: the CRRA investor of risk aversion 1/f, f = ½ by default), full
Kelly, equal weight, inverse volatility and the index's buy-and-hold net of costs, with the statistics of
``backtest.strategy_statistics`` (Sharpe standard errors, the probabilistic Sharpe ratio over equal weight, the
deflated Sharpe ratio over every strategy and setting tried, kept in ``projections.backtest_trials``).

Load (``load_backtest_inputs``: prices, each window's ensemble rows, the daily returns, the stored decisions and trials),
run on those frames (``run_decision_backtest``, pure), write (``write_decision_backtest``). A window's Kelly problem
is solved again only when the digest of what it reads changed; otherwise its stored weights are taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.projections.backtest import (
    EQUAL_WEIGHT, STATISTICS_COLUMNS, held_backtest, period_sharpes, strategy_statistics,
)
from quant_assets.lib.projections.cross_section import fresh_symbols, holding_returns, inverse_volatility_weights
from quant_assets.lib.projections.day_step import STALE_DAYS, ensemble_rows_at, residual_returns, residual_rows
from quant_assets.lib.projections.sizing import SizingPolicy, decide
from quant_assets.lib.storage.memo import content_key
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns, replace_in
from quant_assets.lib.vocabulary import HORIZON_LABELS, INDEX_SYMBOL

BENCHMARK = "sp500_buy_hold"
INVERSE_VOLATILITY = "inverse_volatility"
FRACTIONAL_KELLY = "half_kelly"
# The strategies whose weights depend on the sizing policy: a new policy is a new setting tried.
POLICY_STRATEGIES = ("half_kelly", "full_kelly")
TRIAL_COLUMNS = ["setting", "strategy", "periods", "sharpe"]

# A window's stored decision: its full- and fractional-Kelly weights in the scenarios' symbol order, and the share
# of the full-Kelly ones at the cap.
StoredDecision = tuple[dict[str, float], dict[str, float], float]


@dataclass
class BacktestInputs:
    """Everything the decision backtest reads, loaded in one visit.

    ``windows``: per ensemble window its ``window_start``, ``window_end`` and ``first`` (the decision date);
    ``marginals``: by window start, each symbol's latest ensemble rows at the decision date; ``daily_returns``:
    long ``symbol, date, ret_1d`` rows covering every decision's residual year; ``prices``: long ``symbol, date,
    close`` rows (the days each symbol traded, nothing carried forward); ``classes``: each symbol's asset class;
    ``stored``: the rows of ``projections.backtest_decisions`` the last backtest wrote; ``trials``: the strategies
    and settings tried so far (``projections.backtest_trials``).
    """

    windows: pd.DataFrame
    marginals: dict[date, pd.DataFrame]
    daily_returns: pd.DataFrame
    prices: pd.DataFrame
    classes: dict[str, str]
    stored: pd.DataFrame
    trials: pd.DataFrame


@dataclass
class BacktestResult:
    """The backtest's tables (``projections.backtest``, ``backtest_summary``, ``backtest_decisions``,
    ``backtest_trials``) and its summary metadata (its table as a frame, for people to be shown rendered)."""

    periods: pd.DataFrame
    strategies: pd.DataFrame
    decisions: pd.DataFrame
    summary: dict[str, object]
    trials: pd.DataFrame


def decision_backtest(warehouse: Warehouse, policy: SizingPolicy, periods_per_year: float, cost_bp: float) -> BacktestResult:
    """Load the backtest's inputs, run it, replace its tables; the result."""
    result = run_decision_backtest(load_backtest_inputs(warehouse), policy, periods_per_year, cost_bp)
    write_decision_backtest(warehouse, result)
    return result


def load_backtest_inputs(warehouse: Warehouse) -> BacktestInputs:
    """Read, in one read-only visit, the windows' decision dates, their ensemble rows at those dates, the daily
    returns of the residual years before them, every close, and the decisions the last backtest stored."""
    has_stored = warehouse.table_exists("projections.backtest_decisions")
    has_trials = warehouse.table_exists("projections.backtest_trials")
    with warehouse.reader() as con:
        windows = _decision_dates(con)
        if windows.empty:
            raise ValueError("no ensemble windows to backtest; materialize meta_ensemble first")
        # One query per window, not one for all: a column with NULLs reads as a nullable dtype, so a window's
        # frame, and the digest its decision is stored under, would otherwise depend on the other windows.
        marginals = {row.window_start.date(): ensemble_rows_at(con, row.window_start, row.first.date())
                     for row in windows.itertuples()}
        daily_returns = residual_rows(con, windows["first"].min().date(), windows["first"].max().date())
        prices = con.execute("SELECT symbol, date, close FROM market.prices WHERE close IS NOT NULL").df()
        classes = con.execute("SELECT symbol, any_value(asset_class) FROM market.prices GROUP BY symbol").fetchall()
        stored = con.execute("SELECT * FROM projections.backtest_decisions").df() if has_stored else _decision_rows({})
        trials = con.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM projections.backtest_trials").df() \
            if has_trials else pd.DataFrame(columns=TRIAL_COLUMNS)
    return BacktestInputs(windows, marginals, daily_returns, prices, dict(classes), stored, trials)


def run_decision_backtest(inputs: BacktestInputs, policy: SizingPolicy, periods_per_year: float,
                          cost_bp: float) -> BacktestResult:
    """Hold money continuously from decision to decision (pure: the inputs' frames in, the tables out).

    Each decision is made on the window's first date with the ensemble rows known then, and every position is
    entered at its symbol's first close after that date (never the close the signal was computed from); the
    cross-section is the symbols with a fresh ensemble row then, and a position whose symbol has no close before
    the period ends is not filled (its weight stays cash). A window followed by the next window holds until the
    next decision's entry; a window followed by a gap (windows not backfilled) holds until its own last session,
    and the gap is reported, not compounded; the window still in progress (its end after the last price) is
    reported with its return so far, outside the compounded figures. Summary statistics are over the complete
    periods; the annual return uses the time actually held. A window whose inputs key is stored takes its stored
    decision; the others are decided anew.
    """
    windows, prices = inputs.windows, inputs.prices
    last_close = pd.Timestamp(prices["date"].max())
    has_index = INDEX_SYMBOL in set(prices["symbol"])
    strategies = ("half_kelly", "full_kelly", "equal_weight", INVERSE_VOLATILITY, *([BENCHMARK] if has_index else []))
    weights: dict[str, list[dict[str, float]]] = {k: [] for k in strategies}
    periods, cap_binding, fresh = [], [], {}
    stored = _stored_decisions(inputs.stored)
    for i, row in enumerate(windows.itertuples()):
        window, first, window_end = row.window_start.date(), row.first.date(), row.window_end.date()
        following = windows.iloc[i + 1] if i + 1 < len(windows) else None
        consecutive = following is not None and following["window_start"].date() == window_end
        in_progress = pd.Timestamp(window_end) > last_close + pd.Timedelta(days=1)
        exit_day = following["first"] if consecutive else min(pd.Timestamp(window_end) - pd.Timedelta(days=1), last_close)
        status = "in_progress" if in_progress else ("complete" if consecutive or following is None else "before_gap")
        marginals = fresh_symbols(inputs.marginals[window], first, STALE_DAYS)
        residuals = residual_returns(inputs.daily_returns, first)
        key = decision_inputs_key(marginals, residuals, first, policy)
        kelly, fractional, binding = stored.get((window, key)) or _decide_anew(marginals, residuals, first, policy)
        fresh[window] = (key, kelly, fractional, binding)
        weights["full_kelly"].append(kelly)
        weights["half_kelly"].append(fractional)
        weights["equal_weight"].append({s: 1.0 / len(kelly) for s in kelly})
        weights[INVERSE_VOLATILITY].append(inverse_volatility_weights(residuals, inputs.classes, list(kelly)))
        if has_index:
            weights[BENCHMARK].append({INDEX_SYMBOL: 1.0})
        cap_binding.append(binding)
        gap_days = (following["window_start"].date() - window_end).days if following is not None and not consecutive else 0
        periods.append({"window_start": window, "period_start": first, "period_end": pd.Timestamp(exit_day).date(),
                        "status": status, "gap_days_after": gap_days, "decision": first, "exit": exit_day,
                        "exit_rule": "next_entry" if consecutive else "close_at"})
    info = pd.DataFrame(periods).set_index("window_start")
    returns = holding_returns(prices, info)
    frames = {k: pd.DataFrame(v, index=info.index) for k, v in weights.items()}
    # A position whose symbol has no close before its period ends is an order not filled: that money is cash.
    unfilled = {k: float(f.where(returns.reindex(columns=f.columns).isna()).fillna(0.0).abs().to_numpy().sum())
                for k, f in frames.items()}
    frames = {k: f.where(returns.reindex(columns=f.columns).notna(), 0.0) for k, f in frames.items()}
    table, summary = held_backtest(returns, frames, info.drop(columns=["decision", "exit", "exit_rule"]),
                                   periods_per_year=periods_per_year, cost_bp=cost_bp)
    trials = trial_rows(table, policy, cost_bp)
    summary = strategy_statistics(table, summary, periods_per_year, _all_trials(inputs.trials, trials))
    binding = np.asarray(cap_binding, dtype="float64")
    facts = {"windows": len(windows), "complete_periods": int((info["status"] != "in_progress").sum()),
             "gaps": int((info["gap_days_after"] > 0).sum()),
             "in_progress": info.index[info["status"] == "in_progress"].astype(str).tolist(),
             "sizing_horizon": policy.horizon, "kelly_fraction": policy.kelly_fraction,
             "entry": "each symbol's first close after the decision date",
             "cap_binding_share": float(np.nanmean(binding)) if np.isfinite(binding).any() else None,
             "unfilled_weight": {k: round(v, 4) for k, v in unfilled.items() if v > 0} or "none",
             "trials": int(summary["trials"].iloc[0]) if len(summary) else 0,
             "benchmark": BENCHMARK if has_index else f"no {INDEX_SYMBOL} prices: no benchmark row",
             **_headline(summary),
             "table_summary": summary}
    return BacktestResult(table, summary, _decision_rows(fresh), facts, _all_trials(inputs.trials, trials))


def write_decision_backtest(warehouse: Warehouse, result: BacktestResult) -> None:
    """Replace the backtest's three tables whole, in one transaction."""
    with warehouse.writer() as con:
        ensure_columns(con, "projections.backtest", {"period_start": "DATE", "period_end": "DATE", "status": "VARCHAR",
                                                     "gap_days_after": "INTEGER", "cost": "DOUBLE", "invested": "DOUBLE"})
        ensure_columns(con, "projections.backtest_summary", {
            "years_held": "DOUBLE", "gaps": "INTEGER", "gap_days": "INTEGER", "in_progress_return": "DOUBLE",
            **{c: "BIGINT" if c == "trials" else "DOUBLE" for c in STATISTICS_COLUMNS}})
        ensure_columns(con, "projections.backtest_decisions", {"half_kelly_weight": "DOUBLE"})
        replace_in(con, "projections.backtest", result.periods, None)
        replace_in(con, "projections.backtest_summary", result.strategies, None)
        replace_in(con, "projections.backtest_decisions", result.decisions, None)
        replace_in(con, "projections.backtest_trials", result.trials, None)


def decision_inputs_key(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> str:
    """A digest of everything ``decide`` reads: equal keys, equal decisions (the simulation is seeded)."""
    return content_key(str(as_of), repr(policy), marginals.sort_values(["symbol", "horizon"], ignore_index=True),
                       residuals.sort_index(axis=1))


def _decide_anew(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> StoredDecision:
    decision = decide(marginals, residuals, as_of, policy)
    return decision.kelly, decision.fractional, decision.cap_binding


def _stored_decisions(rows: pd.DataFrame) -> dict[tuple[date, str], StoredDecision]:
    """The windows' Kelly weights from the last backtest, by window and inputs key: a window's decision is solved
    again only when what it reads changed, so a daily backtest solves the new window's Kelly problems, not all.
    Rows stored before the fractional-Kelly weights were (no ``half_kelly_weight``) are solved again."""
    if "half_kelly_weight" not in rows:
        return {}
    rows = rows.sort_values(["window_start", "position"], kind="stable")
    return {(pd.Timestamp(window).date(), inputs): (dict(zip(group["symbol"], group["kelly_weight"].astype(float))),
                                                    dict(zip(group["symbol"], group["half_kelly_weight"].astype(float))),
                                                    float(group["cap_binding"].iloc[0]))
            for (window, inputs), group in rows.groupby(["window_start", "inputs"], sort=False)}


def _decision_rows(decisions: dict[date, tuple[str, dict[str, float], dict[str, float], float]]) -> pd.DataFrame:
    rows = [{"window_start": window, "inputs": inputs, "position": i, "symbol": symbol, "kelly_weight": weight,
             "half_kelly_weight": fractional[symbol], "cap_binding": binding}
            for window, (inputs, kelly, fractional, binding) in decisions.items()
            for i, (symbol, weight) in enumerate(kelly.items())]
    return pd.DataFrame(rows, columns=["window_start", "inputs", "position", "symbol", "kelly_weight", "half_kelly_weight",
                                       "cap_binding"])


def _decision_dates(con) -> pd.DataFrame:
    """Per ensemble window: its end, and the decision date, the first date by which every asset class has had a
    session in it (a window opening on a weekend has only crypto rows on its first date; deciding then would leave
    the equities out). Counted per class, not per symbol: a symbol that starts trading within the window joins the
    cross-section at the next window, it does not hold back everyone's decision."""
    # Every horizon's plan of a window has the window's end: the first one's is read.
    return con.execute(
        """WITH classes AS (SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY symbol)
           SELECT e.window_start, p.window_end, e.first FROM (
               SELECT window_start, max(first) AS first FROM (
                   SELECT f.window_start, coalesce(c.asset_class, f.symbol) AS class, min(f.date) AS first
                   FROM forecasts.ensemble f LEFT JOIN classes c USING (symbol) GROUP BY ALL)
               GROUP BY window_start) e
           JOIN forecasts.plans p ON p.window_start = e.window_start AND p.horizon = ?
           ORDER BY e.window_start""", [HORIZON_LABELS[0]]).df()


def trial_rows(table: pd.DataFrame, policy: SizingPolicy, cost_bp: float) -> pd.DataFrame:
    """This run's trials: one per strategy, the Kelly ones named by the sizing policy (another policy is another
    setting tried), the others by the costs alone, with their per-period Sharpe over the complete periods."""
    sharpes = period_sharpes(table)
    done = table[table["status"] != "in_progress"]
    counts = done.groupby("strategy").size()
    rows = [{"setting": f"{policy!r}, cost_bp={cost_bp:g}" if s in POLICY_STRATEGIES else f"cost_bp={cost_bp:g}",
             "strategy": s, "periods": int(counts.get(s, 0)), "sharpe": sharpe} for s, sharpe in sharpes.items()]
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def _all_trials(stored: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Every setting tried on this warehouse: the stored ones, a setting run again taking its new figures."""
    frames = [f for f in (stored, current) if len(f)]
    if not frames:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    joined = pd.concat(frames, ignore_index=True)[TRIAL_COLUMNS]
    return joined.drop_duplicates(["setting", "strategy"], keep="last").reset_index(drop=True)


def _headline(summary: pd.DataFrame) -> dict[str, object]:
    """Fractional Kelly against equal weight, as the goal reads: Sharpe at least equal weight's, maximum drawdown
    at most 75% of it."""
    by = summary.set_index("strategy")
    if not {FRACTIONAL_KELLY, EQUAL_WEIGHT} <= set(by.index):
        return {}
    fk, ew = by.loc[FRACTIONAL_KELLY], by.loc[EQUAL_WEIGHT]
    ratio = float(fk["max_drawdown"] / ew["max_drawdown"]) if ew["max_drawdown"] < 0 else float("nan")
    met = bool(fk["sharpe"] >= ew["sharpe"] and ratio <= 0.75)
    return {"sharpe_fractional_kelly": float(fk["sharpe"]), "sharpe_equal_weight": float(ew["sharpe"]),
            "psr_fractional_kelly_over_equal_weight": float(fk["psr_vs_equal_weight"]),
            "max_drawdown_ratio_vs_equal_weight": ratio,
            "goal_sharpe_and_drawdown": "met" if met else "not met"}
