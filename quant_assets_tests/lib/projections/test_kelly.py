"""Scenario Kelly, full and fractional (the CRRA investor), against closed forms, caps, budgets and degenerate inputs."""

from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from quant_assets.lib.projections.kelly import scenario_kelly


def two_point(up, down, p, n=1000):
    """Exactly n*p scenarios of +up and the rest of -down."""
    k = int(round(n * p))
    return np.r_[np.full(k, up), np.full(n - k, -down)][:, None]


@pytest.mark.parametrize(("up", "down", "p"), [(1.0, 1.0, 0.6), (0.3, 0.2, 0.5), (0.1, 0.5, 0.9)])
def test_single_asset_matches_the_closed_form_kelly_fraction(up, down, p):
    expected = p / down - (1 - p) / up  # f* = p/a - q/b for a gain of b and a loss of a
    assert 0 < expected < 1
    w = scenario_kelly(two_point(up, down, p), cap=1.0, max_total=1.0)
    # The growth is flat at the optimum: a 1e-11 gap in growth is a few 1e-5 in the weight ($0.50 on $10,000).
    assert w[0] == pytest.approx(expected, abs=5e-5)
    # Half Kelly is the CRRA investor of risk aversion 2: p b / (1 + b w)^2 = q a / (1 - a w)^2 at its optimum, so
    # (1 + b w) / (1 - a w) = k with k = sqrt(p b / (q a)): w = (k - 1) / (b + k a), not half the Kelly fraction.
    # Within 1e-4 ($1 on $10,000): its objective is flatter still at the optimum.
    k = np.sqrt(p * up / ((1 - p) * down))
    half = scenario_kelly(two_point(up, down, p), cap=1.0, max_total=1.0, fraction=0.5)
    assert half[0] == pytest.approx((k - 1) / (up + k * down), abs=1e-4)


def lognormal(mu, sigma, n=20_000):
    """One asset's monthly simple returns at the n quantile midpoints of a lognormal with arithmetic drift ``mu``
    (the log return is N(mu - sigma^2/2, sigma^2)): the moments without Monte Carlo noise."""
    z = stats.norm.ppf((np.arange(n) + 0.5) / n)
    return np.expm1(mu - sigma**2 / 2 + sigma * z)


def one_period_optimum(r, fraction):
    """The CRRA (gamma = 1/f) optimum of one asset on these scenarios, by a scalar search."""
    gamma = 1.0 / fraction
    loss = lambda w: np.mean((1 + w * r) ** (1 - gamma)) * (1 if gamma > 1 else -1)  # noqa: E731
    return optimize.minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-9}).x


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_fractional_kelly_on_one_lognormal_asset_is_the_merton_fraction(fraction):
    # Monthly drift 0.5% and volatility 10%: f mu / sigma^2 = 0.5 f, inside the budget. The continuous-time Merton
    # fraction mu / (gamma sigma^2) and the one-period optimum differ by terms of order sigma (the skew of one month's
    # lognormal return): within 2% here. On the scenarios themselves the solver finds the optimum within 1e-4.
    mu, sigma = 0.005, 0.1
    r = lognormal(mu, sigma)
    w = scenario_kelly(r[:, None], cap=1.0, max_total=1.0, fraction=fraction)[0]
    assert w == pytest.approx(fraction * mu / sigma**2, rel=0.02)
    assert w == pytest.approx(one_period_optimum(r, fraction), abs=1e-4)


def test_fractional_kelly_is_fully_invested_when_its_merton_fraction_reaches_the_budget():
    r = lognormal(0.01, 0.05)[:, None]  # f mu / sigma^2 = 2 at f = 1/2
    assert scenario_kelly(r, cap=1.0, max_total=1.0, fraction=0.5)[0] == pytest.approx(1.0, abs=1e-6)
    assert scenario_kelly(r, cap=1.0, max_total=0.6, fraction=0.5)[0] == pytest.approx(0.6, abs=1e-6)


