"""Each weight's limiting constraint on hand-built Decisions: the cap, the budget, eligibility, an interior optimum."""

from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.projections.kelly import scenario_kelly
from quant_assets.lib.projections.limits import weight_limits
from quant_assets.lib.projections.montecarlo import Scenarios
from quant_assets.lib.projections.sizing import Decision, SizingPolicy


def decision(simple_returns, weights, expected, confidence=None, **policy) -> Decision:
    symbols = list(weights)
    returns = np.log1p(np.asarray(simple_returns, dtype="float64"))
    scenarios = Scenarios(symbols, ["1m"], {"1m": returns}, np.eye(len(symbols)), "gaussian", float("inf"), 0)
    policy = SizingPolicy(**policy)
    confidence = confidence or {s: 0.6 for s in symbols}
    eligible = [s for s in symbols if expected[s] > 0 and confidence[s] >= policy.min_confidence]
    return Decision(date(2024, 1, 2), pd.DataFrame(), scenarios, eligible, dict(weights), dict(weights), policy,
                    expected, confidence)


def test_a_weight_at_the_cap_is_limited_by_the_cap_and_the_rest_of_a_full_book_by_the_budget():
    # Two assets that both pay well in every scenario: each wants more than the budget leaves.
    returns = [[0.10, 0.08], [0.05, 0.06], [0.12, 0.09]]
    limits = weight_limits(decision(returns, {"A": 0.6, "B": 0.4}, {"A": 0.09, "B": 0.077}, cap=0.6))
    assert limits["A"] == ("cap", "at the position cap of 60%")
    assert limits["B"][0] == "budget" and "fully invested (100%)" in limits["B"][1]


def test_an_ineligible_symbol_names_why():
    returns = [[0.10, -0.05, 0.02], [-0.04, 0.01, 0.03], [0.06, -0.02, -0.01]]
    limits = weight_limits(decision(returns, {"A": 0.2, "B": 0.0, "C": 0.0}, {"A": 0.04, "B": -0.02, "C": 0.013},
                                    confidence={"A": 0.7, "B": 0.4, "C": 0.45}, min_confidence=0.5))
    assert limits["B"] == ("not eligible", "expected return -2.00% at 1m is not positive")
    assert limits["C"] == ("not eligible", "probability of a gain 45% is below the confidence floor 50%")


def test_an_interior_optimum_is_limited_by_the_utility_alone():
    # A risky asset whose half-Kelly optimum is well inside the cap and the budget: the marginal utility there is 0.
    rng = np.random.default_rng(3)
    returns = rng.normal(0.01, 0.1, size=(4000, 1))
    weight = float(scenario_kelly(returns, cap=1.0, fraction=0.5)[0])
    assert 0.05 < weight < 0.9
    limits = weight_limits(decision(returns, {"A": weight}, {"A": float(returns.mean())}, cap=1.0))
    assert limits["A"] == ("utility", "interior optimum: more would lower the expected utility")
