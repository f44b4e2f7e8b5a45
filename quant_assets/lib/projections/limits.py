"""What limits each weight of a day's advice: the position cap, the budget, eligibility or nothing (pure)."""

from __future__ import annotations

import numpy as np

from quant_assets.lib.projections.sizing import Decision

CAP, BUDGET, NOT_ELIGIBLE, UTILITY = "cap", "budget", "not eligible", "utility"
# Weights within this of a bound are at it: the conic solver's answers are accurate to about 1e-7.
BOUND_TOLERANCE = 1e-5


def marginal_utilities(simple_returns: np.ndarray, weights: np.ndarray, fraction: float) -> np.ndarray:
    """d/dw_i of the CRRA investor's expected utility ``mean u(1 + R w)`` (risk aversion 1/fraction):
    ``mean(R_i W^(-1/fraction))``; positive means the position would take more if nothing bound."""
    wealth = 1.0 + simple_returns @ weights
    return (simple_returns * wealth[:, None] ** (-1.0 / fraction)).mean(axis=0)


def weight_limits(decision: Decision) -> dict[str, tuple[str, str]]:
    """Each candidate's limiting constraint on its fractional-Kelly weight and a one-line reason: ``cap`` (at the
    position cap), ``budget`` (the book is fully invested and the weight would grow were it not), ``not eligible``
    (expected return not positive, or a probability of a gain below the confidence floor), ``utility`` (an interior
    optimum: more or less would lower the expected utility)."""
    policy, symbols = decision.policy, decision.scenarios.symbols
    weights = np.array([decision.fractional[s] for s in symbols])
    marginal = marginal_utilities(np.expm1(decision.scenarios.returns[policy.horizon]), weights, policy.kelly_fraction)
    full = weights.sum() >= policy.max_total - BOUND_TOLERANCE
    limits = {}
    for i, symbol in enumerate(symbols):
        expected, confidence = decision.expected_return[symbol], decision.confidence[symbol]
        if symbol not in decision.eligible:
            limits[symbol] = (NOT_ELIGIBLE, f"expected return {expected:+.2%} at {policy.horizon} is not positive"
                              if expected <= 0 else
                              f"probability of a gain {confidence:.0%} is below the confidence floor "
                              f"{policy.min_confidence:.0%}")
        elif weights[i] >= policy.cap - BOUND_TOLERANCE:
            limits[symbol] = (CAP, f"at the position cap of {policy.cap:.0%}")
        elif full and marginal[i] > 0:
            limits[symbol] = (BUDGET, f"the book is fully invested ({policy.max_total:.0%}); the utility would "
                                      f"take more")
        else:
            limits[symbol] = (UTILITY, "interior optimum: more would lower the expected utility" if weights[i] > 0
                              else "held at zero: any weight would lower the expected utility")
    return limits
