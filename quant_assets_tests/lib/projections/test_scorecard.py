"""The advice scorecard's arithmetic on hand-computed cases (the pure function, no warehouse)."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.projections.scorecard import ScorecardInputs, build_scorecard, load_scorecard_inputs, scorecard_summary
from quant_assets.lib.storage.warehouse import Warehouse

DAY, CASH_DAY = date(2022, 12, 1), date(2022, 12, 2)


def inputs(today):
    nan = float("nan")
    positions = pd.DataFrame({
        "as_of": [DAY, DAY], "symbol": ["AAPL", "BTC"], "asset_class": ["equity", "crypto"], "weight": [0.3, 0.2],
        "fwd_1w": [0.05, -0.10], "end_1w": [pd.Timestamp("2022-12-08")] * 2,
        "fwd_1m": [0.02, nan], "end_1m": [pd.Timestamp("2022-12-30"), pd.NaT],
        "fwd_3m": [nan, nan], "end_3m": [pd.NaT, pd.NaT], "fwd_1y": [nan, nan], "end_1y": [pd.NaT, pd.NaT]})
    band = {"AAPL": (-0.04, 0.01, 0.06), "BTC": (-0.08, 0.0, 0.09), "PORTFOLIO": (-0.02, 0.002, 0.03)}
    rows = [{"as_of": DAY, "symbol": s, "horizon": h, "p10": b[0], "p50": b[1], "p90": b[2]}
            for s, b in band.items() for h in ("1w", "1m", "3m", "1y")]
    rows += [{"as_of": CASH_DAY, "symbol": "PORTFOLIO", "horizon": h, "p10": 0.0, "p50": 0.0, "p90": 0.0}
             for h in ("1w", "1m", "3m", "1y")]
    return ScorecardInputs(positions, pd.DataFrame(rows), [DAY, CASH_DAY], today, {DAY: "1m", CASH_DAY: "1m"})


def row(card, as_of, symbol, horizon):
    match = card[(card["as_of"] == as_of) & (card["symbol"] == symbol) & (card["horizon"] == horizon)]
    assert len(match) == 1
    return match.iloc[0]


def test_positions_and_portfolio_against_their_bands_once_the_horizon_ended():
    card = build_scorecard(inputs(today=date(2022, 12, 10)))
    assert len(card) == 3 * 4 + 4  # two positions and the portfolio, plus the all-cash day's portfolio
    aapl, btc = row(card, DAY, "AAPL", "1w"), row(card, DAY, "BTC", "1w")
    assert aapl["realized_value"] == pytest.approx(math.exp(0.05)) and aapl["inside_band"] == True  # noqa: E712
    assert btc["realized_log_return"] == pytest.approx(-0.10) and btc["inside_band"] == False  # noqa: E712
    assert aapl["p90_value"] == pytest.approx(math.exp(0.06)) and aapl["horizon_end"] == date(2022, 12, 8)
    portfolio = row(card, DAY, "PORTFOLIO", "1w")
    simple = 0.3 * (math.exp(0.05) - 1) + 0.2 * (math.exp(-0.10) - 1)  # = -0.003638…, cash at 0%
    assert portfolio["realized_log_return"] == pytest.approx(math.log1p(simple))
    assert portfolio["weight"] == pytest.approx(0.5) and portfolio["inside_band"] == True  # noqa: E712
    # 1m: AAPL's month ended on Dec 30, after the run's day; BTC's label does not exist yet: nothing realized.
    for symbol in ("AAPL", "BTC", "PORTFOLIO"):
        assert pd.isna(row(card, DAY, symbol, "1m")["realized_value"]) and pd.isna(row(card, DAY, symbol, "1m")["inside_band"])
    cash_week = row(card, CASH_DAY, "PORTFOLIO", "1w")
    assert cash_week["realized_value"] == 1.0 and cash_week["horizon_end"] == date(2022, 12, 9)
    # A day advised only cash is its own category, not a band that held.
    assert cash_week["outcome"] == "all_cash" and pd.isna(cash_week["inside_band"])
    assert portfolio["outcome"] == "inside" and btc["outcome"] == "outside"
    assert row(card, DAY, "AAPL", "1m")["outcome"] == "pending"
    assert (card["sizing_horizon"] == "1m").all()
    assert pd.isna(row(card, CASH_DAY, "PORTFOLIO", "1m")["realized_value"])


def test_nothing_counts_before_its_horizon_ends_and_the_summary_counts_what_did():
    early = build_scorecard(inputs(today=date(2022, 12, 7)))
    assert early["inside_band"].isna().all()
    summary = scorecard_summary(build_scorecard(inputs(today=date(2023, 1, 1))))
    # 1w: AAPL inside, BTC outside; the invested portfolio inside. 1m: AAPL only (BTC unknown, so no portfolio).
    assert summary["share_inside_positions_1w"] == 0.5 and summary["share_inside_portfolio_1w"] == 1.0
    assert summary["share_inside_positions_1m"] == 1.0  # 0.02 within (-0.04, 0.06)
    # The all-cash day's 30 days ended on Jan 1, but holding cash is no test of a band.
    assert summary["share_inside_portfolio_1m"] == "no outcome yet"
    assert summary["share_inside_positions_3m"] == "no outcome yet"
    assert summary["realized_rows"] == 2 + 1 + 1 and summary["as_of_days"] == 2 and summary["all_cash_days"] == 1
    table = summary["table_summary"].set_index(["horizon", "advice"])
    assert table.loc[("1w", "portfolio"), "all_cash"] == 1 and table.loc[("1m", "portfolio"), "sizing_horizon"]
    assert np.isfinite(summary["advice_rows"])


def test_a_warehouse_without_advice_gets_one_clear_sentence(tmp_path):
    with pytest.raises(ValueError, match="needs projections.allocations, .* materialize the projections partitions first"):
        load_scorecard_inputs(Warehouse(tmp_path / "warehouse.duckdb"), date(2022, 12, 28))
