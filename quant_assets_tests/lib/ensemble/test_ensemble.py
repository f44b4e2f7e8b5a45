"""Meta-ensemble: stacking weights, quantile averaging, conformal recalibration, calibrated confidence."""

import functools
import json

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.ensemble.build import build_class_ensembles, build_ensemble
from quant_assets.lib.ensemble.confidence import CONFIDENCE_COLUMNS
from quant_assets.lib.ensemble.history import effective_rows
from quant_assets.lib.ensemble.recalibration import apply_recalibration, conformal_level, fit_recalibration
from quant_assets.lib.ensemble.sizing_prior import forecast_skill, sizing_prior
from quant_assets.lib.ensemble.stacking import combine, stacking_weights
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS, QUANTILE_LEVELS, gaussian_distribution
from quant_assets.lib.walk_forward.scoring import coverage

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def synthetic_window(rng, start, n_dates, horizon="1w", models=("good", "climatology", "biased")):
    """Predictions of three models for one window: y = mu + eps; 'good' knows mu, the others do not."""
    dates = pd.bdate_range(start, periods=n_dates)
    keys = pd.MultiIndex.from_product([SYMBOLS, dates], names=["symbol", "date"]).to_frame(index=False)
    mu = rng.normal(0.0, 0.7, len(keys))
    y = mu + rng.normal(0.0, 1.0, len(keys))
    laws = {
        "good": (mu, np.ones_like(mu)),
        "climatology": (np.zeros_like(mu), np.full_like(mu, np.sqrt(1.49))),
        "biased": (0.6 - 0.5 * mu, np.full_like(mu, 0.6)),
        "overconfident": (mu, np.full_like(mu, 0.5)),
        "underconfident": (mu, np.full_like(mu, 2.0)),
    }
    frames = []
    for model in models:
        dist = gaussian_distribution(*laws[model])
        frames.append(pd.concat([keys, dist], axis=1).assign(model=model))
    out = pd.concat(frames, ignore_index=True)
    realized = dict(zip(zip(keys["symbol"], keys["date"]), y))
    out["realized"] = [realized[k] for k in zip(out["symbol"], out["date"])]
    out["horizon"] = horizon
    out["window_start"] = dates[0]
    out["label_end"] = out["date"] + pd.Timedelta(days=7)
    return out


def history_windows(seed, n_windows=3, n_dates=150, **kwargs):
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2020-01-01", periods=n_windows, freq="365D")
    return pd.concat([synthetic_window(rng, s, n_dates, **kwargs) for s in starts], ignore_index=True)


