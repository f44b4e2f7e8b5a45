"""Outcomes read when they are known: a window fitted before its labels existed is scored and learned from
by later windows' ensembles once they exist, without being refitted."""

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.ensemble.window import ensemble_window, load_window_predictions
from quant_assets.lib.projections import decision_backtest as decisions
from quant_assets.lib.projections.decision_backtest import decision_backtest
from quant_assets.lib.projections.sizing import SizingPolicy
from quant_assets.lib.projections.sizing import decide as real_decide
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.outcomes import refresh_outcomes
from quant_assets.lib.walk_forward.plan import plan_window
from quant_assets.lib.walk_forward.training import load_panel, panel_span, run_fold, store_fold
from quant_assets_tests.support.synthetic import labels_known_on, synthetic_market

MODELS = ("ridge", "baseline")  # the ensemble adds the baseline reference itself
W1, W2, W3 = date(2021, 1, 1), date(2021, 2, 1), date(2021, 3, 1)


def write_labels(warehouse: Warehouse, labels: pd.DataFrame) -> None:
    warehouse.replace("labels.forward_returns", labels)


def fit(warehouse: Warehouse, window_start: date, window_end: date) -> None:
    """What the plan and fit assets do for each model (without MLflow): plan, fit on purged rows, store."""
    plans = plan_window(window_start, window_end, embargo_days=5, train_years=2)
    warehouse.replace("forecasts.plans", pd.DataFrame(
        [{"window_start": p.window_start, "window_end": p.window_end, "horizon": p.horizon, "train_start": p.train_start,
          "train_label_end_before": p.train_end, "embargo_days": p.embargo_days, "mode": p.mode} for p in plans]),
        where={"window_start": window_start})
    panel = load_panel(warehouse, *panel_span(plans))
    for model in MODELS:
        store_fold(warehouse, run_fold(model, plans, panel, seed=0))


@pytest.fixture
def warehouse(tmp_path):
    store = Warehouse(tmp_path / "warehouse.duckdb")
    prices, features = synthetic_market()
    store.replace("market.prices", prices)
    store.replace("features.features", features)
    store.labels_all = labels_known_on(prices, None)  # what the labels become once every horizon passed
    store.prices = prices
    return store


