"""Statistical and tree forecasters on a small synthetic panel with a planted signal."""

import os
import pickle

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from scipy import stats

from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS, TARGET, feature_columns
from quant_assets.lib.models.garch import RETURN_SCALE, GarchForecaster, garch_filter
from quant_assets.lib.models import CATALOG, make_model, model_entry
from quant_assets_tests.support.panels import assert_valid_distribution, simulate_garch, make_panel

STAT_TREE_NAMES = [name for name, (_, _, family, _) in CATALOG.items() if family in ("statistical", "tree")]

ALL_MODELS = [*STAT_TREE_NAMES, "baseline"]
SIGNAL_MODELS = ("ridge", "quantile_linear", "lightgbm", "xgboost", "extra_trees")
SPLIT = pd.Timestamp("2019-01-01")


@pytest.fixture(scope="module")
def panel():
    return make_panel()


@pytest.fixture(scope="module")
def fitted(panel):
    train = panel[panel["date"] < SPLIT]
    return {name: make_model(name, horizon="1w", seed=3).fit(train) for name in ALL_MODELS}


@pytest.fixture(scope="module")
def predictions(panel, fitted):
    return {name: model.predict(panel) for name, model in fitted.items()}


def test_registry_names_and_tags():
    assert set(STAT_TREE_NAMES) == {"ridge", "garch", "drift_walk", "quantile_linear", "lightgbm", "xgboost",
                                    "extra_trees"}
    for name in ALL_MODELS:
        model = make_model(name, horizon="1m", seed=1)
        _, _, family, kind = model_entry(name)
        assert (model.name, model.family, model.kind) == (name, family, kind)
        assert model.params()["horizon"] == "1m" and model.params()["seed"] == 1


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_output_shape_and_validity(name, panel, predictions):
    assert_valid_distribution(predictions[name], panel)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_held_out_coverage(name, panel, predictions):
    held = (panel["date"] >= SPLIT).to_numpy() & panel[TARGET].notna().to_numpy()
    out = predictions[name][held]
    y = panel.loc[held, TARGET].to_numpy()
    coverage = np.mean((y >= out["q10"].to_numpy()) & (y <= out["q90"].to_numpy()))
    assert 0.6 <= coverage <= 0.95, f"{name}: q10-q90 coverage {coverage:.2f}"


@pytest.mark.parametrize("name", SIGNAL_MODELS)
def test_signal_is_found_on_held_out_rows(name, panel, predictions):
    held = (panel["date"] >= SPLIT).to_numpy() & panel[TARGET].notna().to_numpy()
    rho = stats.spearmanr(predictions[name]["mean"][held], panel.loc[held, TARGET]).statistic
    assert rho > 0.25, f"{name}: held-out rank correlation {rho:.3f}"


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_same_seed_same_output_and_robust_inputs(name, panel, predictions):
    train = panel[panel["date"] < SPLIT]
    again = make_model(name, horizon="1w", seed=3).fit(train)
    pd.testing.assert_frame_equal(again.predict(panel), predictions[name])
    # Fitted models are stored with joblib/pickle and must predict the same after a round trip.
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(again)).predict(panel), predictions[name])

    # Missing features, shuffled row order and a symbol never seen in training still predict.
    rng = np.random.default_rng(0)
    messy = panel.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for column in feature_columns(messy):
        messy.loc[rng.random(len(messy)) < 0.3, column] = np.nan
    messy.loc[messy["symbol"] == "S0", "symbol"] = "NEW"
    out = again.predict(messy)
    assert len(out) == len(messy) and (out["symbol"] == messy["symbol"]).all()
    assert np.isfinite(out[list(DISTRIBUTION_COLUMNS)].to_numpy()).all()
    assert (np.diff(out[list(QUANTILE_COLUMNS)].to_numpy(), axis=1) >= 0).all()


def test_bad_inputs_get_clear_errors(panel):
    with pytest.raises(ValueError, match="no 'target' column"):
        make_model("ridge", horizon="1w", seed=0).fit(panel.drop(columns=[TARGET]))
    model = make_model("ridge", horizon="1w", seed=0).fit(panel)
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['signal'\]"):
        model.predict(panel.drop(columns=["signal"]))
    with pytest.raises(ValueError, match="asset_class"):
        make_model("baseline", horizon="1w", seed=0).fit(panel.assign(asset_class="bond"))