def test_two_iid_assets_are_split_equally():
    # The same marginal for both, independent (a random pairing), and exchangeable (every scenario also swapped).
    x = lognormal(0.005, 0.1, n=10_000)
    y = np.random.default_rng(2).permutation(x)
    r = np.vstack([np.c_[x, y], np.c_[y, x]])
    w = scenario_kelly(r, cap=1.0, max_total=1.0, fraction=0.5)
    assert w[0] == pytest.approx(w[1], abs=1e-4)
    # Independent assets: each is held as if alone (f mu / sigma^2 = 0.25), up to the pairing's sample correlation.
    assert w == pytest.approx([0.25, 0.25], rel=0.03)


def test_the_invested_share_falls_as_the_forecast_volatility_rises_even_where_full_kelly_fills_the_budget():
    mu, sigmas, fraction = 0.01, [0.06, 0.08, 0.1, 0.12, 0.15], 0.5
    full = [scenario_kelly(lognormal(mu, s)[:, None], cap=1.0, max_total=1.0)[0] for s in sigmas]
    half = [scenario_kelly(lognormal(mu, s)[:, None], cap=1.0, max_total=1.0, fraction=fraction)[0] for s in sigmas]
    assert full[:3] == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)  # full Kelly at the budget up to 10% volatility
    # Half of that capped answer would be 50% at 6%, 8% and 10% alike; the CRRA investor scales with 1 / sigma^2.
    assert half[0] == pytest.approx(1.0, abs=1e-6)
    assert half[1:] == pytest.approx([fraction * mu / s**2 for s in sigmas[1:]], rel=0.02)
    assert np.all(np.diff(half) < 0)


def test_the_fractional_optimum_beats_its_neighbours_under_caps_and_budget():
    rng = np.random.default_rng(6)
    r = np.expm1(rng.multivariate_normal([0.03, 0.02, 0.025, 0.01],
                                         np.diag([0.02, 0.01, 0.03, 0.005]) + 0.003, size=4000))
    for fraction in (0.5, 0.4):
        gamma = 1 / fraction
        w = scenario_kelly(r, cap=0.4, max_total=0.9, fraction=fraction)
        assert np.all(w >= 0) and np.all(w <= 0.4 + 1e-9) and w.sum() <= 0.9 + 1e-9
        utility = lambda v: -np.mean((1 + r @ v) ** (1 - gamma))  # noqa: E731
        for _ in range(50):
            v = np.clip(w + rng.normal(0, 0.02, 4), 0, 0.4)
            v = v * min(1.0, 0.9 / v.sum())
            assert utility(v) <= utility(w) + 1e-9
    with pytest.raises(ValueError, match=r"Kelly fraction must lie in \(0, 1\], got 1.5"):
        scenario_kelly(r, fraction=1.5)


def test_negative_drift_gets_nothing_and_caps_and_budget_hold():
    rng = np.random.default_rng(0)
    n = 4000
    good = rng.normal(0.08, 0.2, size=(n, 5))
    bad = rng.normal(-0.03, 0.2, size=(n, 1))
    r = np.hstack([good, bad])
    w = scenario_kelly(r, cap=0.25, max_total=1.0)
    assert w[5] == 0.0
    assert np.all(w >= 0) and np.all(w <= 0.25 + 1e-9) and w.sum() <= 1.0 + 1e-9
    assert w[:5].sum() == pytest.approx(1.0, abs=1e-6)  # five attractive assets at 0.25 would be 1.25
    tight = scenario_kelly(r, cap=0.1, max_total=0.3)
    assert np.all(tight <= 0.1 + 1e-9) and tight.sum() == pytest.approx(0.3, abs=1e-6)
    # Only the negative-drift asset: cash, without a solver call (log growth <= 0 by Jensen).
    np.testing.assert_array_equal(scenario_kelly(bad), [0.0])