def test_a_window_fitted_before_its_labels_existed_is_scored_and_learned_from_later(warehouse):
    # Today is W1's last day: its 1w labels are partly known, the longer ones not at all. Fit W1 then.
    write_labels(warehouse, labels_known_on(warehouse.prices, date(2021, 1, 29)))
    fit(warehouse, W1, W2)
    fits_before = warehouse.query("SELECT * FROM forecasts.fits WHERE window_start = ? ORDER BY ALL", [W1])
    preds_before = warehouse.query("SELECT * EXCLUDE (realized, label_end) FROM forecasts.predictions "
                                   "WHERE window_start = ? ORDER BY ALL", [W1])
    known = warehouse.query("SELECT horizon, count(realized) AS n FROM forecasts.predictions GROUP BY ALL")
    assert dict(zip(known["horizon"], known["n"])) == {"1w": known["n"].max(), "1m": 0, "3m": 0, "1y": 0}
    assert set(warehouse.query("SELECT horizon FROM forecasts.scores WHERE window_start = ?", [W1])["horizon"]) == {"1w"}
    # A month later W2 is fitted and its ensemble built: it learns only from labels that ended before W2.
    write_labels(warehouse, labels_known_on(warehouse.prices, date(2021, 2, 26)))
    fit(warehouse, W2, W3)
    early = ensemble_window(warehouse, W2, models=MODELS)
    assert early["history_windows"] == [str(W1)]
    _, history = load_window_predictions(warehouse, W2, MODELS)
    assert len(history) and (history["label_end"] < pd.Timestamp(W2)).all()

    # Time passes: the labels fill in. W3's ensemble learns from W1 (and W2), which nobody refitted.
    write_labels(warehouse, warehouse.labels_all)
    fit(warehouse, W3, date(2021, 4, 1))
    later = ensemble_window(warehouse, W3, models=MODELS)
    assert later["history_windows"] == [str(W1), str(W2)]
    assert later["outcomes_refreshed"]["prediction_rows"] > 0
    _, history = load_window_predictions(warehouse, W3, MODELS)
    assert (history["label_end"] < pd.Timestamp(W3)).all()
    assert {"1w", "1m"} <= set(history.loc[history["window_start"] == pd.Timestamp(W1), "horizon"])

    # W1 is now scored for every horizon whose labels exist, from the labels, and was not refitted.
    scores = warehouse.query("SELECT * FROM forecasts.scores WHERE window_start = ? ORDER BY model, horizon", [W1])
    assert set(scores["model"]) == set(MODELS) and set(scores["horizon"]) == {h.label for h in HORIZONS}
    assert (scores["n"] > 0).all()
    stored = warehouse.query("SELECT p.realized, l.fwd_1m FROM forecasts.predictions p JOIN labels.forward_returns l "
                             "USING (symbol, date) WHERE p.window_start = ? AND p.horizon = '1m'", [W1])
    np.testing.assert_allclose(stored["realized"], stored["fwd_1m"])
    pd.testing.assert_frame_equal(warehouse.query("SELECT * FROM forecasts.fits WHERE window_start = ? ORDER BY ALL",
                                                  [W1]), fits_before)
    pd.testing.assert_frame_equal(warehouse.query("SELECT * EXCLUDE (realized, label_end) FROM forecasts.predictions "
                                                  "WHERE window_start = ? ORDER BY ALL", [W1]), preds_before)
    # W2's ensemble, written while its labels were missing, is scored as well.
    ensemble_scores = warehouse.query("SELECT * FROM forecasts.scores WHERE window_start = ? AND model = 'ensemble'", [W2])
    assert len(ensemble_scores) == len(HORIZONS) and (ensemble_scores["n"] > 0).all()


def test_refresh_is_idempotent_and_follows_revised_labels(warehouse):
    write_labels(warehouse, warehouse.labels_all)
    fit(warehouse, W1, W2)
    with warehouse.writer() as con:
        refresh_outcomes(con)  # the fit's own scores are computed the same way: nothing to change
    with warehouse.writer() as con:
        assert refresh_outcomes(con) == {"prediction_rows": 0, "ensemble_rows": 0, "rescored": 0}
    revised = warehouse.labels_all.assign(fwd_1w=warehouse.labels_all["fwd_1w"] + 0.01)
    write_labels(warehouse, revised)
    with warehouse.writer() as con:
        counts = refresh_outcomes(con)
    assert counts["prediction_rows"] == len(MODELS) * warehouse.query(
        "SELECT count(*) AS n FROM forecasts.predictions WHERE horizon = '1w' AND model = 'ridge'")["n"][0]
    assert counts["rescored"] == len(MODELS)
    stored = warehouse.query("SELECT p.realized, l.fwd_1w FROM forecasts.predictions p JOIN labels.forward_returns l "
                             "USING (symbol, date) WHERE p.horizon = '1w'")
    np.testing.assert_allclose(stored["realized"], stored["fwd_1w"])


