"""Statistics a quant trusts on a strategy's period returns: the Sharpe ratio with its standard error, the
probabilistic Sharpe ratio against a benchmark's, and the deflated Sharpe ratio when several were tried (pure).

Sharpe ratios here are per period (mean over sample standard deviation, zero risk-free rate) unless a name says
``annual``. Kurtosis is the plain fourth standardized moment (3 for a normal), skewness the third, both the biased
(population) moments of the sample, as in Mertens (2002) and Bailey & López de Prado (2012, 2014).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329


def moments(returns) -> tuple[float, float]:
    """The sample skewness and (non-excess) kurtosis of ``returns``; NaN for fewer than three returns or none
    that differ."""
    r = np.asarray(returns, dtype="float64").ravel()
    if r.size < 3 or np.all(r == r[0]):
        return float("nan"), float("nan")
    return float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))


def sharpe_ratio(returns) -> float:
    """The per-period Sharpe ratio ``mean / std(ddof=1)``; NaN when the dispersion is zero or undefined."""
    r = np.asarray(returns, dtype="float64").ravel()
    if r.size < 2 or np.all(r == r[0]):
        return float("nan")
    return float(np.mean(r) / np.std(r, ddof=1))


def _sharpe_variance_factor(sharpe: float, skew: float, kurtosis: float) -> float:
    """``1 - skew SR + (kurtosis - 1) / 4 SR^2``: T times the Sharpe estimator's variance (Mertens 2002)."""
    return 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe ** 2


def sharpe_standard_error(returns) -> float:
    """The standard error of the per-period Sharpe ratio of iid but non-normal returns (Mertens 2002):
    ``sqrt((1 - skew SR + (kurtosis - 1) / 4 SR^2) / T)``, for normal returns Lo's (2002) ``sqrt((1 + SR^2 / 2) / T)``.
    Multiply by ``sqrt(periods per year)`` for the annual Sharpe's. NaN for fewer than three returns."""
    r = np.asarray(returns, dtype="float64").ravel()
    sharpe = sharpe_ratio(r)
    skew, kurtosis = moments(r)
    if not all(np.isfinite((sharpe, skew, kurtosis))):
        return float("nan")
    return math.sqrt(max(_sharpe_variance_factor(sharpe, skew, kurtosis), 0.0) / r.size)


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, periods: int, skew: float, kurtosis: float) -> float:
    """The probability that the true per-period Sharpe ratio exceeds ``benchmark`` given the observed ``sharpe`` on
    ``periods`` returns of that skewness and kurtosis (Bailey & López de Prado 2012):
    ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2))``. NaN when undefined."""
    values = (sharpe, benchmark, skew, kurtosis)
    if periods < 2 or not all(np.isfinite(values)):
        return float("nan")
    factor = _sharpe_variance_factor(sharpe, skew, kurtosis)
    if factor <= 0:
        return float("nan")
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(periods - 1) / math.sqrt(factor)))


def expected_maximum_sharpe(trials: int, sharpe_variance: float) -> float:
    """The expected largest of ``trials`` per-period Sharpe ratios of strategies without skill whose estimates vary
    across the trials with ``sharpe_variance`` (Bailey & López de Prado 2014, the false strategy theorem):
    ``sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, gamma the Euler-Mascheroni constant."""
    if trials < 2:
        return 0.0
    if not sharpe_variance >= 0:
        return float("nan")
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / trials)
                                         + EULER_GAMMA * stats.norm.ppf(1.0 - 1.0 / (trials * math.e)))


def deflated_sharpe_ratio(sharpe: float, periods: int, skew: float, kurtosis: float, trials: int,
                          sharpe_variance: float) -> float:
    """The probabilistic Sharpe ratio against the expected maximum Sharpe of ``trials`` skill-less trials
    (``expected_maximum_sharpe``): the probability the selected strategy's edge survives the search that found it.
    With one trial it is the probabilistic Sharpe ratio against 0."""
    return probabilistic_sharpe_ratio(sharpe, expected_maximum_sharpe(trials, sharpe_variance), periods, skew, kurtosis)
