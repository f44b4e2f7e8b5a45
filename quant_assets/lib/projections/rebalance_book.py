"""The rebalance of a person's book: the day's stored sizing scenarios (load), their plays and the cash they add
(values passed in), the cost-aware target and the rounded orders (pure, ``rebalance``), as lines and a summary.

The plays stay in the person's file: the caller reads them and passes them in, so nothing here opens it, and the
warehouse never holds a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.projections.rebalance import certainty_equivalent, cost_aware_target, round_trades
from quant_assets.lib.projections.rebalance_terms import NoAdvice, RebalanceError, TradingTerms, parse_cash

SCENARIOS = "projections.sizing_scenarios"
LINE_COLUMNS = ["symbol", "asset_class", "covered", "shares_held", "last_price", "value", "current_weight",
                "advised_weight", "target_weight", "drift", "side", "shares", "dollars", "cost", "shares_after",
                "weight_after", "note"]


@dataclass(frozen=True)
class DayAdvice:
    """One as-of day's sized scenarios at the sizing horizon and the advice's constraints on them."""

    as_of: date
    horizon: str
    symbols: list[str]
    asset_class: list[str]
    last_price: np.ndarray
    eligible: np.ndarray
    advised_weight: np.ndarray
    simple_returns: np.ndarray
    cap: float
    max_total: float
    kelly_fraction: float


def scenario_rows(as_of: date, horizon: str, symbols: list[str], simple_returns: np.ndarray, eligible: list[str],
                  cap: float, max_total: float, kelly_fraction: float) -> pd.DataFrame:
    """The rows of ``projections.sizing_scenarios`` for one day: per symbol, its sized simple returns at the sizing
    horizon (one list per symbol, the scenarios in order) and the constraints the advice solved under."""
    return pd.DataFrame({
        "as_of": as_of, "symbol": symbols, "horizon": horizon, "eligible": [s in eligible for s in symbols],
        "position_cap": cap, "max_total": max_total, "kelly_fraction": kelly_fraction,
        "simple_returns": [np.asarray(simple_returns[:, i], dtype="float64").tolist() for i in range(len(symbols))]})


def load_day_advice(con, as_of: date | None) -> DayAdvice:
    """The stored sizing scenarios of ``as_of`` (None: the latest day) joined to that day's allocations;
    ``NoAdvice`` when that day has none."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'projections' "
                         "AND table_name = 'sizing_scenarios'").fetchone()[0]
    if not exists:
        raise NoAdvice("no sizing scenarios stored yet; materialize the projections partition of a day")
    day = con.execute(f"SELECT max(as_of) FROM {SCENARIOS}" + (" WHERE as_of = ?" if as_of else ""),
                      [as_of] if as_of else []).fetchone()[0]
    if day is None:
        raise NoAdvice(f"no advice with sizing scenarios stored for {as_of}" if as_of else
                       "no sizing scenarios stored yet; materialize the projections partition of a day")
    rows = con.execute(f"""
        SELECT s.symbol, a.asset_class, a.last_price, s.eligible, a.half_kelly_weight, s.simple_returns, s.horizon,
               s.position_cap, s.max_total, s.kelly_fraction
        FROM {SCENARIOS} s JOIN projections.allocations a USING (as_of, symbol)
        WHERE s.as_of = ? ORDER BY s.symbol""", [day]).fetchall()
    first = rows[0]
    return DayAdvice(day, first[6], [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows]),
                     np.array([bool(r[3]) for r in rows]), np.array([r[4] for r in rows], dtype="float64"),
                     np.column_stack([np.asarray(r[5], dtype="float64") for r in rows]), first[7], first[8], first[9])


def held_shares(plays: list[dict]) -> dict[str, float]:
    """Shares held per symbol, the plays of one symbol added together."""
    held: dict[str, float] = {}
    for play in plays:
        held[play["symbol"]] = held.get(play["symbol"], 0.0) + float(play["shares"])
    return held


def rebalance(advice: DayAdvice, plays: list[dict], cash: float, terms: TradingTerms) -> tuple[pd.DataFrame, dict]:
    """The orders that move the book (``plays`` plus ``cash`` added, or withdrawn when negative) toward the day's
    cost-aware target: one line per symbol held or advised (``LINE_COLUMNS``) and a summary. Symbols the advice does
    not cover are kept and named, never sold; a withdrawal beyond the covered book is refused."""
    cash = parse_cash(cash)
    held = held_shares(plays)
    shares = np.array([held.get(s, 0.0) for s in advice.symbols])
    value = shares * advice.last_price
    total = float(value.sum() + cash)
    if total <= 0:
        raise RebalanceError(f"a withdrawal of ${-cash:,.2f} is beyond the ${value.sum():,.2f} the advice's symbols "
                             "in your plays are worth")
    current = value / total
    target = cost_aware_target(advice.simple_returns, current, advice.eligible, advice.cap, advice.max_total,
                               advice.kelly_fraction, terms.cost_rate, terms.turnover_cap)
    book = pd.DataFrame({"symbol": advice.symbols, "asset_class": advice.asset_class, "last_price": advice.last_price,
                         "shares_held": shares, "current_weight": current, "target_weight": target.weights})
    orders, cash_left = round_trades(book, cash, terms)
    after = orders["shares_after"].to_numpy() * advice.last_price / total
    lines = orders.assign(covered=True, value=value, advised_weight=advice.advised_weight,
                          drift=current - target.weights, weight_after=after)
    lines = lines[(lines["shares_held"] > 0) | (lines["target_weight"] > 0) | (lines["advised_weight"] > 0)].copy()
    if target.turnover_cap_binds:
        lines.loc[lines["side"] != "HOLD", "note"] = f"turnover cap {terms.turnover_cap:g} binds"
    uncovered = sorted(set(held) - set(advice.symbols))
    kept = pd.DataFrame({"symbol": uncovered, "asset_class": None, "covered": False,
                         "shares_held": [held[s] for s in uncovered], "side": "HOLD", "shares": 0.0, "dollars": 0.0,
                         "cost": 0.0, "shares_after": [held[s] for s in uncovered],
                         "note": "not covered by the advice: kept as held"})
    lines = pd.concat([lines, kept], ignore_index=True) if uncovered else lines.reset_index(drop=True)
    cost = float(orders["cost"].sum())
    gained = total * (certainty_equivalent(advice.simple_returns, after, advice.kelly_fraction)
                      - certainty_equivalent(advice.simple_returns, current, advice.kelly_fraction))
    summary = {
        "as_of": advice.as_of, "horizon": advice.horizon, "cash_added": round(cash, 2),
        "book_value": round(float(value.sum()), 2), "total": round(total, 2), "cash_left": float(cash_left),
        "total_cost": round(cost, 2), "expected_growth_gained": round(gained, 2),
        "turnover": round(float(np.abs(after - current).sum()), 4), "target_turnover": round(target.turnover, 4),
        "turnover_cap_binds": target.turnover_cap_binds, "uncovered_symbols": uncovered,
        "terms": {"cost_bp": terms.cost_bp, "min_fee": terms.min_fee, "min_trade": terms.min_trade,
                  "tolerance": terms.tolerance, "turnover_cap": terms.turnover_cap,
                  "fractional_shares": terms.fractional_shares},
    }
    return lines[LINE_COLUMNS], summary
