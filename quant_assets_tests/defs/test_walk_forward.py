"""Walk-forward training and the decisions on top, as a user runs them: backfill windows through Dagster, then
the ensemble per window and the projections; read the tables, MLflow, and the Projector (macro and CLI)."""

import json
import subprocess
import sys
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.walk_forward import folds
from quant_assets.lib.walk_forward import training
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.lib.walk_forward.tracking import discard_run, find_runs
from quant_assets.lib.walk_forward.plan import WindowPlan
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import TINY_UNIVERSE, materialize, use_home

# The last three windows of the sample: the projections are made as of its last date, 2022-12-28.
WINDOWS = ["2022-10-01", "2022-11-01", "2022-12-01"]
PLANTED_WINDOW = "2022-09-01"
ALL_FITS = [*MODEL_NAMES, BASELINE]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A QUANT_HOME with market data and features, and three backfilled windows."""
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, tmp_path_factory.mktemp("wf") / "quant", QUANT_WF_START="2022-09-01",
                 QUANT_WF_END="2023-01-01", QUANT_WF_TRAIN_YEARS="3")
        data = materialize(dg.AssetSelection.groups("market", "features"))
        audit = [e for e in data.get_asset_check_evaluations() if e.check_name == "feature_lookahead_audit"]
        assert len(audit) == 1 and audit[0].passed  # the real features are point-in-time
        results = {key: materialize(dg.AssetSelection.groups("walk_forward"), partition_key=key) for key in WINDOWS}
        yield Settings(), results, mp


def test_backfill_writes_every_model_window_and_horizon(pipeline):
    settings, results, _ = pipeline
    assert all(r.success for r in results.values())
    warehouse = Warehouse(settings.warehouse_path)
    counts = warehouse.query("SELECT window_start, model, horizon, count(*) n FROM forecasts.predictions GROUP BY ALL")
    assert len(counts) == len(WINDOWS) * len(ALL_FITS) * 4
    assert set(counts["model"]) == set(ALL_FITS)
    per_window = counts.groupby("window_start")["n"].agg(["min", "max"])
    assert (per_window["min"] == per_window["max"]).all()  # every model predicts every (symbol, date)

    preds = warehouse.query("SELECT * FROM forecasts.predictions")
    assert (preds["q05"] <= preds["q25"]).all() and (preds["q25"] <= preds["q50"]).all() and (preds["q75"] <= preds["q95"]).all()
    assert preds["p_up"].between(0, 1).all() and (preds["std"] > 0).all()
    realized_1w = preds[(preds.horizon == "1w") & (preds.window_start < "2022-12-01")]["realized"]
    assert realized_1w.notna().all()  # every 1w label of October and November 2022 is known in the sample
    december = preds[preds.window_start == "2022-12-01"]
    assert december[december.date > "2022-12-21"]["realized"].isna().all()  # their week ends after the data

    scores = warehouse.query("SELECT * FROM forecasts.scores WHERE horizon = '1w'")
    assert set(scores["model"]) == set(ALL_FITS) and len(scores) == len(WINDOWS) * len(ALL_FITS)
    assert scores[["ic", "rank_ic", "crps", "pinball", "coverage_80", "brier"]].notna().all().all()


def test_fits_never_trained_on_labels_reaching_into_their_window(pipeline):
    settings, results, _ = pipeline
    fits = Warehouse(settings.warehouse_path).query(
        "SELECT f.*, p.embargo_days FROM forecasts.fits f JOIN forecasts.plans p USING (window_start, horizon)")
    assert len(fits) == len(WINDOWS) * len(ALL_FITS) * 4
    limit = fits["window_start"] - fits["embargo_days"].astype("timedelta64[D]")
    assert (fits["latest_train_label_end"] < limit).all()
    for result in results.values():
        evaluations = result.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == {"bias_audit", "training_cutoff"}
        assert len(evaluations) == 1 + len(ALL_FITS) and all(e.passed for e in evaluations)


def test_mlflow_holds_one_run_per_model_and_window(pipeline):
    settings, results, _ = pipeline
    runs = find_runs(settings.mlflow_uri, settings.mlflow_lock)
    assert len(runs) == len(WINDOWS) * len(ALL_FITS)
    assert set(zip(runs["tags.model"], runs["tags.window"])) == {(m, w) for m in ALL_FITS for w in WINDOWS}
    assert runs["metrics.crps_1w"].notna().all()
    stored = Warehouse(settings.warehouse_path).query("SELECT DISTINCT mlflow_run_id FROM forecasts.fits")
    assert set(stored["mlflow_run_id"]) == set(runs["run_id"])
    run_ids = {r.run_id for r in results.values()}
    assert set(runs["tags.dagster_run_id"]) == run_ids


def test_planted_overlap_is_caught_and_blocks_the_window(pipeline):
    settings, _, mp = pipeline

    def leaky_plan_window(window_start, window_end, **kwargs):
        honest = original(window_start, window_end, **kwargs)
        # The classic bug: purging by the row's date instead of its label's end.
        return [WindowPlan(**{**p.__dict__, "train_end": window_start}) for p in honest]

    original = folds.plan_window
    mp.setattr(folds, "plan_window", leaky_plan_window)
    try:
        result = materialize(dg.AssetSelection.groups("walk_forward"), partition_key=PLANTED_WINDOW, raise_on_error=False)
    finally:
        mp.setattr(folds, "plan_window", original)
    audit = [e for e in result.get_asset_check_evaluations() if e.check_name == "bias_audit"]
    assert len(audit) == 1 and not audit[0].passed
    violations = audit[0].metadata["violations"].value
    assert len(violations) == 4  # one per horizon, each naming the plan's bound against the embargo
    assert all(f"plan for window {PLANTED_WINDOW}" in v and f"admits labels ending before {PLANTED_WINDOW}" in v
               for v in violations), violations
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"walk_forward_plan"}
    stored = Warehouse(settings.warehouse_path).query(
        "SELECT count(*) n FROM forecasts.predictions WHERE window_start = ?", [date.fromisoformat(PLANTED_WINDOW)])
    assert stored["n"][0] == 0


def test_a_leak_past_an_honest_plan_is_caught_by_the_fits_training_cutoff(pipeline):
    settings, _, mp = pipeline
    window = date.fromisoformat(PLANTED_WINDOW)

    def leaky_training_mask(labels, plan):
        # The bug a plan cannot show: the fit's own row filter purges by the row's date, not its label's end.
        known = labels[f"fwd_{plan.horizon}"].notna() & labels[f"end_{plan.horizon}"].notna()
        return original(labels, plan) | (known & (labels["date"] < np.datetime64(plan.window_start))).to_numpy()

    original = training.training_mask
    mp.setattr(training, "training_mask", leaky_training_mask)
    try:
        result = materialize(["walk_forward_plan", f"fit_{BASELINE}"], partition_key=PLANTED_WINDOW, raise_on_error=False)
    finally:
        mp.setattr(training, "training_mask", original)
    warehouse = Warehouse(settings.warehouse_path)
    try:
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["bias_audit"].passed  # the plan itself is honest: the plan-level audit lets it through
        assert not checks["training_cutoff"].passed
        violations = checks["training_cutoff"].metadata["violations"].value
        fits = warehouse.query("SELECT f.horizon, f.latest_train_label_end, p.embargo_days FROM forecasts.fits f "
                               "JOIN forecasts.plans p USING (window_start, horizon) WHERE window_start = ? "
                               "AND model = ? ORDER BY horizon", [window, BASELINE])
        leaked = fits[fits["latest_train_label_end"] >= pd.Timestamp(window)
                      - fits["embargo_days"].astype("timedelta64[D]")]
        assert len(leaked) == 4  # every horizon really trained on labels reaching into the embargo or window
        assert sorted(violations) == sorted(
            f"{BASELINE} {r.horizon}: trained on a label ending {r.latest_train_label_end:%Y-%m-%d}, not before "
            f"{window - timedelta(days=int(r.embargo_days))} (window {window} minus embargo)" for r in leaked.itertuples())
        assert not result.success  # the check is blocking: nothing downstream may consume the leaky fit
    finally:
        # The leaky fit must not reach the ensembles of the later windows that the next test builds.
        runs = warehouse.query("SELECT DISTINCT mlflow_run_id FROM forecasts.fits WHERE window_start = ?", [window])
        with warehouse.writer() as con:
            for table in ("forecasts.predictions", "forecasts.fits", "forecasts.scores", "forecasts.plans"):
                con.execute(f"DELETE FROM {table} WHERE window_start = ?", [window])
        for run_id in runs["mlflow_run_id"]:
            discard_run(tracking_uri=settings.mlflow_uri, lock_path=settings.mlflow_lock, run_id=run_id)


def test_ensemble_projections_and_projector_from_the_backfilled_windows(pipeline):
    settings, _, _ = pipeline
    for key in WINDOWS:  # in window order, as the README says: each ensemble learns from earlier windows
        ensemble = materialize(dg.AssetSelection.groups("ensemble"), partition_key=key)
        assert ensemble.success
    decisions = materialize(["projections", "allocations"], partition_key="2022-12-28")  # the sample's last day
    judged = materialize(["decision_backtest", "advice_scorecard"])
    assert decisions.success and judged.success
    # The backtest's statistics reach the asset's metadata, with the goal stated met or not met.
    facts = judged.asset_materializations_for_node("decision_backtest")[0].metadata
    assert facts["goal_sharpe_and_drawdown"].value in ("met", "not met") and facts["trials"].value == 5
    assert "psr_vs_equal_weight" in facts["table_summary"].value and "deflated_sharpe" in facts["table_summary"].value
    warehouse = Warehouse(settings.warehouse_path)

    rows = warehouse.query("SELECT window_start, count(*) n FROM forecasts.ensemble GROUP BY ALL ORDER BY 1")
    predicted = warehouse.query("SELECT window_start, count(*) n FROM forecasts.predictions WHERE model = 'ridge' "
                                "GROUP BY ALL ORDER BY 1")
    assert rows["n"].tolist() == predicted["n"].tolist()
    ensemble = warehouse.query("SELECT * FROM forecasts.ensemble")
    assert ensemble["confidence"].between(0, 1).all()
    assert np.all(np.diff(ensemble[["q05", "q10", "q25", "q50", "q75", "q90", "q95"]].to_numpy(), axis=1) >= 0)
    scores = warehouse.query("SELECT * FROM forecasts.scores WHERE model = 'ensemble' AND horizon = '1w'")
    assert len(scores) == len(WINDOWS) and scores["coverage_80"].between(0, 1).all()

    allocations = warehouse.query("SELECT * FROM projections.allocations")
    assert allocations["as_of"].nunique() == 1 and str(allocations["as_of"][0].date()) == "2022-12-28"
    # Full and fractional Kelly (the CRRA investor, not half the capped answer) under the same cap and budget.
    weights = allocations[["kelly_weight", "half_kelly_weight"]]
    assert (weights.sum() <= 1.0 + 1e-9).all() and (weights <= 0.25 + 1e-9).all().all() and (weights >= 0).all().all()
    bands = warehouse.query("SELECT * FROM projections.bands")
    assert set(bands["horizon"]) == {"1w", "1m", "3m", "1y"} and "PORTFOLIO" in set(bands["symbol"])
    assert ((bands["p10"] <= bands["p25"]) & (bands["p25"] <= bands["p50"]) & (bands["p50"] <= bands["p75"])
            & (bands["p75"] <= bands["p90"])).all()
    assert bands["prob_loss"].between(0, 1).all()
    metadata = decisions.asset_materializations_for_node("projections_and_allocations")[0].metadata
    assert "data:image/png;base64," in metadata["fan_chart"].value

    backtest = warehouse.query("SELECT * FROM projections.backtest_summary ORDER BY strategy")
    assert backtest["strategy"].tolist() == ["equal_weight", "full_kelly", "half_kelly", "inverse_volatility",
                                             "sp500_buy_hold"]
    # December 2022 is still in progress on the data's last day: reported apart, not compounded.
    assert (backtest["periods"] == len(WINDOWS) - 1).all() and backtest["max_drawdown"].le(0).all()
    assert backtest["in_progress_return"].notna().all()
    # October 2022 opens on a Saturday with only BTC trading: the decision waits for the equities' first
    # session (Monday the 3rd), and equal weight buys every symbol at the next close (Tuesday the 4th) and holds
    # it until November's decision (Tuesday the 1st) is entered at the close after it (Wednesday the 2nd), net
    # of 10 bp on the purchase.
    held = warehouse.query("""SELECT symbol, arg_max(close, date) / arg_min(close, date) - 1 AS r FROM market.prices
                              WHERE date > DATE '2022-10-03' AND date <= DATE '2022-11-02' GROUP BY symbol""")
    assert len(held) == len(TINY_UNIVERSE.split(","))
    equal = warehouse.query("SELECT * FROM projections.backtest WHERE strategy = 'equal_weight' ORDER BY window_start")
    assert equal["period_return"][0] == pytest.approx((1 - 0.001) * (1 + held["r"].mean()) - 1)

    macro = warehouse.query("SELECT * FROM projector(10000)")
    cli = subprocess.run([sys.executable, "-m", "quant_assets.cli", "project", "10000", "--json"],
                         capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    records = json.loads(cli.stdout)
    assert [r["symbol"] for r in records] == macro["symbol"].tolist()
    np.testing.assert_allclose([r["dollars"] for r in records], macro["dollars"])
    positions = macro[~macro["symbol"].isin(["CASH", "TOTAL"])]
    assert positions["weight"].sum() <= 1.0 and macro.iloc[-1]["dollars"] == 10000
    for h in ("1w", "1m", "3m", "1y"):
        assert (macro[f"p10_{h}"] <= macro[f"p50_{h}"]).all() and (macro[f"p50_{h}"] <= macro[f"p90_{h}"]).all()


def test_a_window_ensemble_depends_on_the_fits_of_that_and_every_earlier_window(quant_home):
    from quant_assets.definitions import build_definitions

    ensemble = build_definitions().get_assets_def("meta_ensemble")
    # The labels too (the ensemble reads realized outcomes from them when it runs, never frozen at fit time),
    # and the days' predictions of the window made with its stored models.
    assert ensemble.dependency_keys == {dg.AssetKey(f"fit_{name}") for name in MODEL_NAMES} | {
        dg.AssetKey(["labels", "forward_returns"]), dg.AssetKey("daily_predictions")}
    partitions = ensemble.partitions_def
    for name in MODEL_NAMES:
        mapping = ensemble.get_partition_mapping(dg.AssetKey(f"fit_{name}"))
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            partitions.empty_subset().with_partition_keys(["2022-03-01"]), partitions, partitions,
        ).partitions_subset.get_partition_keys()
        assert list(upstream) == [k for k in partitions.get_partition_keys() if k <= "2022-03-01"]
