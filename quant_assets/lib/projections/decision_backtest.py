"""The decision backtest: decide at each ensemble window's first session, hold until the next decision, and
compare fractional Kelly (stored as ``half_kelly``: the CRRA investor of risk aversion 1/f, f = ½ by default), full
Kelly, equal weight and the index's buy-and-hold net of costs.

Load (``load_backtest_inputs``: closes, each window's ensemble rows, the daily returns, the stored decisions),
run on those frames (``run_decision_backtest``, pure), write (``write_decision_backtest``). A window's Kelly problem
is solved again only when the digest of what it reads changed; otherwise its stored weights are taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.projections.backtest import held_backtest
from quant_assets.lib.projections.day_step import ensemble_rows_at, residual_returns, residual_rows
from quant_assets.lib.projections.sizing import SizingPolicy, decide
from quant_assets.lib.storage.memo import content_key
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns, replace_in
from quant_assets.lib.vocabulary import HORIZON_LABELS, INDEX_SYMBOL

BENCHMARK = "sp500_buy_hold"

# A window's stored decision: its full- and fractional-Kelly weights in the scenarios' symbol order, and the share
# of the full-Kelly ones at the cap.
StoredDecision = tuple[dict[str, float], dict[str, float], float]


@dataclass
class BacktestInputs:
    """Everything the decision backtest reads, loaded in one visit.

    ``windows``: per ensemble window its ``window_start``, ``window_end`` and ``first`` (the decision date);
    ``marginals``: by window start, each symbol's latest ensemble rows at the decision date; ``daily_returns``:
    long ``symbol, date, ret_1d`` rows covering every decision's residual year; ``closes``: wide date x symbol
    closes carried forward; ``stored``: the rows of ``projections.backtest_decisions`` the last backtest wrote.
    """

    windows: pd.DataFrame
    marginals: dict[date, pd.DataFrame]
    daily_returns: pd.DataFrame
    closes: pd.DataFrame
    stored: pd.DataFrame


@dataclass
class BacktestResult:
    """The backtest's tables (``projections.backtest``, ``backtest_summary``, ``backtest_decisions``) and its
    summary metadata (its table as a frame, for people to be shown rendered)."""

    periods: pd.DataFrame
    strategies: pd.DataFrame
    decisions: pd.DataFrame
    summary: dict[str, object]


def decision_backtest(warehouse: Warehouse, policy: SizingPolicy, periods_per_year: float, cost_bp: float) -> BacktestResult:
    """Load the backtest's inputs, run it, replace its tables; the result."""
    result = run_decision_backtest(load_backtest_inputs(warehouse), policy, periods_per_year, cost_bp)
    write_decision_backtest(warehouse, result)
    return result


def load_backtest_inputs(warehouse: Warehouse) -> BacktestInputs:
    """Read, in one read-only visit, the windows' decision dates, their ensemble rows at those dates, the daily
    returns of the residual years before them, every close, and the decisions the last backtest stored."""
    has_stored = warehouse.table_exists("projections.backtest_decisions")
    with warehouse.reader() as con:
        windows = _decision_dates(con)
        if windows.empty:
            raise ValueError("no ensemble windows to backtest; materialize meta_ensemble first")
        # One query per window, not one for all: a column with NULLs reads as a nullable dtype, so a window's
        # frame, and the digest its decision is stored under, would otherwise depend on the other windows.
        marginals = {row.window_start.date(): ensemble_rows_at(con, row.window_start, row.first.date())
                     for row in windows.itertuples()}
        daily_returns = residual_rows(con, windows["first"].min().date(), windows["first"].max().date())
        closes = _closes(con)
        stored = con.execute("SELECT * FROM projections.backtest_decisions").df() if has_stored else _decision_rows({})
    return BacktestInputs(windows, marginals, daily_returns, closes, stored)