def test_baseline_is_the_long_run_drift_with_trailing_volatility(panel, fitted, predictions):
    out = predictions["baseline"]
    train = panel[(panel["date"] < SPLIT) & (panel["asset_class"] == "crypto") & panel[TARGET].notna()
                  & panel["ret_1d"].notna()]
    drift, vol, drift_se = fitted["baseline"].pooled_["crypto"]
    assert (drift, vol) == pytest.approx((train["ret_1d"].mean(), train["ret_1d"].std()), rel=1e-12)
    assert drift_se == pytest.approx(train["ret_1d"].std() / np.sqrt(train["date"].nunique()), rel=1e-12)
    rows = panel.index[(panel["symbol"] == "S3")]
    row = rows[400]
    past = panel.loc[rows[rows <= row][-252:], "ret_1d"].to_numpy()
    assert out.loc[row, "mean"] == pytest.approx(drift * 7, rel=1e-9)
    assert out.loc[row, "std"] == pytest.approx(np.sqrt(past.var(ddof=1) * 7 + (drift_se * 7) ** 2), rel=1e-9)
    # The first rows of a symbol lack history and take the pooled training volatility.
    first = rows[0]
    assert out.loc[first, "std"] == pytest.approx(np.sqrt(vol**2 * 7 + (drift_se * 7) ** 2))


@pytest.fixture(scope="module")
def garch_series():
    rng = np.random.default_rng(11)
    n = 1500
    ret = 0.0003 + simulate_garch(rng, n, omega=1e-5, alpha=0.1, beta=0.88, nu=5.0)
    frame = pd.DataFrame(
        {
            "symbol": "G",
            "date": pd.bdate_range("2015-01-01", periods=n),
            "asset_class": "equity",
            "ret_1d": ret,
            TARGET: 0.0,
        }
    )
    return frame


def test_garch_filter_matches_arch_recursion(garch_series):
    y = garch_series["ret_1d"].to_numpy() * RETURN_SCALE
    model = arch_model(y, mean="AR", lags=1, vol="GARCH", p=1, q=1, dist="t", rescale=False)
    backcast = float(np.var(y))  # fixed, so both recursions start from the same value
    result = model.fit(disp="off", backcast=backcast)
    mu, phi, omega, alpha, beta, _ = result.params
    resid = y[1:] - mu - phi * y[:-1]
    ours = garch_filter(resid, omega, alpha, beta, backcast)
    np.testing.assert_allclose(ours[:-1], result.conditional_volatility[1:] ** 2, rtol=1e-10)
    one_step = result.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert ours[-1] == pytest.approx(one_step, rel=1e-10)


def test_garch_forecaster_matches_arch_forecasts(garch_series):
    h = 5
    model = GarchForecaster(horizon="1w", seed=0).fit(garch_series.iloc[:1000])
    assert model.fallback_symbols == []
    params = model.symbol_params["G"]
    out = model.predict(garch_series)

    y = garch_series["ret_1d"].to_numpy() * RETURN_SCALE
    fixed = arch_model(y, mean="AR", lags=1, vol="GARCH", p=1, q=1, dist="t", rescale=False).fix(
        [params.mu, params.phi, params.omega, params.alpha, params.beta, params.nu]
    )
    origins = [1200, 1350, 1499]
    # Analytic per-step forecasts from arch, combined with the AR(1) weights of the sum's error.
    analytic = fixed.forecast(horizon=h, start=origins[0], reindex=False)
    steps = np.arange(1, h + 1)
    weights = np.array([sum(params.phi**i for i in range(h - j + 1)) for j in steps])
    for origin in origins:
        k = origin - origins[0]
        step_var = analytic.residual_variance.to_numpy()[k]
        expected_var = (weights**2 * step_var).sum() / RETURN_SCALE**2
        expected_mean = analytic.mean.to_numpy()[k].sum() / RETURN_SCALE
        assert out.loc[origin, "std"] ** 2 == pytest.approx(expected_var, rel=1e-6)
        assert out.loc[origin, "mean"] == pytest.approx(expected_mean, rel=1e-6)

    # Independent check of the aggregation: arch's own simulated paths of the sum.
    sims = fixed.forecast(
        horizon=h, start=origins[-1], method="simulation", simulations=20000, reindex=False,
        rng=lambda size: np.random.default_rng(5).standard_t(params.nu, size) / np.sqrt(params.nu / (params.nu - 2)),
    )
    path_sums = sims.simulations.values[0].sum(axis=1) / RETURN_SCALE
    assert out.loc[origins[-1], "std"] == pytest.approx(path_sums.std(), rel=0.05)
    # Student-t output with the fitted dof: q95 sits where the t law puts it.
    row = out.loc[origins[-1]]
    scale = row["std"] / np.sqrt(params.nu / (params.nu - 2))
    assert row["q95"] == pytest.approx(row["mean"] + scale * stats.t.ppf(0.95, params.nu), rel=1e-9)


