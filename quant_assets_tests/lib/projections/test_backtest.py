"""Backtest statistics against empyrical, and turnover costs by hand."""

import empyrical
import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.projections.backtest import PERIOD_COLUMNS, SUMMARY_COLUMNS, performance, run_backtest


@pytest.mark.parametrize("periods_per_year", [252, 12, 52])
def test_performance_matches_empyrical(periods_per_year):
    rng = np.random.default_rng(periods_per_year)
    r = np.expm1(rng.normal(0.004, 0.03, 200))
    r[:5] = [-0.05, -0.02, 0.01, -0.04, 0.03]  # an early loss: a drawdown from the starting wealth
    stats = performance(r, periods_per_year)
    assert stats["annual_return"] == pytest.approx(
        empyrical.annual_return(r, annualization=periods_per_year), rel=1e-10)
    assert stats["annual_volatility"] == pytest.approx(
        empyrical.annual_volatility(r, annualization=periods_per_year), rel=1e-10)
    assert stats["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=periods_per_year), rel=1e-10)
    assert stats["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)
    assert stats["log_growth"] == pytest.approx(np.log(np.prod(1 + r)), rel=1e-10)
    assert stats["periods"] == 200


def test_performance_edge_cases():
    flat = performance([0.01, 0.01, 0.01], 12)
    assert flat["annual_volatility"] == 0.0 and np.isnan(flat["sharpe"]) and flat["max_drawdown"] == 0.0
    assert performance([], 12)["periods"] == 0
    with pytest.raises(ValueError, match="NaN"):
        performance([0.01, np.nan], 12)


def test_run_backtest_costs_and_drift_by_hand():
    windows = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"])
    returns = pd.DataFrame({"A": [0.10, -0.05, 0.02], "B": [0.00, 0.04, np.nan]}, index=windows)
    weights = {
        "mix": pd.DataFrame({"A": [0.5, 0.5, 1.0], "B": [0.5, 0.5, 0.0]}, index=windows),
        "cash": pd.DataFrame({"A": [0.0, 0.0, 0.0]}, index=windows),
    }
    periods, summary = run_backtest(returns, weights, periods_per_year=12, cost_bp=10)
    assert list(periods.columns) == list(PERIOD_COLUMNS) and list(summary.columns) == list(SUMMARY_COLUMNS)
    mix = periods[periods["strategy"] == "mix"].reset_index(drop=True)
    # Window 1: buy from cash (turnover 1). Window 2: A drifted to 0.55/1.05, B to 0.5/1.05.
    drift = np.array([0.55, 0.5]) / 1.05
    turnover = [1.0, np.abs(np.array([0.5, 0.5]) - drift).sum(), None]
    drift2 = np.array([0.5 * 0.95, 0.5 * 1.04]) / (1 + 0.5 * -0.05 + 0.5 * 0.04)
    turnover[2] = abs(1.0 - drift2[0]) + abs(0.0 - drift2[1])
    np.testing.assert_allclose(mix["turnover"], turnover)
    gross = np.array([0.05, -0.005, 0.02])
    expected = (1 - np.array(turnover) * 0.001) * (1 + gross) - 1
    np.testing.assert_allclose(mix["period_return"], expected)
    np.testing.assert_allclose(mix["cumulative_log_growth"], np.cumsum(np.log1p(expected)))
    row = summary.set_index("strategy").loc["mix"]
    assert row["log_growth"] == pytest.approx(np.log1p(expected).sum())
    assert row["sharpe"] == pytest.approx(empyrical.sharpe_ratio(expected, annualization=12))
    cash = periods[periods["strategy"] == "cash"]
    assert np.all(cash["period_return"] == 0) and np.all(cash["turnover"] == 0)
    free, _ = run_backtest(returns, weights, periods_per_year=12, cost_bp=0)
    np.testing.assert_allclose(free[free["strategy"] == "mix"]["period_return"], gross)


def test_run_backtest_rejects_bad_input_with_a_named_place():
    windows = pd.to_datetime(["2024-01-01", "2024-02-01"])
    returns = pd.DataFrame({"A": [0.1, np.nan]}, index=windows)
    with pytest.raises(ValueError, match="holds 'A' in window 2024-02-01"):
        run_backtest(returns, {"s": pd.DataFrame({"A": [0.5, 0.5]}, index=windows)}, periods_per_year=12)
    with pytest.raises(ValueError, match="no weights for window 2024-02-01"):
        run_backtest(returns, {"s": pd.DataFrame({"A": [0.5]}, index=windows[:1])}, periods_per_year=12)
    with pytest.raises(ValueError, match=r"symbol\(s\) \['Z'\]"):
        run_backtest(returns, {"s": pd.DataFrame({"Z": [0.5, 0.5]}, index=windows)}, periods_per_year=12)


def test_held_backtest_compounds_complete_periods_and_reports_gaps_and_the_period_in_progress():
    from quant_assets.lib.projections.backtest import held_backtest

    windows = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-05-01", "2024-06-01"])
    returns = pd.DataFrame({"A": [0.10, -0.05, 0.03, 0.50]}, index=windows)
    periods = pd.DataFrame({
        "period_start": pd.to_datetime(["2024-01-02", "2024-02-01", "2024-05-01", "2024-06-03"]),
        "period_end": pd.to_datetime(["2024-02-01", "2024-02-29", "2024-06-03", "2024-06-14"]),
        "status": ["complete", "before_gap", "complete", "in_progress"],
        "gap_days_after": [0, 61, 0, 0],
    }, index=windows)
    table, summary = held_backtest(returns, {"all_in": pd.DataFrame({"A": [1.0] * 4}, index=windows)}, periods,
                                   periods_per_year=12, cost_bp=0.0)
    row = summary.iloc[0]
    # Three periods compounded, the half-month in progress reported apart, the gap neither.
    assert row["periods"] == 3 and row["log_growth"] == pytest.approx(np.log(1.10 * 0.95 * 1.03))
    assert row["in_progress_return"] == pytest.approx(0.50) and row["gaps"] == 1 and row["gap_days"] == 61
    years = (30 + 28 + 33) / 365.25
    assert row["years_held"] == pytest.approx(years)
    assert row["annual_return"] == pytest.approx((1.10 * 0.95 * 1.03) ** (1 / years) - 1)
    assert row["max_drawdown"] == pytest.approx(empyrical.max_drawdown(np.array([0.10, -0.05, 0.03])))
    assert np.isnan(table["cumulative_log_growth"].iloc[-1])
    with pytest.raises(ValueError, match="only the last period"):
        held_backtest(returns, {"x": pd.DataFrame({"A": [1.0] * 4}, index=windows)},
                      periods.assign(status=["in_progress", "complete", "complete", "complete"]), periods_per_year=12)