def test_stacking_weights_favour_the_better_model_and_shrink_with_little_history():
    history = history_windows(0)
    weights = stacking_weights(history, ["good", "climatology", "biased"])["1w"]
    assert set(weights) == {"good", "climatology", "biased"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["good"] > 0.7
    assert weights["good"] > weights["climatology"] > weights["biased"] - 1e-9
    # Less history: the same signal, but pulled harder toward equal weights.
    few = stacking_weights(history_windows(0, n_windows=1, n_dates=40), ["good", "climatology", "biased"])["1w"]
    assert 1 / 3 < few["good"] < weights["good"]
    # Below the minimum effective rows: exactly equal weights.
    tiny = stacking_weights(history_windows(0, n_windows=1, n_dates=10), ["good", "climatology", "biased"])["1w"]
    assert tiny == pytest.approx({"good": 1 / 3, "climatology": 1 / 3, "biased": 1 / 3})


def test_stacking_ignores_rows_whose_labels_are_not_yet_realized():
    history = history_windows(1)
    as_of = history["label_end"].max() + pd.Timedelta(days=1)
    clean = stacking_weights(history, ["good", "climatology", "biased"], as_of=as_of)["1w"]
    # A later window in which 'biased' is perfect: its labels end on/after as_of, so it must not count.
    leak = synthetic_window(np.random.default_rng(2), as_of - pd.Timedelta(days=3), 200)
    perfect = leak["model"] == "biased"
    leak.loc[perfect, list(QUANTILE_COLUMNS)] = leak.loc[perfect, ["realized"] * 7].to_numpy()
    poisoned = pd.concat([history, leak], ignore_index=True)
    assert stacking_weights(poisoned, ["good", "climatology", "biased"], as_of=as_of)["1w"] == pytest.approx(clean)
    # Without as_of the leaked window does count: the check above is not vacuous.
    assert stacking_weights(poisoned, ["good", "climatology", "biased"])["1w"]["biased"] > clean["biased"] + 0.1
    with pytest.raises(ValueError, match=r"history frame lacks column\(s\) \['label_end'\]"):
        stacking_weights(history.drop(columns="label_end"), ["good"], as_of=as_of)


def prediction_row(model, symbol, mean, std, horizon="1m"):
    dist = gaussian_distribution(np.array([mean]), np.array([std])).iloc[0].to_dict()
    return {"model": model, "symbol": symbol, "date": pd.Timestamp("2024-01-02"), "horizon": horizon, **dist}


def test_combine_averages_quantiles_and_mixes_moments():
    preds = pd.DataFrame([prediction_row("a", "A", 0.1, 0.2), prediction_row("b", "A", -0.1, 0.1),
                          prediction_row("a", "B", 0.0, 0.3)])
    a, b, a_only = (preds.iloc[i] for i in range(3))
    out = combine(preds, {"1m": {"a": 0.25, "b": 0.75}}).set_index("symbol")
    row = out.loc["A"]
    expected_q = 0.25 * a[list(QUANTILE_COLUMNS)].to_numpy(float) + 0.75 * b[list(QUANTILE_COLUMNS)].to_numpy(float)
    np.testing.assert_allclose(row[list(QUANTILE_COLUMNS)].to_numpy(dtype=float), expected_q)
    assert row["mean"] == pytest.approx(0.25 * 0.1 + 0.75 * -0.1)
    # Mixture variance: E[var] + var[E].
    assert row["std"] ** 2 == pytest.approx(0.25 * 0.04 + 0.75 * 0.01 + 0.25 * 0.75 * 0.2**2)
    assert row["p_up"] == pytest.approx(0.25 * a["p_up"] + 0.75 * b["p_up"])
    # Symbol B has only model 'a': its weight is renormalized to 1.
    np.testing.assert_allclose(out.loc["B", list(DISTRIBUTION_COLUMNS)].to_numpy(dtype=float),
                               a_only[list(DISTRIBUTION_COLUMNS)].to_numpy(dtype=float))
    assert out.loc["B", "n_models"] == 1
    with pytest.raises(ValueError, match="no ensemble weights for horizon '1m'"):
        combine(preds, {"1w": {"a": 1.0}})


def test_recalibration_moves_an_overconfident_forecast_to_nominal_coverage_on_held_out_data():
    frame = history_windows(3, n_windows=2, n_dates=600, models=("overconfident",)).drop(columns="model")
    fit, held_out = frame[frame["window_start"] == frame["window_start"].min()], frame[
        frame["window_start"] == frame["window_start"].max()]
    y = held_out["realized"].to_numpy()
    before = coverage(y, held_out["q10"], held_out["q90"])
    assert before < 0.55
    recal = fit_recalibration(fit)
    assert recal.adjustments["1w"]["q90"] > 0 > recal.adjustments["1w"]["q10"]
    adjusted = apply_recalibration(held_out, recal)
    assert abs(coverage(y, adjusted["q10"], adjusted["q90"]) - 0.80) < 0.035
    for column, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS):
        assert np.mean(y <= adjusted[column].to_numpy()) == pytest.approx(level, abs=0.035)
    q = adjusted[list(QUANTILE_COLUMNS)].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)
    # The moments follow the widened quantiles: std roughly doubles, the mean stays centred.
    ratio = adjusted["std"].to_numpy() / held_out["std"].to_numpy()
    assert 1.7 < np.median(ratio) < 2.2
    np.testing.assert_allclose(adjusted["mean"], held_out["mean"], atol=0.1)