def test_the_optimum_beats_its_neighbours():
    rng = np.random.default_rng(1)
    r = np.exp(rng.multivariate_normal([0.05, 0.03, 0.04], [[0.09, 0.03, 0.0], [0.03, 0.04, 0.0], [0.0, 0.0, 0.16]],
                                       size=3000)) - 1
    w = scenario_kelly(r, cap=1.0, max_total=1.0)
    growth = lambda v: np.mean(np.log1p(r @ v))  # noqa: E731
    for _ in range(50):
        v = np.clip(w + rng.normal(0, 0.02, 3), 0, 1)
        v = v / max(v.sum(), 1.0)
        assert growth(v) <= growth(w) + 1e-7


def test_eligibility_and_degenerate_inputs():
    r = np.hstack([two_point(1.0, 1.0, 0.6), two_point(1.0, 1.0, 0.7)])
    w = scenario_kelly(r, cap=1.0, eligible=np.array([True, False]))
    assert w[1] == 0.0 and w[0] == pytest.approx(0.2, abs=2e-5)
    np.testing.assert_array_equal(scenario_kelly(r, eligible=np.array([False, False])), [0.0, 0.0])
    assert scenario_kelly(np.zeros((100, 0))).shape == (0,)
    with pytest.raises(ValueError, match=r"asset column\(s\) \[1\]"):
        scenario_kelly(np.array([[0.1, np.nan], [0.2, 0.1]]))
    with pytest.raises(ValueError, match="cannot fall below -1"):
        scenario_kelly(np.array([[0.5], [-1.5]]))
    with pytest.raises(ValueError, match="cap and max_total"):
        scenario_kelly(r, cap=0.0)


def test_a_scenario_set_on_which_the_inline_formulation_stalls_is_solved():
    # 10,000 one-month scenarios of BTC, JNJ and AAPL from a walk-forward test run; CLARABEL reported
    # InsufficientProgress on max mean log(1 + R w) written inline. All three means are positive and the
    # growth keeps rising up to the 25% caps.
    r = np.load(Path(__file__).parent / "data" / "kelly_clarabel_stall.npz")["simple_returns"]
    w = scenario_kelly(r, cap=0.25, max_total=1.0)
    np.testing.assert_allclose(w, [0.25, 0.25, 0.25], atol=1e-6)


def test_expected_returns_shrink_by_their_uncertainty_like_the_normal_posterior():
    from quant_assets.lib.projections.kelly import cap_binding_share, shrink_expected_returns

    rng = np.random.default_rng(3)
    n, tau = 20_000, 0.02
    truth = rng.normal(0.0, tau, n)
    se = rng.choice([0.005, 0.02, 0.06], n)
    estimate = truth + rng.normal(0.0, se)
    shrunk, factor, tau2 = shrink_expected_returns(estimate, se)
    assert tau2 == pytest.approx(tau**2, rel=0.05)
    # The normal-normal posterior mean (scipy-free closed form) and a lower error than the raw estimate.
    np.testing.assert_allclose(factor, tau2 / (tau2 + se**2))
    assert np.mean((shrunk - truth) ** 2) < 0.7 * np.mean((estimate - truth) ** 2)
    # Noisier means are shrunk more; exact means are left alone.
    assert factor[se == 0.06].max() < factor[se == 0.005].min()
    same, ones, _ = shrink_expected_returns(np.array([0.01, -0.02]), np.zeros(2))
    np.testing.assert_array_equal(same, [0.01, -0.02]) and np.testing.assert_array_equal(ones, [1.0, 1.0])
    assert cap_binding_share([0.25, 0.25, 0.1, 0.0], 0.25) == pytest.approx(2 / 3)
    assert np.isnan(cap_binding_share([0.0, 0.0], 0.25))


