"""The decision backtest on its loaded frames alone: the tables the warehouse got, the per-window decision cache,
and a window missing from the backfill."""

import dataclasses
from datetime import date

import numpy as np
import pandas as pd

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
    assert set(result.strategies["strategy"]) == {"half_kelly", "full_kelly", "equal_weight", "sp500_buy_hold"}
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