def test_short_history_widens_toward_nominal_coverage_not_back_to_the_raw_width():
    # 16 effective rows (80 weekly labels of 4 independent symbols): the conformal level is the finite-sample
    # one for 16 outcomes, so the overconfident band is widened at least to nominal on fresh data.
    short = history_windows(11, n_windows=1, n_dates=20, models=("overconfident",))
    assert effective_rows(short["date"], short["realized"], "1w") < 20
    held_out = history_windows(12, n_windows=1, n_dates=2000, models=("overconfident",))
    y = held_out["realized"].to_numpy()
    assert coverage(y, held_out["q10"], held_out["q90"]) < 0.55
    adjusted = apply_recalibration(held_out, fit_recalibration(short))
    assert coverage(y, adjusted["q10"], adjusted["q90"]) > 0.78
    assert conformal_level(0.8, 16) == pytest.approx(14 / 16) and conformal_level(0.9, 5) == 1.0
    assert conformal_level(0.8, 1e6) == pytest.approx(0.8, abs=1e-5)


def test_recalibration_falls_back_with_short_history_and_keeps_crossing_shifts_monotone():
    short = history_windows(4, n_windows=1, n_dates=10, models=("overconfident",))
    recal = fit_recalibration(short)
    assert recal.adjustments == {} and "1w" in recal.fallback
    pd.testing.assert_frame_equal(apply_recalibration(short, recal), short)
    frame = history_windows(5, n_windows=1, n_dates=50, models=("overconfident",))
    recal.adjustments["1w"] = {c: s for c, s in zip(QUANTILE_COLUMNS, [0.0, 3.0, 0.0, 0.0, 0.0, -3.0, 0.0])}
    q = apply_recalibration(frame, recal)[list(QUANTILE_COLUMNS)].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)


def test_recalibration_per_asset_class_fixes_a_too_narrow_and_a_too_wide_class_that_pooling_cannot():
    narrow = history_windows(6, n_windows=2, n_dates=600, models=("overconfident",))
    wide = history_windows(7, n_windows=2, n_dates=600, models=("underconfident",))
    frame = pd.concat([narrow[narrow["symbol"].isin(["AAA", "BBB"])].assign(segment="equity"),
                       wide[wide["symbol"].isin(["CCC", "DDD"])].assign(segment="crypto")],
                      ignore_index=True).drop(columns="model")
    first = frame["window_start"] == frame["window_start"].min()
    fit, held_out = frame[first], frame[~first]
    pooled = apply_recalibration(held_out, fit_recalibration(fit.drop(columns="segment")))
    recal = fit_recalibration(fit)
    assert set(recal.segments["1w"]) == {"equity", "crypto"}
    per_class = apply_recalibration(held_out, recal)

    def class_coverage(adjusted, segment):
        rows = (held_out["segment"] == segment).to_numpy()
        return coverage(held_out["realized"].to_numpy()[rows], adjusted["q10"].to_numpy()[rows],
                        adjusted["q90"].to_numpy()[rows])

    assert class_coverage(pooled, "equity") < 0.70 and class_coverage(pooled, "crypto") > 0.90
    for name in ("equity", "crypto"):
        # Within a few points of 80%: what remains is the shrinkage toward no adjustment (240 effective rows).
        error = abs(class_coverage(per_class, name) - 0.80)
        assert error < 0.08 and error < 0.4 * abs(class_coverage(pooled, name) - 0.80)
    # A class without enough history of its own takes the pooled shifts.
    sparse = fit[(fit["segment"] == "equity") | (fit["date"] < fit["date"].min() + pd.Timedelta(days=20))]
    assert set(fit_recalibration(sparse).segments["1w"]) == {"equity"}


