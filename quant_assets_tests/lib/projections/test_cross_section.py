"""Holding returns from each symbol's own prices, by hand: entry at the first close after the decision, exit at
the next decision's entry or the symbol's last close; inverse-volatility weights in each class's own calendar."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.projections.cross_section import holding_returns, inverse_volatility_weights

D = pd.Timestamp


def _prices(rows):
    return pd.DataFrame(rows, columns=["symbol", "date", "close"]).assign(date=lambda f: pd.to_datetime(f["date"]))


def test_entry_after_the_decision_and_symbols_that_start_and_end_mid_period():
    prices = _prices([
        ("A", "2024-01-02", 100.0), ("A", "2024-01-03", 101.0), ("A", "2024-01-04", 103.0), ("A", "2024-01-05", 99.0),
        ("A", "2024-01-08", 98.0), ("A", "2024-01-09", 97.0),
        # B starts trading in the first period, after its decision.
        ("B", "2024-01-04", 50.0), ("B", "2024-01-05", 55.0), ("B", "2024-01-08", 60.0), ("B", "2024-01-09", 66.0),
        # C's prices end in the second period.
        ("C", "2024-01-02", 10.0), ("C", "2024-01-03", 11.0), ("C", "2024-01-05", 12.0), ("C", "2024-01-08", 9.0),
        # D trades only after the last period ends: never entered.
        ("D", "2024-01-10", 5.0),
    ])
    periods = pd.DataFrame({"decision": [D("2024-01-02"), D("2024-01-05")],
                            "exit": [D("2024-01-05"), D("2024-01-09")],
                            "exit_rule": ["next_entry", "close_at"]},
                           index=pd.Index([date(2024, 1, 1), date(2024, 1, 5)], name="window_start"))
    returns = holding_returns(prices, periods)
    # First period: entered at the close of the 3rd (not the 2nd's, the signal's), sold at the close of the 8th
    # (the first after the next decision, when the next period buys).
    assert returns.loc[date(2024, 1, 1), "A"] == pytest.approx(98.0 / 101.0 - 1)
    assert returns.loc[date(2024, 1, 1), "B"] == pytest.approx(60.0 / 50.0 - 1)  # enters on its first close, the 4th
    assert returns.loc[date(2024, 1, 1), "C"] == pytest.approx(9.0 / 11.0 - 1)
    # Second period: from the close of the 8th to the last close at or before the 9th.
    assert returns.loc[date(2024, 1, 5), "A"] == pytest.approx(97.0 / 98.0 - 1)
    assert returns.loc[date(2024, 1, 5), "B"] == pytest.approx(66.0 / 60.0 - 1)
    assert returns.loc[date(2024, 1, 5), "C"] == 0.0  # entered at its last close, the 8th: nothing after it
    assert returns["D"].isna().all()


def test_a_symbol_whose_prices_end_before_the_next_entry_is_sold_at_its_last_close():
    prices = _prices([("E", "2024-01-02", 20.0), ("E", "2024-01-03", 22.0), ("E", "2024-01-04", 25.0)])
    periods = pd.DataFrame({"decision": [D("2024-01-02")], "exit": [D("2024-01-08")], "exit_rule": ["next_entry"]},
                           index=[date(2024, 1, 1)])
    assert holding_returns(prices, periods).iloc[0, 0] == pytest.approx(25.0 / 22.0 - 1)


def test_inverse_volatility_weights_annualize_each_class_in_its_own_days():
    rng = np.random.default_rng(5)
    days = pd.date_range("2023-01-01", periods=120)
    returns = pd.DataFrame({"EQ": rng.normal(0, 0.01, 120), "COIN": rng.normal(0, 0.01, 120),
                            "NEW": [np.nan] * 100 + list(rng.normal(0, 0.01, 20))}, index=days)
    weights = inverse_volatility_weights(returns, {"EQ": "equity", "COIN": "crypto", "NEW": "equity"},
                                         ["EQ", "COIN", "NEW"])
    eq = 1 / (returns["EQ"].std() * math.sqrt(252))
    coin = 1 / (returns["COIN"].std() * math.sqrt(365))
    assert weights["EQ"] == pytest.approx(eq / (eq + coin)) and weights["COIN"] == pytest.approx(coin / (eq + coin))
    assert weights["NEW"] == 0.0  # 20 daily returns are too few to trust its volatility
    assert sum(weights.values()) == pytest.approx(1.0)
