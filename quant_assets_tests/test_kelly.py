"""Scenario Kelly against closed forms, caps, budgets and degenerate inputs."""

from pathlib import Path

import numpy as np
import pytest

from quant_assets.lib.kelly import half_kelly, scenario_kelly


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
    assert half_kelly(w)[0] == pytest.approx(expected / 2, abs=2.5e-5)


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