def test_build_ensemble_end_to_end_and_its_fallbacks():
    history = pd.concat([history_windows(8, n_windows=3, n_dates=150),
                         history_windows(10, n_windows=3, n_dates=150, horizon="1m")], ignore_index=True)
    rng = np.random.default_rng(9)
    as_of = pd.Timestamp("2024-01-01")
    current = pd.concat([synthetic_window(rng, as_of, 20), synthetic_window(rng, as_of, 20, horizon="1m")])
    frame, info = build_ensemble(current, history, as_of)
    assert len(frame) == len(SYMBOLS) * 20 * 2
    json.dumps(info)  # goes into Dagster metadata as is
    assert list(info["horizons"]) == ["1w", "1m"]
    assert list(frame.columns) == ["window_start", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS,
                                   *CONFIDENCE_COLUMNS, "sizing_mean", "mean_uncertainty", "sizing_prior", "beats_reference",
                                   "realized", "label_end"]
    assert np.all(np.diff(frame[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0)
    assert frame["confidence"].between(0, 1).all()
    h = info["horizons"]["1w"]
    assert h["weights"]["good"] == max(h["weights"].values())
    assert h["crps_stacked"] < h["crps_equal_weights"]
    assert h["history_rows"] == len(history) // 6
    # Here p_up knows something (the good model knows the mean): its calibration beats the base rate out of fold,
    # and the confidence is the calibrated probability of a gain.
    evaluation = h["confidence_evaluation"]
    assert h["confidence_source"] == "calibrated" and evaluation["brier_calibrated"] < evaluation["brier_base_rate"]
    assert evaluation["auc_p_up"] > 0.6
    assert (frame["confidence_source"] == "calibrated").all()
    np.testing.assert_array_equal(frame["confidence"], frame["prob_gain"])
    # Independent symbols: the design effect stays near 1 (sampling noise in the estimated correlation).
    assert 0.85 < info["horizons"]["1m"]["history_effective_rows"] / (len(history) / 6 / 21) <= 1.0
    assert info["fallbacks"] == []
    again, _ = build_ensemble(current, history, as_of)
    pd.testing.assert_frame_equal(frame, again)
    # Rows read back from the warehouse come in any order: the ensemble must not depend on it.
    shuffled, _ = build_ensemble(current.sample(frac=1, random_state=1), history.sample(frac=1, random_state=2), as_of)
    pd.testing.assert_frame_equal(frame, shuffled)

    cold, cold_info = build_ensemble(current, None, as_of)
    equal = {m: 1 / 3 for m in ("good", "climatology", "biased")}
    assert cold_info["horizons"]["1w"]["weights"] == pytest.approx(equal)
    assert len(cold_info["fallbacks"]) == 6 and sum(f.startswith("1w:") for f in cold_info["fallbacks"]) == 3
    # Without history nothing is measured: what is shown is a base rate (0.5 without a reference), labelled so.
    assert (cold["confidence_source"] == "base_rate").all() and (cold["confidence"] == 0.5).all()
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['p_up'\]"):
        build_ensemble(current.drop(columns="p_up"), history, as_of)


def test_effective_rows_discount_overlapping_labels_and_a_common_market_move():
    rng = np.random.default_rng(5)
    dates = np.repeat(pd.bdate_range("2021-01-01", periods=200), 20)
    independent = rng.normal(size=dates.size)
    # The estimated correlation is noisy (sd about 0.005 here, times m - 1 = 19 in the design effect).
    assert effective_rows(dates, independent, "1w") == pytest.approx(dates.size / 5, rel=0.2)
    # Every symbol has the date's outcome: 200 dates are 200 observations, not 4000.
    common = np.repeat(rng.normal(size=200), 20)
    assert effective_rows(dates, common, "1w") == pytest.approx(200 / 5)
    # Half the variance common: ICC 0.5, design effect 1 + 19 * 0.5.
    half = np.sqrt(0.5) * common + np.sqrt(0.5) * independent
    assert effective_rows(dates, half, "1m") == pytest.approx(dates.size / 21 / 10.5, rel=0.2)
    assert effective_rows([], [], "1w") == 0.0


def with_reference(frame, rng):
    """Add a 'baseline' member (climatology, the random walk's analogue) and a 'broken' member (10x too wide)."""
    keys = frame[frame["model"] == frame["model"].iloc[0]].drop(columns=[*DISTRIBUTION_COLUMNS, "model"])
    n = len(keys)
    ref = pd.concat([keys.reset_index(drop=True), gaussian_distribution(np.zeros(n), np.full(n, np.sqrt(1.49)))], axis=1)
    broken = pd.concat([keys.reset_index(drop=True), gaussian_distribution(rng.normal(size=n), np.full(n, 12.0))], axis=1)
    return pd.concat([frame, ref.assign(model="baseline"), broken.assign(model="broken")], ignore_index=True)


def test_the_reference_is_the_cold_start_implausible_members_are_dropped_and_a_losing_horizon_does_not_size():
    rng = np.random.default_rng(21)
    as_of = pd.Timestamp("2024-01-01")
    current = with_reference(synthetic_window(rng, as_of, 20, models=("good", "biased")), rng)
    cold, info = build_ensemble(current, None, as_of, reference="baseline")
    h = info["horizons"]["1w"]
    assert h["weights"]["baseline"] == 1.0 and set(h["dropped_implausible"]) == {"broken"}
    assert any("broken" in f for f in info["fallbacks"]) and any("the reference alone" in f for f in info["fallbacks"])
    ref = current[current["model"] == "baseline"].set_index(["symbol", "date"])
    cold = cold.set_index(["symbol", "date"])
    np.testing.assert_allclose(cold["q50"], ref.loc[cold.index, "q50"], atol=1e-12)
    np.testing.assert_allclose(cold["sizing_mean"], ref.loc[cold.index, "mean"])
    assert not cold["beats_reference"].any()
    # The reference's drift is as uncertain as its estimation span says: a trailing year by default, the
    # training span when given (ten years: sqrt(10) times more precise).
    np.testing.assert_allclose(cold["mean_uncertainty"], ref.loc[cold.index, "std"] * np.sqrt(5 / 252))
    decade, _ = build_ensemble(current, None, as_of, reference="baseline", reference_drift_days={"1w": 2520})
    np.testing.assert_allclose(decade["mean_uncertainty"], cold["mean_uncertainty"].to_numpy() / np.sqrt(10))

    # With history in which 'good' beats the reference, the ensemble beats it out of fold and drives sizing.
    history = history_windows(8, n_windows=3, n_dates=150, models=("good", "biased"))
    history = pd.concat([with_reference(w, rng) for _, w in history.groupby("window_start")], ignore_index=True)
    warm, info = build_ensemble(current, history, as_of, reference="baseline")
    h = info["horizons"]["1w"]
    assert h["out_of_fold"]["beats"] and h["out_of_fold"]["crps_ensemble"] < h["out_of_fold"]["crps_reference"]
    assert h["weights"]["good"] > 0.5 and h["weights"]["broken"] == 0.0
    assert warm["beats_reference"].all() and np.allclose(warm["sizing_mean"], warm["mean"])
    # With history in which only a biased model competes, the stack loses out of fold: the ensemble is the
    # reference itself, not a mix that is worse than it.
    biased = with_reference(synthetic_window(rng, as_of, 20, models=("biased",)), rng)
    losing = history_windows(9, n_windows=3, n_dates=150, models=("biased",))
    losing = pd.concat([with_reference(w, rng) for _, w in losing.groupby("window_start")], ignore_index=True)
    alone, info = build_ensemble(biased, losing, as_of, reference="baseline")
    assert not info["horizons"]["1w"]["out_of_fold"]["beats"] and info["horizons"]["1w"]["weights"]["baseline"] == 1.0
    np.testing.assert_allclose(alone["sizing_mean"], alone["sizing_prior"])
    assert any("the reference alone" in f for f in info["fallbacks"])
    ref = biased[biased["model"] == "baseline"].set_index(["symbol", "date"])
    alone = alone.set_index(["symbol", "date"])
    np.testing.assert_allclose(alone[list(QUANTILE_COLUMNS)], ref.loc[alone.index, list(QUANTILE_COLUMNS)], atol=1e-12)
    # Spreads never shrink with the horizon.
    two = pd.concat([current, current.assign(horizon="1m", q10=current["q10"] / 4, q90=current["q90"] / 4)])
    frame, _ = build_ensemble(two, None, as_of, reference="baseline")
    spread = frame.assign(s=frame["q90"] - frame["q10"]).pivot_table(index=["symbol", "date"], columns="horizon", values="s")
    assert (spread["1m"] >= spread["1w"] - 1e-12).all()


def test_a_horizon_without_history_borrows_the_shorter_horizons_widening_never_a_narrowing():
    narrow = history_windows(13, n_windows=2, n_dates=300, models=("overconfident",))
    recal = fit_recalibration(narrow, horizons=["1w", "1m", "1y"])
    assert recal.borrowed == {"1m": "1w", "1y": "1w"}  # from a horizon with history of its own
    assert recal.adjustments["1m"] == recal.adjustments["1w"] and recal.adjustments["1w"]["q90"] > 0
    wide = history_windows(14, n_windows=2, n_dates=300, models=("underconfident",))
    shrink = fit_recalibration(wide, horizons=["1w", "1m"])
    assert shrink.adjustments["1w"]["q90"] < 0 and all(v == 0.0 for v in shrink.adjustments["1m"].values())


def test_cross_fitted_stacks_laid_out_once_equal_the_stacks_refitted_on_each_fold():
    """The out-of-fold stacks lay one horizon's history out once and drop a block's rows; that must be the stack
    fitted from scratch on the history without the block (same rows, order, outcomes, weights)."""
    from quant_assets.lib.ensemble.stacking import _StackRows, stack

    history = history_windows(5, n_windows=4, n_dates=60)
    history = history.drop(history.index[::17])  # some keys lack a model: incomplete rows drop out alike
    models = ["good", "climatology", "biased"]
    laid_out = _StackRows.of(history, models, "1w", fold_key="window_start")
    for block in np.array_split(np.sort(history["window_start"].unique()), 3):
        refitted = stack(history[~history["window_start"].isin(block)], models, "1w", 10.0, 5.0)
        reused = stack(history, models, "1w", 10.0, 5.0, rows=laid_out.without(block))
        assert reused.rows == refitted.rows > 0
        assert reused.n_eff == refitted.n_eff
        assert reused.weights == refitted.weights


def test_the_sizing_prior_gives_every_symbol_of_a_class_the_same_arithmetic_return():
    rng = np.random.default_rng(31)
    frame = pd.DataFrame({"symbol": ["AAA", "BBB", "CCC", "DDD"] * 2, "segment": ["equity", "equity", "crypto", "crypto"] * 2,
                          "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 4), "horizon": "1m",
                          "ref_mean": 0.01, "ref_std": rng.uniform(0.05, 0.3, 8), "std": rng.uniform(0.05, 0.3, 8)})
    prior = sizing_prior(frame)
    for (_, _), rows in frame.assign(prior=prior).groupby(["date", "segment"]):
        # The class's arithmetic return (the reference's drift plus half its variance, averaged over the class)...
        arithmetic = sum(r.ref_mean + r.ref_std**2 / 2 for r in rows.itertuples()) / len(rows)
        # ...is every member's, so a member's log mean is lower by half its own variance.
        for r in rows.itertuples():
            assert r.prior == pytest.approx(arithmetic - r.std**2 / 2, abs=1e-15)
    # With the classes' long-run daily growth: that times the horizon's sessions (equities) or days (crypto); a
    # class without one keeps the reference's.
    long_run = sizing_prior(frame, {"equity": 0.0005})
    equity = (frame["segment"] == "equity").to_numpy()
    np.testing.assert_allclose(long_run[equity], 0.0005 * 21 - frame["std"][equity] ** 2 / 2, atol=1e-15)
    np.testing.assert_allclose(long_run[~equity], prior[~equity], atol=1e-15)
    crypto_only = sizing_prior(frame, {"equity": 0.0005, "crypto": 0.001})
    np.testing.assert_allclose(crypto_only[~equity], 0.001 * 30 - frame["std"][~equity] ** 2 / 2, atol=1e-15)


def test_forecast_skill_is_the_clustered_slope_of_outcomes_on_forecasts_shrunk_by_its_noise():
    import statsmodels.api as sm

    rng = np.random.default_rng(37)
    dates = pd.bdate_range("2019-01-01", periods=500)
    rows = pd.MultiIndex.from_product([dates, range(10)], names=["date", "symbol"]).to_frame(index=False)
    signal = rng.normal(0.0, 0.02, len(rows))
    market = np.repeat(rng.normal(0.0, 0.03, len(dates)), 10)
    prior = rng.normal(0.005, 0.001, len(rows))
    past = rows.assign(sizing_prior=prior, mean=prior + signal,
                       realized=prior + 0.4 * signal + market + rng.normal(0.0, 0.05, len(rows)))
    skill = forecast_skill(past, "1m")
    # The independent reference: OLS through the origin with standard errors clustered by 29-day blocks.
    block = ((past["date"] - past["date"].min()).dt.days // 29).to_numpy()
    fit = sm.OLS((past["realized"] - prior).to_numpy(), (past["mean"] - prior).to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": block, "use_correction": False})
    groups = len(np.unique(block))
    se = float(fit.bse[0]) * np.sqrt(groups / (groups - 1))
    assert skill["blocks"] == groups and skill["raw_slope"] == pytest.approx(float(fit.params[0]), rel=1e-10)
    assert skill["standard_error"] == pytest.approx(se, rel=1e-10)
    assert skill["slope"] == pytest.approx(fit.params[0] * (1 - (se / fit.params[0]) ** 2), rel=1e-10)
    assert 0.2 < skill["slope"] < 0.6

    # Forecasts that are noise: no slope for sizing (negative raw slope here, or one within its noise).
    noise = past.assign(mean=prior + rng.normal(0.0, 0.02, len(rows)))
    assert forecast_skill(noise, "1m")["slope"] < 0.1
    # Two years of 1y labels are two blocks: too few to trust any slope.
    short = forecast_skill(past, "1y")
    assert short["slope"] == 0.0 and short["blocks"] == 2 and "< 4" in short["reason"]


def test_each_asset_class_gets_its_own_stack_and_its_own_verdict_against_the_reference():
    rng = np.random.default_rng(41)
    as_of = pd.Timestamp("2024-01-01")
    classes = {"AAA": "equity", "BBB": "equity", "CCC": "crypto", "DDD": "crypto"}

    def noise_on_crypto(frame):
        """'good' knows the outcome's mean on equities; on crypto its mean is noise of the same spread."""
        crypto = (frame["symbol"].isin(["CCC", "DDD"]) & (frame["model"] == "good")).to_numpy()
        noise = gaussian_distribution(rng.normal(0.0, 0.7, crypto.sum()), np.ones(crypto.sum()))
        frame.loc[crypto, list(noise.columns)] = noise.to_numpy()
        return frame

    current = noise_on_crypto(with_reference(synthetic_window(rng, as_of, 20, models=("good",)), rng))
    history = history_windows(43, n_windows=3, n_dates=150, models=("good",))
    history = pd.concat([noise_on_crypto(with_reference(w, rng)) for _, w in history.groupby("window_start")],
                        ignore_index=True)
    # Pooled, the equities' evidence carries crypto along: it is stacked on a member that is noise there.
    pooled, _ = build_ensemble(current, history, as_of, segments=classes, reference="baseline")
    assert pooled["beats_reference"].all()
    frame, info = build_class_ensembles(current, history, as_of, classes, reference="baseline")
    equity, crypto = info["equity"]["horizons"]["1w"], info["crypto"]["horizons"]["1w"]
    assert equity["out_of_fold"]["beats"] and equity["weights"]["good"] > 0.5
    assert not crypto["out_of_fold"]["beats"] and crypto["weights"]["baseline"] == 1.0
    # Each class's rows are exactly that class's own ensemble.
    alone, _ = build_ensemble(current[current["symbol"].isin(["CCC", "DDD"])], history[history["symbol"].isin(["CCC", "DDD"])],
                              as_of, segments=classes, reference="baseline")
    pd.testing.assert_frame_equal(frame[frame["symbol"].isin(["CCC", "DDD"])].reset_index(drop=True), alone)
    assert frame["beats_reference"].groupby(frame["symbol"].map(classes)).all().to_dict() == {"crypto": False, "equity": True}
    with pytest.raises(ValueError, match="^build_class_ensembles: no asset class for DDD$"):
        build_class_ensembles(current, history, as_of, {k: v for k, v in classes.items() if k != "DDD"})


def test_a_memo_gives_the_same_ensemble_and_learns_from_an_unchanged_history_once(tmp_path, monkeypatch):
    from quant_assets.lib.ensemble import confidence, stacking
    from quant_assets.lib.storage.memo import DiskMemo

    rng = np.random.default_rng(23)
    as_of = pd.Timestamp("2024-01-01")
    history = history_windows(8, n_windows=3, n_dates=150, models=("good", "biased"))
    history = pd.concat([with_reference(w, rng) for _, w in history.groupby("window_start")], ignore_index=True)
    first_days = with_reference(synthetic_window(rng, as_of, 20, models=("good", "biased")), rng)
    plain, plain_info = build_ensemble(first_days, history, as_of, reference="baseline")
    memo = DiskMemo(tmp_path / "memo")
    kept, kept_info = build_ensemble(first_days, history, as_of, reference="baseline", memo=memo)
    pd.testing.assert_frame_equal(kept, plain)
    assert json.dumps(kept_info) == json.dumps(plain_info)
    assert {p.name.split("-")[0] for p in (tmp_path / "memo").glob("*.pkl")} == {"out_of_fold", "confidence_evaluation"}

    # The next day: one more day of the window's forecasts, the same history. Nothing is learned again.
    learned = []

    def recorded(real):
        @functools.wraps(real)
        def call(*args):
            learned.append(real.__name__)
            return real(*args)
        return call

    for module, name in ((stacking, "out_of_fold"), (confidence, "confidence_evaluation")):
        monkeypatch.setattr(module, name, recorded(getattr(module, name)))
    next_day = with_reference(synthetic_window(np.random.default_rng(24), as_of, 21, models=("good", "biased")), rng)
    daily, _ = build_ensemble(next_day, history, as_of, reference="baseline", memo=memo)
    assert learned == []

    revised = history.assign(realized=history["realized"] * 1.01)  # a revised label is a new key: learned anew
    build_ensemble(next_day, revised, as_of, reference="baseline", memo=memo)
    assert set(learned) == {"out_of_fold", "confidence_evaluation"}  # the recorders see every call
    assert len(list((tmp_path / "memo").glob("*.pkl"))) > 2
    monkeypatch.undo()
    pd.testing.assert_frame_equal(daily, build_ensemble(next_day, history, as_of, reference="baseline")[0])


def test_with_one_earlier_window_the_confidence_is_judged_over_folds_of_dates():
    history = history_windows(8, n_windows=1, n_dates=150)
    as_of = pd.Timestamp("2024-01-01")
    current = synthetic_window(np.random.default_rng(3), as_of, 20)
    frame, info = build_ensemble(current, history, as_of)
    evaluation = info["horizons"]["1w"]["confidence_evaluation"]
    assert evaluation["rows"] == len(history) // 3 and evaluation["brier_calibrated"] < evaluation["brier_base_rate"]
    assert frame["confidence"].between(0, 1).all() and (frame["confidence_source"] == "calibrated").all()
