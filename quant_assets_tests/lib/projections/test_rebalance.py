"""The rebalance maths against hand-computed cases: the cost-aware target on two equally likely scenarios (closed
forms for full and half Kelly), the no-trade band, a cost high enough to stop a trade, the turnover cap, and the
rounding step's whole shares that never overspend the cash (hand cases and properties)."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from quant_assets.lib.projections.day_step import project_and_allocate
from quant_assets.lib.projections.kelly import scenario_kelly
from quant_assets.lib.projections.rebalance import (
    RebalanceError, TradingTerms, certainty_equivalent, cost_aware_target, round_trades)
from quant_assets.lib.projections.rebalance_book import DayAdvice, rebalance
from quant_assets_tests.lib.projections.conftest import SURFACE_POLICY

UP, DOWN = 0.10, 0.09
TWO_SCENARIOS = np.array([[UP], [-DOWN]])
FREE = TradingTerms(cost_bp=0, min_fee=0, min_trade=0, tolerance=0, turnover_cap=2, fractional_shares=True)


def closed_form(a: float, b: float, fraction: float) -> float:
    """The weight maximizing ½u(1 + a w) + ½u(1 − b w): (a − b) / 2ab for log utility; for half Kelly (u = −1/W),
    a / (1 + a w)² = b / (1 − b w)², so w = (√a − √b) / (a√b + b√a)."""
    if fraction == 1.0:
        return (a - b) / (2 * a * b)
    return (math.sqrt(a) - math.sqrt(b)) / (a * math.sqrt(b) + b * math.sqrt(a))


@pytest.mark.parametrize("fraction", [1.0, 0.5])
@pytest.mark.parametrize("cost", [0.0, 0.002])
def test_buying_from_cash_pays_the_cost_in_both_scenarios(fraction, cost):
    # From cash, a buy of w costs c w whatever happens: the wealth is 1 + (a − c) w or 1 − (b + c) w.
    target = cost_aware_target(TWO_SCENARIOS, np.zeros(1), np.ones(1, bool), cap=1, max_total=1, fraction=fraction,
                               cost_rate=cost, turnover_cap=2)
    assert target.weights[0] == pytest.approx(closed_form(UP - cost, DOWN + cost, fraction), abs=1e-4)
    assert not target.turnover_cap_binds


def test_with_no_cost_the_target_from_cash_is_the_advice():
    rng = np.random.default_rng(3)
    returns = np.expm1(rng.normal([0.01, 0.004, -0.002], [0.06, 0.03, 0.05], size=(2000, 3)))
    advice = scenario_kelly(returns, cap=0.4, fraction=0.5)
    target = cost_aware_target(returns, np.zeros(3), np.ones(3, bool), 0.4, 1.0, 0.5, 0.0, 2.0)
    np.testing.assert_allclose(target.weights, advice, atol=1e-4)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_a_cost_above_the_edge_stops_the_trade(fraction):
    # The marginal utility of the first dollar bought is ½(a − c) − ½(b + c) (times u'(1) = 1): no buy once c ≥ (a − b)/2.
    edge = (UP - DOWN) / 2
    for cost, buys in ((edge * 0.8, True), (edge * 1.2, False)):
        target = cost_aware_target(TWO_SCENARIOS, np.zeros(1), np.ones(1, bool), 1, 1, fraction, cost, 2)
        assert bool(target.weights[0] > 1e-4) is buys, (cost, target.weights)


def test_a_held_position_is_kept_where_selling_costs_more_than_it_gains():
    # Held at 0.45 against a free target of 0.556 (log utility): with 40 bp of cost, buying the gap gains less than
    # it costs (the target from cash at that cost is 0.10 / 2·0.0096·0.0944... = closed_form(0.096, 0.094) = 0.11),
    # so the cost-aware target keeps the weight held.
    held = 0.45
    target = cost_aware_target(TWO_SCENARIOS, np.array([held]), np.ones(1, bool), 1, 1, 1.0, 0.004, 2)
    assert closed_form(UP - 0.004, DOWN + 0.004, 1.0) < held < closed_form(UP, DOWN, 1.0)
    assert target.weights[0] == pytest.approx(held, abs=1e-5)


def test_the_turnover_cap_binds():
    target = cost_aware_target(TWO_SCENARIOS, np.zeros(1), np.ones(1, bool), 1, 1, 0.5, 0.0, turnover_cap=0.1)
    assert target.weights[0] == pytest.approx(0.1, abs=1e-6)
    assert target.turnover_cap_binds


def test_an_ineligible_holding_may_be_sold_never_bought():
    returns = np.column_stack([TWO_SCENARIOS[:, 0], TWO_SCENARIOS[:, 0]])
    target = cost_aware_target(returns, np.array([0.0, 0.05]), np.array([True, False]), 1, 1, 1.0, 0.0, 2)
    assert target.weights[1] <= 0.05 + 1e-9


def _book(**columns) -> pd.DataFrame:
    defaults = {"symbol": ["AAA"], "asset_class": ["equity"], "last_price": [300.0], "shares_held": [0.0],
                "current_weight": [0.0], "target_weight": [1.0]}
    return pd.DataFrame(defaults | columns)


@pytest.mark.parametrize(("cash", "shares", "left"), [(1000.0, 3, 99.0), (901.0, 3, 0.0), (900.99, 2, 299.99)])
def test_whole_shares_with_their_fee_never_overspend_the_cash(cash, shares, left):
    # Three shares at $300 cost $900 plus the $1 minimum fee (5 bp of $900 is $0.45): $901 buys three, $900.99 two.
    terms = TradingTerms(cost_bp=5, min_fee=1, min_trade=0, tolerance=0, turnover_cap=2, fractional_shares=False)
    orders, cash_left = round_trades(_book(), cash, terms)
    assert orders.loc[0, "shares"] == shares and orders.loc[0, "side"] == "BUY"
    assert orders.loc[0, "cost"] == pytest.approx(1.0)
    assert cash_left == pytest.approx(left)


def test_no_trade_inside_the_band_and_none_below_the_minimum_trade():
    terms = TradingTerms(cost_bp=5, min_fee=1, min_trade=100, tolerance=0.02, turnover_cap=2, fractional_shares=False)
    # 10 shares at $100 of a $1,000 book (no cash added): the first is 1.5 points off its target, inside the band;
    # the second wants $50 more, under the $100 minimum trade.
    book = _book(symbol=["IN", "SMALL"], asset_class=["equity"] * 2, last_price=[100.0, 10.0],
                 shares_held=[5.0, 50.0], current_weight=[0.5, 0.5], target_weight=[0.515, 0.45])
    orders, cash_left = round_trades(book, 0.0, terms)
    assert list(orders["side"]) == ["HOLD", "HOLD"] and cash_left == 0.0
    assert "within" in orders.loc[0, "note"] and "minimum trade" in orders.loc[1, "note"]


def test_crypto_trades_in_fractions_and_a_sell_funds_a_buy():
    terms = TradingTerms(cost_bp=10, min_fee=0, min_trade=0, tolerance=0, turnover_cap=2, fractional_shares=False)
    book = _book(symbol=["BTC", "EQ"], asset_class=["crypto", "equity"], last_price=[20_000.0, 50.0],
                 shares_held=[0.1, 0.0], current_weight=[1.0, 0.0], target_weight=[0.5, 0.5])
    orders, cash_left = round_trades(book, 0.0, terms)
    assert orders.loc[0, "side"] == "SELL" and orders.loc[0, "shares"] == pytest.approx(0.05)
    # $1,000 freed less $1 of cost: $999 buys 19 whole shares at $50 ($950 + $0.95).
    assert orders.loc[1, "shares"] == 19 and cash_left == pytest.approx(999 - 950 - 0.95)


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 5000), st.floats(0, 50), st.floats(0, 1), st.booleans()), min_size=1, max_size=5),
       st.floats(0, 20_000), st.floats(0, 100), st.floats(0, 10), st.floats(0, 200), st.booleans())
def test_rounding_never_overspends_and_equities_stay_whole(positions, cash, cost_bp, min_fee, min_trade, fractional):
    prices, held, targets, crypto = (np.array(x) for x in zip(*positions))
    held = np.where(crypto, held, np.floor(held))
    total = float((prices * held).sum() + cash)
    if total <= 0:
        return
    targets = targets / max(1.0, targets.sum())
    terms = TradingTerms(cost_bp, min_fee, min_trade, 0.0, 2.0, fractional)
    book = pd.DataFrame({"symbol": [f"S{i}" for i in range(len(prices))],
                         "asset_class": np.where(crypto, "crypto", "equity"), "last_price": prices,
                         "shares_held": held, "current_weight": prices * held / total, "target_weight": targets})
    orders, cash_left = round_trades(book, cash, terms)
    signed = np.where(orders["side"] == "BUY", orders["dollars"], -orders["dollars"])
    assert cash - signed.sum() - orders["cost"].sum() >= -1e-6
    assert cash_left >= 0 and (orders["shares_after"] >= -1e-9).all()
    whole = (orders["asset_class"] == "equity") & (orders["side"] == "BUY") & (not fractional)
    assert np.allclose(orders.loc[whole, "shares"], np.round(orders.loc[whole, "shares"]))
    assert (orders.loc[orders["side"] != "HOLD", "dollars"] >= min_trade - 1e-9).all()


def _advice(**changes) -> DayAdvice:
    fields = {"as_of": date(2022, 12, 28), "horizon": "1m", "symbols": ["AAA", "BBB"],
              "asset_class": ["equity", "crypto"], "last_price": np.array([100.0, 1000.0]),
              "eligible": np.array([True, True]), "advised_weight": np.array([0.3, 0.2]),
              "simple_returns": np.column_stack([TWO_SCENARIOS[:, 0], TWO_SCENARIOS[::-1, 0] * 0.5]),
              "cap": 0.6, "max_total": 1.0, "kelly_fraction": 0.5}
    return DayAdvice(**(fields | changes))


def test_a_book_keeps_what_the_advice_does_not_cover_and_shows_the_cash_left():
    terms = TradingTerms(cost_bp=5, min_fee=1, min_trade=10, tolerance=0.02, turnover_cap=1, fractional_shares=False)
    plays = [{"symbol": "AAA", "shares": 5}, {"symbol": "AAA", "shares": 5}, {"symbol": "ZZZ", "shares": 7}]
    lines, summary = rebalance(_advice(), plays, 1000.0, terms)
    kept = lines[lines["symbol"] == "ZZZ"].iloc[0]
    assert not kept["covered"] and kept["side"] == "HOLD" and kept["shares_after"] == 7
    assert summary["uncovered_symbols"] == ["ZZZ"] and summary["total"] == 2000.0
    aaa = lines[lines["symbol"] == "AAA"].iloc[0]
    assert aaa["shares_held"] == 10 and aaa["current_weight"] == pytest.approx(0.5)
    spent = (lines["dollars"] * np.where(lines["side"] == "BUY", 1, -1)).sum() + lines["cost"].sum()
    assert summary["cash_left"] == pytest.approx(1000.0 - spent, abs=0.01) and summary["cash_left"] >= 0
    assert summary["total_cost"] == pytest.approx(lines["cost"].sum(), abs=0.01)
    assert summary["expected_growth_gained"] == pytest.approx(2000 * (
        certainty_equivalent(_advice().simple_returns, lines["weight_after"].to_numpy()[:2], 0.5)
        - certainty_equivalent(_advice().simple_returns, np.array([0.5, 0.0]), 0.5)), abs=0.01)


def test_a_withdrawal_beyond_the_book_is_one_sentence():
    with pytest.raises(RebalanceError, match=r"withdrawal of \$5,000.00 is beyond the \$1,000.00"):
        rebalance(_advice(), [{"symbol": "AAA", "shares": 10}], -5000.0, FREE)


def test_settings_out_of_range_are_one_sentence():
    with pytest.raises(RebalanceError, match="tolerance must be 0 to below 1"):
        TradingTerms(5, 1, 25, 1.5, 1, False)


def test_nothing_eligible_and_nothing_held_is_all_cash():
    target = cost_aware_target(TWO_SCENARIOS, np.zeros(1), np.zeros(1, bool), 1, 1, 0.5, 0.0, 2)
    assert target.weights.tolist() == [0.0] and target.turnover == 0.0


def test_the_days_stored_scenarios_give_back_the_advice_from_cash(surface):
    projection = project_and_allocate(surface.projection, SURFACE_POLICY)
    stored = projection.scenarios.set_index("symbol")
    returns = np.column_stack([np.asarray(r) for r in stored["simple_returns"]])
    assert returns.shape == (SURFACE_POLICY.n_scenarios, len(stored)) and (stored["horizon"] == SURFACE_POLICY.horizon).all()
    target = cost_aware_target(returns, np.zeros(len(stored)), stored["eligible"].to_numpy(), SURFACE_POLICY.cap,
                               SURFACE_POLICY.max_total, SURFACE_POLICY.kelly_fraction, 0.0, 2.0)
    advised = projection.allocations.set_index("symbol").loc[stored.index, "half_kelly_weight"].to_numpy()
    np.testing.assert_allclose(target.weights, advised, atol=1e-4)
    assert projection.allocations["half_kelly_weight"].sum() > 0


def test_a_withdrawal_is_funded_by_sells_rounded_up():
    terms = TradingTerms(cost_bp=5, min_fee=1, min_trade=10, tolerance=0.02, turnover_cap=2, fractional_shares=False)
    # 10 AAA at $100 and 1 BBB at $1,000, $500 withdrawn: a $1,500 book whose weights the sells must bring within 1.
    lines, summary = rebalance(_advice(), [{"symbol": "AAA", "shares": 10}, {"symbol": "BBB", "shares": 1}], -500.0, terms)
    sold, bought = (lines.loc[lines["side"] == side, "dollars"].sum() for side in ("SELL", "BUY"))
    freed = sold - bought - lines["cost"].sum()
    assert summary["total"] == 1500.0 and freed >= 500 and summary["cash_left"] >= 0
    assert summary["cash_left"] == pytest.approx(freed - 500, abs=0.01)


def test_less_than_a_whole_share_is_no_trade_and_says_so():
    terms = TradingTerms(cost_bp=0, min_fee=0, min_trade=0, tolerance=0, turnover_cap=2, fractional_shares=False)
    # $100 of a $300 share wanted: no whole share fits the order.
    orders, cash_left = round_trades(_book(target_weight=[0.1]), 1000.0, terms)
    assert orders.loc[0, "side"] == "HOLD" and orders.loc[0, "note"] == "less than one share: no trade"
    assert cash_left == 1000.0
