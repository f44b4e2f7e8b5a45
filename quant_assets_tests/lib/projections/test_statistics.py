"""The backtest's statistics against independent references: the published example of the deflated Sharpe ratio,
the sampling distribution of the Sharpe estimator by simulation, and the probabilistic Sharpe ratio's size."""

import math

import numpy as np
import pytest
from scipy import stats

from quant_assets.lib.projections.statistics import (
    deflated_sharpe_ratio, expected_maximum_sharpe, moments, probabilistic_sharpe_ratio, sharpe_ratio,
    sharpe_standard_error,
)


def test_the_deflated_sharpe_ratio_reproduces_bailey_and_lopez_de_prados_example():
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", section 6: an annual Sharpe of 2.5 on 1,250
    # daily returns (250 a year) with skewness -3 and kurtosis 10, the best of 100 trials whose annual Sharpe
    # ratios vary with variance 0.5: SR0 = 0.1132 a day and DSR = 0.9004.
    daily_variance = 0.5 / 250
    assert expected_maximum_sharpe(100, daily_variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, daily_variance)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # One trial: nothing to deflate, the probabilistic Sharpe ratio against zero.
    assert deflated_sharpe_ratio(0.1, 100, 0.0, 3.0, 1, 0.2) == probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 3.0)


def test_the_probabilistic_sharpe_ratio_by_hand_and_its_size_under_the_null():
    # SR = 0.2 on 61 normal returns against 0: Phi(0.2 sqrt(60) / sqrt(1 + 0.04 / 2)) = Phi(1.53393) = 0.93748.
    assert probabilistic_sharpe_ratio(0.2, 0.0, 61, 0.0, 3.0) == pytest.approx(0.93748, abs=1e-4)
    assert probabilistic_sharpe_ratio(0.3, 0.3, 50, -1.0, 6.0) == 0.5
    # When the true Sharpe equals the benchmark, PSR > 0.95 happens about 5% of the time.
    rng = np.random.default_rng(3)
    true_sharpe, n = 0.1, 120
    samples = rng.normal(true_sharpe, 1.0, size=(4000, n))
    sharpe = samples.mean(axis=1) / samples.std(axis=1, ddof=1)
    skew, kurtosis = stats.skew(samples, axis=1), stats.kurtosis(samples, axis=1, fisher=False)
    psr = [probabilistic_sharpe_ratio(*args) for args in zip(sharpe, [true_sharpe] * 4000, [n] * 4000, skew, kurtosis)]
    assert 0.035 <= np.mean(np.asarray(psr) > 0.95) <= 0.065


@pytest.mark.parametrize("kind", ["normal", "skewed"])
def test_the_sharpe_standard_error_matches_the_estimators_spread_by_simulation(kind):
    rng = np.random.default_rng(11)
    n = 240
    if kind == "normal":
        draw = lambda size: rng.normal(0.01, 0.04, size=size)  # noqa: E731
    else:
        # A lognormal gross return: right-skewed and fat-tailed period returns.
        draw = lambda size: np.expm1(rng.normal(0.0, 0.25, size=size)) + 0.02  # noqa: E731
    sharpe = np.array([sharpe_ratio(r) for r in draw((6000, n))])
    population = draw(2_000_000)
    true_sharpe = population.mean() / population.std()
    skew, kurtosis = moments(population)
    expected = math.sqrt((1 - skew * true_sharpe + (kurtosis - 1) / 4 * true_sharpe ** 2) / n)
    assert sharpe.std() == pytest.approx(expected, rel=0.06)
    if kind == "normal":
        # Lo (2002): for iid normal returns the standard error is sqrt((1 + SR^2 / 2) / T).
        assert expected == pytest.approx(math.sqrt((1 + true_sharpe ** 2 / 2) / n), rel=0.01)
    one = draw(n)
    assert sharpe_standard_error(one) == pytest.approx(expected, rel=0.25)


def test_degenerate_returns_give_nan_not_a_figure():
    assert math.isnan(sharpe_ratio([0.01, 0.01, 0.01]))
    assert math.isnan(sharpe_standard_error([0.01, 0.02]))
    assert math.isnan(probabilistic_sharpe_ratio(float("nan"), 0.0, 10, 0.0, 3.0))
    assert expected_maximum_sharpe(1, 0.3) == 0.0