def test_sizing_honours_its_horizon_and_names_an_unknown_one():
    import pandas as pd

    from quant_assets.lib.models.base import gaussian_distribution
    from quant_assets.lib.projections.sizing import SizingPolicy, decide
    from quant_assets.lib.vocabulary import HORIZONS

    with pytest.raises(ValueError, match=r"^sizing horizon '2w' is not one of 1w, 1m, 3m, 1y$"):
        SizingPolicy(horizon="2w")
    rng = np.random.default_rng(4)
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    rows = []
    for i, h in enumerate(HORIZONS):
        mean = np.array([0.01, 0.02, -0.01, 0.03]) * (i + 1)
        dist = gaussian_distribution(mean, np.full(4, 0.02 * (i + 1)))
        rows.append(dist.assign(symbol=symbols, horizon=h.label, confidence=[0.4 + 0.1 * i] * 3 + [0.9],
                                sizing_mean=mean, mean_uncertainty=[0.0, 0.0, 0.0, 0.5 * (i + 1)],
                                sizing_prior=-0.01 * (i + 1)))
    marginals = pd.concat(rows, ignore_index=True)
    residuals = pd.DataFrame(rng.normal(0, 0.01, (300, 4)), columns=symbols)
    decision = decide(marginals, residuals, None, SizingPolicy(horizon="3m", n_scenarios=4000, cap=0.2))
    at_3m = marginals[marginals["horizon"] == "3m"].set_index("symbol")
    assert decision.confidence == pytest.approx(at_3m["confidence"].to_dict())
    # DDD's mean is pure noise (se 1.5 against a cross-section of departures from the prior within 0.12): no
    # evidence of a spread of true means beyond the noise, so it is shrunk to the prior (a loss at 3m here) and
    # not bet on despite its 0.9 confidence.
    assert decision.shrinkage["DDD"] == 0.0 and decision.shrinkage["AAA"] == 1.0
    assert decision.expected_return["BBB"] == pytest.approx(np.expm1(0.06 + 0.5 * 0.06**2), rel=0.05)
    assert decision.eligible == ["AAA", "BBB"] and decision.kelly["CCC"] == decision.kelly["DDD"] == 0.0
    assert decision.cap_binding == pytest.approx(cap_share(decision.kelly, 0.2))


def cap_share(weights, cap):
    held = [w for w in weights.values() if w > 1e-6]
    return sum(w >= cap - 1e-6 for w in held) / len(held)


def test_a_scenario_set_on_which_tight_clarabel_fails_is_solved_by_the_fallbacks():
    # 4,000 one-month scenarios of 22 symbols from the long evaluation (bench/evaluate.py), one with a 24x
    # upside tail: CLARABEL at the tight tolerances raises SolverError on it, and the backtest used to stop.
    import cvxpy as cp

    from quant_assets.lib.projections import kelly

    r = np.load(Path(__file__).parent / "data" / "kelly_clarabel_tight_failure.npz")["simple_returns"].astype("float64")
    w_var, wealth = cp.Variable(r.shape[1], nonneg=True), cp.Variable(len(r))
    tight = cp.Problem(cp.Maximize(cp.sum(cp.log(wealth)) / len(r)), [wealth == 1 + r @ w_var, w_var <= 0.25, cp.sum(w_var) <= 1])
    with pytest.raises(cp.error.SolverError):
        tight.solve(solver=cp.CLARABEL, **kelly._CLARABEL_OPTIONS)

    w = scenario_kelly(r, cap=0.25, max_total=1.0)
    assert (w >= 0).all() and (w <= 0.25 + 1e-9).all() and w.sum() <= 1 + 1e-9
    growth = lambda weights: np.log1p(r @ weights).mean()  # noqa: E731
    rng = np.random.default_rng(5)
    for _ in range(100):
        other = np.clip(w + rng.normal(0, 0.01, w.size), 0, 0.25)
        other /= max(other.sum(), 1.0)
        assert growth(other) <= growth(w) + 1e-6


