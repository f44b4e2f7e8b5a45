"""Sizing on scenarios: how one as-of day's ensemble rows become sized scenarios and long-only full- and
fractional-Kelly weights on them (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import QUANTILE_COLUMNS
from quant_assets.lib.projections.kelly import cap_binding_share, scenario_kelly, shrink_expected_returns
from quant_assets.lib.projections.montecarlo import Scenarios, simulate
from quant_assets.lib.vocabulary import DEFAULT_SIZING_HORIZON, HORIZON_LABELS


@dataclass(frozen=True)
class SizingPolicy:
    """How scenarios become weights; ``kelly_fraction`` f is the advised investor's, the CRRA one of risk aversion 1/f."""

    horizon: str = DEFAULT_SIZING_HORIZON
    cap: float = 0.25
    max_total: float = 1.0
    # Off by default: the utility already sizes on the shrunk mean, and a class's base rate of gains just under one
    # half (crypto's, at 1m) would shut out a position whose sized mean is positive. A person may set a floor.
    min_confidence: float = 0.0
    n_scenarios: int = 10_000
    seed: int = 7
    kelly_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.horizon not in HORIZON_LABELS:
            raise ValueError(f"sizing horizon {self.horizon!r} is not one of {', '.join(HORIZON_LABELS)}")
        if not 0 < self.kelly_fraction <= 1:
            raise ValueError(f"the Kelly fraction must lie in (0, 1], got {self.kelly_fraction}")


@dataclass
class Decision:
    """One as-of date's sized scenarios, candidates and weights.

    ``scenarios`` are the sized ones: the simulation with every horizon shifted to its shrunk sizing mean, the
    distribution the weights were solved on and the one the bands show. ``kelly`` holds the full-Kelly weights (log
    utility), ``fractional`` those of the fractional-Kelly investor (CRRA, risk aversion ``1 / policy.kelly_fraction``),
    both at ``policy.horizon`` under the same constraints. ``expected_return`` is each symbol's simple expected return
    at the sizing horizon after shrinkage (what the weights bet on), ``confidence`` its probability of a gain there
    (calibrated out of fold, or the base rate),
    ``shrinkage`` the factor applied there to its log mean's departure from the prior, ``cap_binding`` the share of
    the full-Kelly positions at the cap.
    """

    as_of: date
    marginals: pd.DataFrame
    scenarios: Scenarios
    eligible: list[str]
    kelly: dict[str, float]
    fractional: dict[str, float]
    policy: SizingPolicy = field(default_factory=SizingPolicy)
    expected_return: dict[str, float] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    shrinkage: dict[str, float] = field(default_factory=dict)
    cap_binding: float = float("nan")
    drives_sizing: bool = True


def decide(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> Decision:
    """Simulate joint scenarios from ``marginals`` (ensemble rows: symbol, horizon, quantiles, mean, std, confidence
    and, when stored, ``sizing_mean`` / ``mean_uncertainty`` / ``sizing_prior``), size them (``sized_scenarios``) and
    solve the full-Kelly and fractional-Kelly weights at the policy's horizon over the symbols whose expected simple
    return there is positive and whose probability of a gain there (``confidence``) passes the gate.
    """
    raw = simulate(marginals[["symbol", "horizon", *QUANTILE_COLUMNS]], residuals,
                   n_scenarios=policy.n_scenarios, seed=policy.seed)
    if policy.horizon not in raw.horizons:
        raise ValueError(f"decide: the ensemble has no rows at the sizing horizon {policy.horizon}")
    scenarios, factors = sized_scenarios(raw, marginals)
    rows = marginals[marginals["horizon"] == policy.horizon].set_index("symbol").loc[scenarios.symbols]
    simple = np.expm1(scenarios.returns[policy.horizon])
    expected = dict(zip(scenarios.symbols, (float(x) for x in simple.mean(axis=0))))
    confidence = dict(zip(scenarios.symbols, (float(x) for x in rows["confidence"])))
    eligible = [s for s in scenarios.symbols if expected[s] > 0 and confidence[s] >= policy.min_confidence]
    kelly, fractional = {s: 0.0 for s in scenarios.symbols}, {s: 0.0 for s in scenarios.symbols}
    if eligible:
        held = simple[:, [scenarios.symbols.index(s) for s in eligible]]
        for weights, fraction in ((kelly, 1.0), (fractional, policy.kelly_fraction)):
            solved = scenario_kelly(held, cap=policy.cap, max_total=policy.max_total, fraction=fraction)
            weights.update(dict(zip(eligible, (float(w) for w in solved))))
    drives = bool(rows["beats_reference"].fillna(True).astype(bool).all()) if "beats_reference" in rows else True
    return Decision(as_of, marginals, scenarios, eligible, kelly, fractional, policy, expected, confidence,
                    dict(zip(scenarios.symbols, (float(x) for x in factors[policy.horizon]))),
                    cap_binding_share(list(kelly.values()), policy.cap), drives)


def sized_scenarios(scenarios: Scenarios, marginals: pd.DataFrame) -> tuple[Scenarios, dict[str, np.ndarray]]:
    """The scenarios shifted, horizon by horizon, to each symbol's shrunk sizing mean, and the shrinkage factors.

    At every horizon, each symbol's log returns move by one constant so that their mean gross return is that of
    the horizon's sizing mean with its departure from the prior shrunk by its uncertainty across the symbols
    (``kelly.shrink_expected_returns``): the prior is what the random walk says without information, and only a
    forecast that has shown skill out of sample moves the sizing mean off it (see ``build_ensemble``). Each horizon
    uses its own ensemble row, so the bands at every horizon are drawn from the distribution the weights are solved
    on at the sizing horizon, and the shape (spread, tails, correlation) of the simulation is kept.
    """
    shifted, factors = {}, {}
    for horizon in scenarios.horizons:
        # simulate has checked that every symbol has a row at every horizon it simulated.
        rows = marginals[marginals["horizon"] == horizon].set_index("symbol").loc[scenarios.symbols]
        sizing_mean = _column(rows, "sizing_mean", rows["mean"])
        prior = _column(rows, "sizing_prior", 0.0)
        uncertainty = _column(rows, "mean_uncertainty", 0.0)
        departure, factors[horizon], _ = shrink_expected_returns((sizing_mean - prior).to_numpy(), uncertainty.to_numpy())
        # The target is a log expected gross return, the log mean plus half the row's variance: the scenarios are
        # shifted to exactly that mean gross return, whatever their tails (the row's std and the quantiles' spread
        # differ), so symbols the prior gives one arithmetic return get it in the scenarios too.
        target = prior.to_numpy() + departure + 0.5 * rows["std"].to_numpy(dtype="float64") ** 2
        log_returns = scenarios.returns[horizon]
        shifted[horizon] = log_returns + (target - np.log(np.exp(log_returns).mean(axis=0)))[None, :]
    return replace(scenarios, returns=shifted), factors


def _column(rows: pd.DataFrame, name: str, default) -> pd.Series:
    """``rows[name]`` as floats with gaps filled from ``default`` (a column an older warehouse lacks is all default)."""
    fallback = default if isinstance(default, pd.Series) else pd.Series(default, index=rows.index, dtype="float64")
    if name not in rows:
        return fallback.astype("float64")
    return rows[name].astype("float64").fillna(fallback)