def run_decision_backtest(inputs: BacktestInputs, policy: SizingPolicy, periods_per_year: float,
                          cost_bp: float) -> BacktestResult:
    """Hold money continuously from decision to decision (pure: the inputs' frames in, the tables out).

    A window followed by the next window holds until that window's decision; a window followed by a gap
    (windows not backfilled) holds until its own last session, and the gap is reported, not compounded; the
    window still in progress (its end after the last price) is reported with its return so far, outside the
    compounded figures. Summary statistics are over the complete periods; the annual return uses the time
    actually held. A window whose inputs key is stored takes its stored decision; the others are decided anew.
    """
    windows, closes = inputs.windows, inputs.closes
    last_close = closes.index.max()
    strategies = ("half_kelly", "full_kelly", "equal_weight", *([BENCHMARK] if INDEX_SYMBOL in closes.columns else []))
    weights: dict[str, list[dict[str, float]]] = {k: [] for k in strategies}
    realized, periods, cap_binding, fresh = [], [], [], {}
    stored = _stored_decisions(inputs.stored)
    for i, row in enumerate(windows.itertuples()):
        window, first, window_end = row.window_start.date(), row.first.date(), row.window_end.date()
        following = windows.iloc[i + 1] if i + 1 < len(windows) else None
        consecutive = following is not None and following["window_start"].date() == window_end
        in_progress = pd.Timestamp(window_end) > last_close + pd.Timedelta(days=1)
        exit_day = following["first"] if consecutive else min(pd.Timestamp(window_end) - pd.Timedelta(days=1), last_close)
        status = "in_progress" if in_progress else ("complete" if consecutive or following is None else "before_gap")
        marginals, residuals = inputs.marginals[window], residual_returns(inputs.daily_returns, first)
        key = decision_inputs_key(marginals, residuals, first, policy)
        kelly, fractional, binding = stored.get((window, key)) or _decide_anew(marginals, residuals, first, policy)
        fresh[window] = (key, kelly, fractional, binding)
        weights["full_kelly"].append(kelly)
        weights["half_kelly"].append(fractional)
        weights["equal_weight"].append({s: 1.0 / len(kelly) for s in kelly})
        if BENCHMARK in weights:
            weights[BENCHMARK].append({INDEX_SYMBOL: 1.0})
        cap_binding.append(binding)
        entry, exit_ = closes.asof(pd.Timestamp(first)), closes.asof(pd.Timestamp(exit_day))
        realized.append((exit_ / entry - 1.0).to_dict())
        gap_days = (following["window_start"].date() - window_end).days if following is not None and not consecutive else 0
        periods.append({"window_start": window, "period_start": first, "period_end": pd.Timestamp(exit_day).date(),
                        "status": status, "gap_days_after": gap_days})
    index = pd.Index([p["window_start"] for p in periods], name="window_start")
    info = pd.DataFrame(periods).set_index("window_start")
    table, summary = held_backtest(pd.DataFrame(realized, index=index),
                                   {k: pd.DataFrame(v, index=index) for k, v in weights.items()},
                                   info, periods_per_year=periods_per_year, cost_bp=cost_bp)
    binding = np.asarray(cap_binding, dtype="float64")
    facts = {"windows": len(windows), "complete_periods": int((info["status"] != "in_progress").sum()),
             "gaps": int((info["gap_days_after"] > 0).sum()),
             "in_progress": info.index[info["status"] == "in_progress"].astype(str).tolist(),
             "sizing_horizon": policy.horizon,
             "cap_binding_share": float(np.nanmean(binding)) if np.isfinite(binding).any() else None,
             "benchmark": BENCHMARK if BENCHMARK in weights else f"no {INDEX_SYMBOL} prices: no benchmark row",
             "table_summary": summary}
    return BacktestResult(table, summary, _decision_rows(fresh), facts)


def write_decision_backtest(warehouse: Warehouse, result: BacktestResult) -> None:
    """Replace the backtest's three tables whole, in one transaction."""
    with warehouse.writer() as con:
        ensure_columns(con, "projections.backtest", {"period_start": "DATE", "period_end": "DATE", "status": "VARCHAR",
                                                     "gap_days_after": "INTEGER"})
        ensure_columns(con, "projections.backtest_summary", {"years_held": "DOUBLE", "gaps": "INTEGER",
                                                             "gap_days": "INTEGER", "in_progress_return": "DOUBLE"})
        ensure_columns(con, "projections.backtest_decisions", {"half_kelly_weight": "DOUBLE"})
        replace_in(con, "projections.backtest", result.periods, None)
        replace_in(con, "projections.backtest_summary", result.strategies, None)
        replace_in(con, "projections.backtest_decisions", result.decisions, None)


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
    """Per ensemble window: its end, and the first date by which every symbol has had a session in it (a window
    opening on a weekend has only crypto rows on its first date; deciding then would leave the equities out)."""
    # Every horizon's plan of a window has the window's end: the first one's is read.
    return con.execute(
        """SELECT e.window_start, p.window_end, e.first FROM (
               SELECT window_start, max(first) AS first FROM (
                   SELECT window_start, symbol, min(date) AS first FROM forecasts.ensemble GROUP BY ALL)
               GROUP BY window_start) e
           JOIN forecasts.plans p ON p.window_start = e.window_start AND p.horizon = ?
           ORDER BY e.window_start""", [HORIZON_LABELS[0]]).df()


def _closes(con) -> pd.DataFrame:
    """Wide date x symbol closes, each carried forward over the days its market was shut."""
    prices = con.execute("SELECT symbol, date, close FROM market.prices").df()
    return prices.pivot(index="date", columns="symbol", values="close").sort_index().ffill()