def test_the_decision_backtest_holds_from_decision_to_decision_and_reports_a_gap(warehouse):
    write_labels(warehouse, warehouse.labels_all)
    windows = [W1, W2, W3, date(2021, 5, 1)]  # April is not backfilled: a gap
    for start in windows:
        end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        fit(warehouse, start, end)
        ensemble_window(warehouse, start, models=MODELS)
    summary = decision_backtest(warehouse, SizingPolicy(horizon="3m", n_scenarios=2000), 12.0, 10.0).summary
    periods = warehouse.query("SELECT * FROM projections.backtest WHERE strategy = 'sp500_buy_hold' ORDER BY window_start")
    assert periods["status"].tolist() == ["complete", "complete", "before_gap", "complete"]
    assert summary["gaps"] == 1 and summary["sizing_horizon"] == "3m" and summary["benchmark"] == "sp500_buy_hold"
    # Held from one decision to the next: each period ends where the next begins, except across the gap.
    assert (periods["period_end"].iloc[:2].to_numpy() == periods["period_start"].iloc[1:3].to_numpy()).all()
    assert periods["gap_days_after"].tolist() == [0, 0, 30, 0]
    closes = warehouse.prices[warehouse.prices["symbol"] == "SP500"].set_index("date")["close"].sort_index()
    first = periods.iloc[0]
    # Bought at the first close after the decision (not the decision day's, the signal's), sold at the first close
    # after the next decision (when the next period buys).
    after = lambda day: closes[pd.to_datetime(closes.index) > pd.Timestamp(day)].iloc[0]  # noqa: E731
    expected = after(first["period_end"]) / after(first["period_start"]) - 1
    assert first["period_return"] == pytest.approx((1 - 10e-4) * (1 + expected) - 1)
    table = warehouse.query("SELECT * FROM projections.backtest_summary ORDER BY strategy")
    assert set(table["strategy"]) == {"half_kelly", "full_kelly", "equal_weight", "inverse_volatility", "sp500_buy_hold"}
    assert (table["periods"] == 4).all() and table["years_held"].iloc[0] < (date(2021, 6, 1) - W1).days / 365.25


def test_the_backtest_solves_a_windows_kelly_problem_again_only_when_its_inputs_changed(warehouse, monkeypatch):
    write_labels(warehouse, warehouse.labels_all)
    for start in (W1, W2):
        fit(warehouse, start, date(start.year, start.month + 1, 1))
        ensemble_window(warehouse, start, models=MODELS)
    policy = SizingPolicy(horizon="3m", n_scenarios=2000)
    first = decision_backtest(warehouse, policy, 12.0, 10.0)
    table = warehouse.query("SELECT * FROM projections.backtest ORDER BY ALL")
    stored = warehouse.query("SELECT * FROM projections.backtest_decisions ORDER BY ALL")
    assert set(stored["window_start"].dt.date) == {W1, W2}

    solved = []
    monkeypatch.setattr(decisions, "decide", lambda *args: solved.append(args[2]) or real_decide(*args))
    again = decision_backtest(warehouse, policy, 12.0, 10.0)
    assert solved == []
    pd.testing.assert_frame_equal(warehouse.query("SELECT * FROM projections.backtest ORDER BY ALL"), table)
    pd.testing.assert_frame_equal(again.strategies, first.strategies)

    with warehouse.writer() as con:  # W2's ensemble changes: only W2 is decided again
        con.execute("UPDATE forecasts.ensemble SET mean = mean + 0.01 WHERE window_start = ?", [W2])
    decision_backtest(warehouse, policy, 12.0, 10.0)
    assert len(solved) == 1 and solved[0] >= W2
    assert set(warehouse.query("SELECT * FROM projections.backtest_decisions")["window_start"].dt.date) == {W1, W2}
    decision_backtest(warehouse, dataclasses.replace(policy, cap=0.2), 12.0, 10.0)  # a new policy: all again
    assert len(solved) == 3


def test_a_warehouse_from_before_the_sizing_columns_keeps_its_rows_and_takes_them(warehouse):
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS forecasts")
        con.execute("CREATE TABLE forecasts.ensemble (window_start DATE NOT NULL, symbol VARCHAR NOT NULL, "
                    "date DATE NOT NULL, horizon VARCHAR NOT NULL, mean DOUBLE, confidence DOUBLE)")
        con.execute("INSERT INTO forecasts.ensemble VALUES ('2020-01-01', 'SP500', '2020-01-02', '1m', 0.01, 0.6)")
    with warehouse.writer() as con:
        ensure_columns(con, "forecasts.ensemble", {"sizing_mean": "DOUBLE", "beats_reference": "BOOLEAN"})
        ensure_columns(con, "forecasts.ensemble", {"sizing_mean": "DOUBLE"})
    rows = warehouse.query("SELECT * FROM forecasts.ensemble")
    assert len(rows) == 1 and rows["mean"][0] == 0.01 and {"sizing_mean", "beats_reference"} <= set(rows.columns)
