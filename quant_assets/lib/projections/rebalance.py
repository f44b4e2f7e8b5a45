"""Rebalancing a book that already holds positions: the cost-aware fractional-Kelly target (convex, costs inside the
problem), then the rounding step that turns target weights into whole (or fractional) share orders (pure).

The target maximizes the advice's own utility (CRRA, risk aversion 1/f, on the same sized scenarios and under the
same cap, budget and eligibility) of the wealth net of proportional costs::

    max  mean_s u(1 + R_s . w - c * sum|w - w0|)
    s.t. 0 <= w_i <= cap (w_i <= w0_i for a symbol the advice does not make eligible: it may be sold, never bought),
         sum w <= max_total,  sum w + c * sum|w - w0| <= 1 (costs are paid from cash),
         sum|w - w0| <= turnover_cap

so a trade is made only when the utility it adds pays for its cost. The minimum fee, the minimum trade size and whole
shares are not convex; ``round_trades`` applies them afterwards, in this order:

1. the no-trade band: a position whose current weight is within ± tolerance of its target is left alone;
2. sells (largest first) are rounded to the nearest whole share (crypto, or equities when fractional shares are
   allowed: to a millionth), up when cash is withdrawn so that the sells fund it, never beyond the shares held; a
   target of zero sells everything;
3. buys (largest first) are rounded down the same way and reduced until the order plus its fee fits the cash on hand
   (the cash added plus what the sells freed, net of their fees): the cash is never overspent;
4. an order below the minimum trade size is dropped; each order pays max(minimum fee, cost bp × dollars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.lib.projections.rebalance_terms import RebalanceError, TradingTerms

# Crypto (and fractional equities) trade in millionths of a unit: the precision the Projector shows shares at.
FRACTION_STEP = 1e-6
# Below this a weight change is solver noise (a cent on $10,000).
WEIGHT_NOISE = 1e-6


@dataclass(frozen=True)
class Target:
    """The solved cost-aware weights and whether the turnover cap binds them."""

    weights: np.ndarray
    turnover: float
    turnover_cap_binds: bool


def cost_aware_target(simple_returns: np.ndarray, current: np.ndarray, eligible: np.ndarray, cap: float,
                      max_total: float, fraction: float, cost_rate: float, turnover_cap: float) -> Target:
    """The weights maximizing the fractional-Kelly utility of scenario wealth net of ``cost_rate · |w − current|``
    (see the module's docstring for the problem); ``simple_returns`` is n_scenarios × n_assets, ``current`` the
    weights held now (fractions of the book after the cash added), ``eligible`` which assets the advice may buy."""
    # Here, not at import: the API and the CLI load cvxpy only when they rebalance. The advice's own solver settings
    # and objective, so the target with no cost is the advice's weights exactly.
    import cvxpy as cp

    from quant_assets.lib.projections.kelly import SOLVED, solve_conic, utility_objective

    r = np.asarray(simple_returns, dtype="float64")
    w0 = np.asarray(current, dtype="float64")
    can_buy = np.asarray(eligible, dtype=bool)
    n_scen, n_assets = r.shape
    if w0.shape != (n_assets,) or can_buy.shape != (n_assets,):
        raise ValueError(f"cost_aware_target: {n_assets} assets but {w0.size} current weights, {can_buy.size} flags")
    upper = np.where(can_buy, cap, np.minimum(w0, cap))
    # A symbol neither eligible nor held stays at zero: it leaves the problem, which then solves in a fraction of the time.
    active = upper > 0
    if not active.any():
        return Target(np.zeros(n_assets), 0.0, False)
    buy, sell = cp.Variable(int(active.sum()), nonneg=True), cp.Variable(int(active.sum()), nonneg=True)
    w = w0[active] + buy - sell
    traded = cp.sum(buy) + cp.sum(sell)
    wealth = cp.Variable(n_scen)
    problem = cp.Problem(utility_objective(wealth, 1.0 / fraction), [
        wealth == 1.0 + r[:, active] @ w - cost_rate * traded, w >= 0, w <= upper[active], cp.sum(w) <= max_total,
        cp.sum(w) + cost_rate * traded <= 1.0, traded <= turnover_cap])
    solve_conic(problem)
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise RebalanceError(f"no trades within the turnover cap of {turnover_cap:g} bring the book within its budget "
                             "and position cap; raise the turnover cap or withdraw less")
    if problem.status not in SOLVED or buy.value is None:
        raise RuntimeError(f"cost_aware_target: no solver solved the rebalance problem (status {problem.status})")
    change = np.zeros(n_assets)
    change[active] = np.asarray(buy.value, dtype="float64") - np.asarray(sell.value, dtype="float64")
    change[np.abs(change) < WEIGHT_NOISE] = 0.0
    weights = np.clip(w0 + change, 0.0, upper)
    turnover = float(np.abs(weights - w0).sum())
    return Target(weights, turnover, turnover >= turnover_cap - 1e-4 and turnover > 0)


def certainty_equivalent(simple_returns: np.ndarray, weights: np.ndarray, fraction: float) -> float:
    """The sure growth factor worth as much to the CRRA investor (risk aversion 1/f) as the scenario wealth
    ``1 + R · weights``: ``exp(mean log W)`` for full Kelly, ``(mean W^(1−γ))^(1/(1−γ))`` otherwise."""
    wealth = 1.0 + np.asarray(simple_returns, dtype="float64") @ np.asarray(weights, dtype="float64")
    gamma = 1.0 / fraction
    if gamma == 1.0:
        return float(np.exp(np.mean(np.log(wealth))))
    return float(np.mean(wealth ** (1.0 - gamma)) ** (1.0 / (1.0 - gamma)))


def _step(asset_class: str, terms: TradingTerms) -> float | None:
    """The smallest unit traded: None for whole shares."""
    return FRACTION_STEP if asset_class == "crypto" or terms.fractional_shares else None


def _round(shares: float, step: float | None, how: str) -> float:
    """``shares`` rounded ``how`` ('up', 'down' or 'nearest') to whole shares (``step`` None) or to ``step``."""
    units = shares / (step or 1.0)
    rounded = {"up": math.ceil(units - 1e-6), "down": math.floor(units + 1e-6), "nearest": math.floor(units + 0.5)}[how]
    return float(rounded * (step or 1.0))


def round_trades(book: pd.DataFrame, cash_added: float, terms: TradingTerms) -> tuple[pd.DataFrame, float]:
    """Orders from target weights, by the rounding step of the module's docstring; returns the book with ``side``,
    ``shares`` (traded, positive), ``dollars``, ``cost``, ``shares_after`` and ``note`` per symbol, and the cash left.

    ``book`` has one row per covered symbol: ``symbol, asset_class, last_price, shares_held, current_weight,
    target_weight``; weights are fractions of ``total`` = the held value plus ``cash_added`` (negative: a withdrawal).
    """
    total = float((book["shares_held"] * book["last_price"]).sum() + cash_added)
    out = book.assign(side="HOLD", shares=0.0, dollars=0.0, cost=0.0, shares_after=book["shares_held"], note="")
    gap = out["target_weight"] - out["current_weight"]
    inside = gap.abs() <= terms.tolerance + 1e-12
    out.loc[inside & (gap.abs() > WEIGHT_NOISE), "note"] = f"within ±{terms.tolerance:.1%} of target: no trade"
    cash = float(cash_added)
    sell_rounding = "up" if cash_added < 0 else "nearest"
    for selling in (True, False):
        wanted = out.index[~inside & ((gap < -WEIGHT_NOISE) if selling else (gap > WEIGHT_NOISE))]
        for i in sorted(wanted, key=lambda j: -abs(gap[j])):
            price, held, step = out.at[i, "last_price"], out.at[i, "shares_held"], _step(out.at[i, "asset_class"], terms)
            shares = abs(gap[i]) * total / price
            if selling:
                shares = held if out.at[i, "target_weight"] <= WEIGHT_NOISE else min(held, _round(shares, step, sell_rounding))
            else:
                # The largest order whose dollars plus fee fit the cash: x + max(min_fee, r x) <= cash.
                affordable = max(0.0, min(cash - terms.min_fee, cash / (1 + terms.cost_rate))) / price
                shares = _round(min(shares, affordable), step, "down")
                if shares * price < abs(gap[i]) * total - price - 1e-9:
                    out.at[i, "note"] = "limited by the cash on hand"
            dollars = shares * price
            if shares <= 0:
                out.at[i, "note"] = out.at[i, "note"] or "less than one share: no trade"
                continue
            if dollars < terms.min_trade:
                out.at[i, "note"] = f"below the ${terms.min_trade:,.2f} minimum trade: no trade"
                continue
            fee = terms.fee(dollars)
            cash += dollars - fee if selling else -(dollars + fee)
            out.loc[i, ["side", "shares", "dollars", "cost"]] = ["SELL" if selling else "BUY", shares, dollars, fee]
            out.at[i, "shares_after"] = held - shares if selling else held + shares
    if cash < -1e-9:
        raise RebalanceError(f"the trades free ${cash - cash_added:,.2f} but ${-cash_added:,.2f} is to be withdrawn; "
                             "withdraw less or lower the no-trade tolerance or minimum trade")
    return out, round(max(cash, 0.0), 2)
