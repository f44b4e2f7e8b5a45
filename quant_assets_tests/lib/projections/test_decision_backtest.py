"""The decision backtest on its loaded frames alone: the tables the warehouse got, the per-window decision cache,
and a window missing from the backfill."""

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.projections import decision_backtest as backtests
from quant_assets.lib.projections.decision_backtest import run_decision_backtest
from quant_assets.lib.projections.sizing import decide
from quant_assets.render.charts import growth_chart_png
from quant_assets_tests.lib.projections.conftest import SURFACE_POLICY

KEYS = ["strategy", "window_start"]


def run(inputs):
    return run_decision_backtest(inputs, SURFACE_POLICY, 12.0, 10.0)


def test_the_backtest_runs_on_its_loaded_frames_and_gives_the_tables_the_warehouse_got(surface):
    result = run(surface.backtest)
    stored = surface.tables["backtest"].assign(window_start=lambda f: f["window_start"].dt.date).sort_values(KEYS)
    periods = result.periods.sort_values(KEYS)
    assert periods[KEYS].values.tolist() == stored[KEYS].values.tolist()
    for column in ("period_return", "log_growth", "turnover", "cumulative_log_growth"):
        np.testing.assert_array_equal(periods[column], stored[column])
    assert result.summary["windows"] == 6 and result.summary["in_progress"] == ["2022-12-01"]
    assert result.summary["benchmark"] == "sp500_buy_hold" and result.summary["table_summary"] is result.strategies
    assert set(result.strategies["strategy"]) == {"half_kelly", "full_kelly", "equal_weight", "inverse_volatility",
                                                  "sp500_buy_hold"}
    assert growth_chart_png(result.periods)[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_a_window_whose_inputs_changed_is_decided_again(surface, monkeypatch):
    inputs = surface.backtest
    solved = []
    monkeypatch.setattr(backtests, "decide", lambda *args: solved.append(args[2]) or decide(*args))
    cold = run(dataclasses.replace(inputs, stored=inputs.stored.iloc[:0]))
    assert len(solved) == len(inputs.windows)
    warm = run(dataclasses.replace(inputs, stored=cold.decisions))
    assert len(solved) == len(inputs.windows)
    pd.testing.assert_frame_equal(warm.periods, cold.periods)
    pd.testing.assert_frame_equal(warm.decisions, cold.decisions)

    august = date(2022, 8, 1)
    marginals = {**inputs.marginals, august: inputs.marginals[august].assign(mean=lambda f: f["mean"] + 0.01)}
    changed = run(dataclasses.replace(inputs, stored=cold.decisions, marginals=marginals))
    first = inputs.windows.set_index("window_start").loc[pd.Timestamp(august), "first"].date()
    assert solved[len(inputs.windows):] == [first]
    others = changed.decisions["window_start"] != august
    pd.testing.assert_frame_equal(changed.decisions[others], cold.decisions[others])
    assert set(changed.decisions["inputs"][~others]).isdisjoint(cold.decisions["inputs"])


def test_a_window_missing_from_the_backfill_is_a_gap_reported_apart(surface):
    windows = surface.backtest.windows
    result = run(dataclasses.replace(surface.backtest, windows=windows[windows["window_start"] != "2022-09-01"]))
    held = result.periods[result.periods["strategy"] == "half_kelly"]
    assert held["status"].tolist() == ["complete", "before_gap", "complete", "complete", "in_progress"]
    assert held["gap_days_after"].tolist() == [0, 30, 0, 0, 0]
    assert held["period_end"].iloc[1] == date(2022, 8, 31) and result.summary["gaps"] == 1


def _close(prices, symbol, day, after):
    """A symbol's first close after ``day`` (``after``) or its last close at or before it."""
    rows = prices[prices["symbol"] == symbol].sort_values("date")
    dates = pd.to_datetime(rows["date"])
    chosen = rows[dates > pd.Timestamp(day)].iloc[0] if after else rows[dates <= pd.Timestamp(day)].iloc[-1]
    return float(chosen["close"])


def test_symbols_that_start_and_end_mid_period_enter_and_leave_with_their_prices(surface):
    """AAPL starts trading on 2022-08-10 and JNJ stops after 2022-09-15: equal weight's period returns (no costs)
    are the mean of each member's return from its first close after the decision, JNJ's to its last close."""
    inputs = surface.backtest
    dates = pd.to_datetime(inputs.prices["date"])
    late_start = (inputs.prices["symbol"] == "AAPL") & (dates < "2022-08-10")
    ended = (inputs.prices["symbol"] == "JNJ") & (dates > "2022-09-15")
    prices = inputs.prices[~late_start & ~ended]
    # The ensemble knows only what traded: no AAPL rows before its first price, no JNJ rows after its last.
    marginals = {w: m[~((m["symbol"] == "AAPL") & (m["date"] < "2022-08-10"))
                      & ~((m["symbol"] == "JNJ") & (m["date"] > "2022-09-15"))] for w, m in inputs.marginals.items()}
    ragged = dataclasses.replace(inputs, prices=prices, marginals=marginals, stored=inputs.stored.iloc[:0])
    result = run_decision_backtest(ragged, SURFACE_POLICY, 12.0, 0.0)
    equal = result.periods[result.periods["strategy"] == "equal_weight"].set_index("window_start")

    def held(window, next_decision, members):
        first = inputs.windows.set_index("window_start").loc[pd.Timestamp(window), "first"]
        moves = []
        for symbol in members:
            entry = _close(prices, symbol, first, after=True)
            last = pd.to_datetime(prices.loc[prices["symbol"] == symbol, "date"]).max()
            exit_ = _close(prices, symbol, next_decision, after=True) if last > pd.Timestamp(next_decision) \
                else _close(prices, symbol, last, after=False)
            moves.append(exit_ / entry - 1.0)
        return float(np.mean(moves))

    # July: every symbol but AAPL, entered at the close of 2022-07-05 (the first after the 1st), not the 1st's.
    assert equal.loc[date(2022, 7, 1), "period_return"] == pytest.approx(
        held(date(2022, 7, 1), date(2022, 8, 1), ["BTC", "JNJ", "MSFT", "SP500"]), abs=1e-12)
    # September: AAPL has joined; JNJ is sold at its last close on the 15th and the money is cash after it.
    assert equal.loc[date(2022, 9, 1), "period_return"] == pytest.approx(
        held(date(2022, 9, 1), date(2022, 10, 3), ["AAPL", "BTC", "JNJ", "MSFT", "SP500"]), abs=1e-12)
    # October: JNJ has left the cross-section.
    assert equal.loc[date(2022, 10, 1), "period_return"] == pytest.approx(
        held(date(2022, 10, 1), date(2022, 11, 1), ["AAPL", "BTC", "MSFT", "SP500"]), abs=1e-12)
    assert result.summary["unfilled_weight"] == "none"
    for strategy, rows in result.periods.groupby("strategy"):
        assert rows["period_return"].notna().all(), strategy


def test_the_summary_carries_the_statistics_and_the_settings_tried(surface):
    first = run(dataclasses.replace(surface.backtest, trials=surface.backtest.trials.iloc[:0]))
    summary = first.strategies.set_index("strategy")
    done = first.periods[first.periods["status"] != "in_progress"]
    for strategy, rows in done.groupby("strategy"):
        assert summary.loc[strategy, "costs_paid"] == pytest.approx((rows["turnover"] * 10.0 / 1e4).sum())
        assert summary.loc[strategy, "mean_invested"] == pytest.approx(rows["invested"].mean())
    assert summary.loc["equal_weight", "psr_vs_equal_weight"] == pytest.approx(0.5)
    assert (summary["trials"] == 5).all() and first.summary["trials"] == 5
    assert first.summary["goal_sharpe_and_drawdown"] in ("met", "not met")
    # Another Kelly fraction is another setting tried: two more trials; the benchmarks are the same ones.
    again = run_decision_backtest(dataclasses.replace(surface.backtest, trials=first.trials),
                                  dataclasses.replace(SURFACE_POLICY, kelly_fraction=0.25), 12.0, 10.0)
    assert again.summary["trials"] == 7 and len(again.trials) == 7