def test_symbols_at_their_class_prior_get_its_arithmetic_return_exactly_whatever_their_volatility():
    import pandas as pd

    from quant_assets.lib.models.base import gaussian_distribution
    from quant_assets.lib.projections.sizing import SizingPolicy, decide
    from quant_assets.lib.vocabulary import HORIZONS

    rng = np.random.default_rng(8)
    symbols, std = ["CALM", "WILD"], np.array([0.04, 0.20])
    growth = 0.01  # the class's log expected gross return over a month
    rows = []
    for h in HORIZONS:
        prior = growth - std**2 / 2
        # WILD's log mean is negative, CALM's positive: each has a 55% chance of a gain (the confidence).
        rows.append(gaussian_distribution(prior, std).assign(symbol=symbols, horizon=h.label, confidence=[0.55, 0.55],
                                                              sizing_mean=prior, sizing_prior=prior))
    marginals = pd.concat(rows, ignore_index=True)
    residuals = pd.DataFrame(rng.normal(0, 0.01, (300, 2)), columns=symbols)
    decision = decide(marginals, residuals, None, SizingPolicy(n_scenarios=4000))
    # The same arithmetic return for both: the volatile one is not favoured for its volatility.
    assert decision.expected_return == pytest.approx({s: np.expm1(growth) for s in symbols}, rel=1e-9)
    assert decision.eligible == symbols and decision.kelly["CALM"] > decision.kelly["WILD"]


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_the_candidate_pre_selection_loses_no_weight(monkeypatch, fraction):
    # 40 assets, more than one working set: one market factor, a spread of drifts, fat tails, and few held. The
    # reference is the same conic program over every asset at once (no pre-selection).
    import quant_assets.lib.projections.kelly as kelly

    rng = np.random.default_rng(5)
    n, d = 3000, 40
    market = rng.standard_t(5, n)[:, None] * 0.04
    r = np.expm1(rng.normal(0.004, 0.006, d) + rng.uniform(0.5, 1.5, d) * market
                 + rng.standard_t(5, (n, d)) * rng.uniform(0.04, 0.12, d))
    assert d > kelly.WORKING_SET
    chosen = scenario_kelly(r, cap=0.25, fraction=fraction)
    monkeypatch.setattr(kelly, "WORKING_SET", d)
    everything = scenario_kelly(r, cap=0.25, fraction=fraction)
    np.testing.assert_allclose(chosen, everything, atol=1e-6)
    assert (chosen > 0).sum() >= 2
    # From the worst first guess (the assets the answer holds left out), the optimality check brings them in.
    held = np.flatnonzero(everything > 0)
    worst = np.setdiff1d(np.arange(d), held)[:24]
    monkeypatch.setattr(kelly, "WORKING_SET", 24)
    monkeypatch.setattr(kelly, "_initial_working_set", lambda *args: worst)
    np.testing.assert_allclose(scenario_kelly(r, cap=0.25, fraction=fraction), everything, atol=1e-6)


def test_a_scenario_set_on_which_clarabel_stalls_on_the_mean_of_logs_is_solved_without_scs(monkeypatch):
    # 10,000 one-month scenarios of the 24 first candidates of a 500-symbol day (the widened sample, float32): CLARABEL stops
    # with InsufficientProgress at both tolerances on the mean of the logs, and solves the sum of the logs at once.
    import cvxpy as cp

    import quant_assets.lib.projections.kelly as kelly

    r = np.load(Path(__file__).parent / "data" / "kelly_clarabel_mean_stall.npz")["simple_returns"].astype("float64")
    w_mean, wealth = cp.Variable(r.shape[1], nonneg=True), cp.Variable(len(r))
    mean_of_logs = cp.Problem(cp.Maximize(cp.sum(cp.log(wealth)) / len(r)),
                              [wealth == 1 + r @ w_mean, w_mean <= 0.25, cp.sum(w_mean) <= 1])
    with pytest.raises(cp.error.SolverError):
        mean_of_logs.solve(solver=cp.CLARABEL)
    monkeypatch.setattr(kelly, "_SCS_ATTEMPTS", ())  # no SCS to fall back on
    w = scenario_kelly(r, cap=0.25, max_total=1.0)
    assert np.all(w >= 0) and np.all(w <= 0.25 + 1e-9) and w.sum() <= 1 + 1e-9 and (w > 0).sum() >= 2
    growth = lambda v: np.mean(np.log1p(r @ v))  # noqa: E731
    rng = np.random.default_rng(2)
    for _ in range(50):
        v = np.clip(w + rng.normal(0, 0.01, len(w)), 0, 0.25)
        v = v / max(v.sum(), 1.0)
        assert growth(v) <= growth(w) + 1e-9