def test_garch_short_history_falls_back_visibly(garch_series):
    short = garch_series.iloc[:100].assign(symbol="SHORT")
    frame = pd.concat([garch_series.iloc[:1000], short], ignore_index=True)
    model = GarchForecaster(horizon="1w").fit(frame)
    assert model.fallback_symbols == ["SHORT"]
    assert "min_obs" in model.fallback_reasons["SHORT"]
    assert model.predict(short.assign(symbol="UNSEEN")).notna().all().all()
    assert model.predict_fallback_symbols == ["UNSEEN"]


def test_garch_pools_all_symbols_when_none_fits_alone(garch_series):
    frame = pd.concat(
        [garch_series.iloc[:500], garch_series.iloc[500:600].assign(symbol="SHORT")], ignore_index=True
    )
    model = GarchForecaster(horizon="1w", min_obs=550).fit(frame)
    assert model.fallback_symbols == ["G", "SHORT"] and model.symbol_params == {}
    out = model.predict(frame)
    assert np.isfinite(out[list(DISTRIBUTION_COLUMNS)].to_numpy()).all()
    with pytest.raises(ValueError, match="only 600 training returns"):
        GarchForecaster(horizon="1w", min_obs=700).fit(frame)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_row_wise_models_predict_any_subset_alike(name, panel, fitted, predictions):
    """``reads_history = False`` lets the walk-forward predict only the window's rows: such a model must give
    those rows the same distribution as when it predicts them within the whole frame. GARCH and the baseline
    read each symbol's past, so they say so."""
    assert fitted[name].reads_history == (name in ("garch", "baseline", "drift_walk"))
    keep = (panel["date"] >= SPLIT).to_numpy() & (np.arange(len(panel)) % 3 == 0)
    alone = fitted[name].predict(panel[keep]).reset_index(drop=True)
    within = predictions[name][keep].reset_index(drop=True)
    if fitted[name].reads_history:
        assert not np.allclose(alone["std"], within["std"])
    else:
        pd.testing.assert_frame_equal(alone, within)


@pytest.mark.parametrize("tau", [0.05, 0.5, 0.9])
def test_quantile_regression_solves_the_linear_program(tau):
    """The Frisch-Newton solver against HiGHS on the primal LP ``min tau 1'u + (1 - tau) 1'v, Xb + u - v = y``."""
    from scipy.optimize import linprog

    from quant_assets.lib.models.quantreg import quantile_regression

    rng = np.random.default_rng(11)
    n, p = 400, 6
    design = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    y = design @ rng.standard_normal(p) * 0.1 + 0.05 * rng.standard_t(4, n)
    coef, steps, converged = quantile_regression(design, y, tau)
    lp = linprog(np.r_[np.zeros(p), np.full(n, tau), np.full(n, 1 - tau)],
                 A_eq=np.hstack([design, np.eye(n), -np.eye(n)]), b_eq=y,
                 bounds=[(None, None)] * p + [(0, None)] * (2 * n), method="highs")

    def check_loss(b):
        r = y - design @ b
        return np.sum(np.where(r >= 0, tau * r, (tau - 1) * r))

    assert converged and steps < 50
    assert check_loss(coef) == pytest.approx(lp.fun, rel=1e-6)
    np.testing.assert_allclose(coef, lp.x[:p], atol=1e-5)
