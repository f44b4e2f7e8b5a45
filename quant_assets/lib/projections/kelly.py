"""Scenario Kelly sizing: long-only weights maximizing the expected utility of wealth over simulated returns.

Full Kelly is log utility. Fractional Kelly f is the CRRA investor with relative risk aversion ``gamma = 1/f``,
solved under the same constraints: for returns with mean ``mu`` and variance ``sigma^2`` it holds about
``f mu / sigma^2``, less when the forecast volatility rises, and not ``f`` times a capped full-Kelly answer (which
invests exactly ``f`` whenever full Kelly meets the budget, whatever the forecasts say).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

SOLVED = (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
# Candidate pre-selection: the conic program's cost grows fast with its assets (every scenario's cone meets every
# column), while a Kelly portfolio holds few of them. It is solved on this many candidates at a time, and the
# full problem's optimality conditions, checked at the answer for every asset left out, add the ones that would
# earn weight until none would (_kkt_violators): the answer is the full problem's, whatever the first guess.
WORKING_SET = 24
_ADDED_PER_ROUND = 8
_EXPANSION_STEPS = 300
# A marginal utility above the budget's multiplier by less than this earns a weight below the noise floor.
KKT_TOLERANCE = 1e-8
_NOISE = 1e-7
# The growth surface is flat at the optimum, so default gap tolerances leave weights ~1e-4 off.
_CLARABEL_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-10}


# Tight CLARABEL first; its default tolerances, then SCS, when the tight ones stall on a near-degenerate scenario set.
_CLARABEL_ATTEMPTS = ((cp.CLARABEL, _CLARABEL_OPTIONS), (cp.CLARABEL, {}))
_SCS_ATTEMPTS = ((cp.SCS, {"eps": 1e-9, "max_iters": 200_000}),)


def solve_conic(problem: cp.Problem, attempts=_CLARABEL_ATTEMPTS + _SCS_ATTEMPTS) -> None:
    """Solve ``problem`` with each (solver, options) of ``attempts`` in turn until one solves it (``SOLVED``)."""
    for solver, options in attempts:
        try:
            problem.solve(solver=solver, **options)
        except cp.error.SolverError:
            continue
        if problem.status in SOLVED:
            return


def scenario_kelly(
    simple_returns: np.ndarray,
    cap: float = 0.25,
    max_total: float = 1.0,
    eligible: np.ndarray | None = None,
    fraction: float = 1.0,
) -> np.ndarray:
    """Weights ``w`` maximizing ``mean_s u(1 + w . R_s)`` with ``0 <= w_i <= cap`` and ``sum w <= max_total``.

    ``fraction`` is the Kelly fraction f in (0, 1]: ``u`` is the CRRA utility of relative risk aversion
    ``gamma = 1/f``, ``log`` for full Kelly (f = 1) and ``W^(1 - gamma) / (1 - gamma)`` otherwise (for half Kelly,
    ``-1/W``). ``simple_returns`` is n_scenarios x n_assets (simple returns, each > -1); ``eligible`` (boolean per
    asset, default all) marks the assets that may be held, the others get 0. The rest of the capital is cash at
    0%. Solved as a conic program (exponential cones for log, second-order cones otherwise) with CLARABEL (its
    default tolerances, then SCS, when the tight ones fail), over a working set of candidates that grows until
    the full problem's optimality conditions hold (no asset left out would earn weight). When no eligible asset
    has a positive mean return the answer is all zeros without solving: by Jensen, any long-only portfolio of
    them has an expected utility at most that of cash.
    """
    r = np.asarray(simple_returns, dtype="float64")
    if r.ndim != 2:
        raise ValueError(f"scenario_kelly: simple_returns must be n_scenarios x n_assets, got shape {r.shape}")
    n_scen, n_assets = r.shape
    if not (0 < cap <= 1) or not (0 < max_total <= 1):
        raise ValueError(f"scenario_kelly: cap and max_total must lie in (0, 1], got cap={cap}, max_total={max_total}")
    if not 0 < fraction <= 1:
        raise ValueError(f"scenario_kelly: the Kelly fraction must lie in (0, 1], got {fraction}")
    mask = np.ones(n_assets, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if mask.shape != (n_assets,):
        raise ValueError(f"scenario_kelly: eligible must have one flag per asset ({n_assets}), got shape {mask.shape}")
    bad = [int(i) for i in np.flatnonzero(mask) if not np.all(np.isfinite(r[:, i]))]
    if bad:
        raise ValueError(f"scenario_kelly: asset column(s) {bad} have non-finite scenario returns")
    if np.any(r[:, mask] < -1):
        raise ValueError("scenario_kelly: simple returns cannot fall below -1 (a loss beyond the stake)")
    weights = np.zeros(n_assets)
    # Negative-drift assets stay in the problem when some asset has positive drift: one that pays off
    # when the rest lose can still earn weight as insurance.
    if n_scen == 0 or not np.any(r[:, mask].mean(axis=0) > 0):
        return weights
    sub = r[:, mask]
    gamma = 1.0 / fraction
    working = _initial_working_set(sub, cap, max_total, gamma)
    while True:
        solution = np.zeros(sub.shape[1])
        solution[working] = _solve_on(sub[:, working], cap, max_total, gamma)
        missed = _kkt_violators(sub, solution, working, cap, max_total, gamma)
        if not missed.size:
            break
        working = np.sort(np.r_[working, missed[:_ADDED_PER_ROUND]])
    solution = np.clip(solution, 0.0, cap)
    # Solver tolerance can overshoot the budget by ~1e-9; rescale rather than report an infeasible answer.
    total = solution.sum()
    if total > max_total:
        solution *= max_total / total
    # Below a cent on $10,000 a weight is solver noise (the CRRA solutions carry ~1e-7 of it).
    solution[solution < 1e-6] = 0.0
    weights[mask] = solution
    return weights


def _solve_on(sub: np.ndarray, cap: float, max_total: float, gamma: float) -> np.ndarray:
    """The conic program on the assets of ``sub`` (scenarios x assets): their weights as the solver left them.

    For log utility CLARABEL gets the mean of the logs, then (when it stalls) their sum, before SCS: on some
    10,000-scenario sets of a 500-symbol day it stalls on one scaling and solves the other in seconds, where SCS
    takes half a minute.
    """
    first = None
    for mean_of_logs in (True, False) if gamma == 1.0 else (True,):
        w = cp.Variable(sub.shape[1], nonneg=True)
        # Wealth as its own variable: with log(1 + R w) inline, CLARABEL stalls ("InsufficientProgress") on
        # some fat-tailed scenario sets that it solves at once in this form.
        wealth = cp.Variable(sub.shape[0])
        problem = cp.Problem(utility_objective(wealth, gamma, mean_of_logs),
                             [wealth == 1.0 + sub @ w, w <= cap, cp.sum(w) <= max_total])
        first = first or (problem, w)
        solve_conic(problem, _CLARABEL_ATTEMPTS)
        if problem.status in SOLVED and w.value is not None:
            return np.asarray(w.value, dtype="float64")
    problem, w = first
    solve_conic(problem, _SCS_ATTEMPTS)
    if problem.status not in SOLVED or w.value is None:
        raise RuntimeError(f"scenario_kelly: no solver solved the Kelly problem (status {problem.status})")
    return np.asarray(w.value, dtype="float64")


def _initial_working_set(r: np.ndarray, cap: float, max_total: float, gamma: float) -> np.ndarray:
    """WORKING_SET first candidates (all assets when fewer): those the problem's second-order expansion holds,
    then the best one-asset Kelly ratios (mean over second moment).

    Expanded at W = 1, the expected utility is ``mu . w - gamma/2 w' M w`` (``M`` the returns' second moments),
    a concave quadratic solved in a few milliseconds by accelerated projected gradient; its support is where
    the exact optimum's usually is. Only a first guess: the optimality check decides what is finally held.
    """
    n_assets = r.shape[1]
    if n_assets <= WORKING_SET:
        return np.arange(n_assets)
    mean, second = r.mean(axis=0), r.T @ r / len(r)
    # The Frobenius norm bounds the largest eigenvalue from above (a safe step) at a fraction of eigvalsh's cost;
    # for returns driven by a market factor the two are close.
    step = 1.0 / (gamma * max(float(np.linalg.norm(second)), 1e-12))
    w = previous = np.zeros(n_assets)
    for k in range(1, _EXPANSION_STEPS + 1):
        probe = w + (k - 1) / (k + 2) * (w - previous)
        previous, w = w, _project(probe + step * (mean - gamma * second @ probe), cap, max_total)
    ratio = mean / np.maximum(np.diag(second), 1e-12)
    return np.sort(np.lexsort((-ratio, -w))[:WORKING_SET])


def _project(v: np.ndarray, cap: float, max_total: float) -> np.ndarray:
    """The Euclidean projection of ``v`` on ``0 <= w <= cap, sum w <= max_total`` (the shift found by bisection)."""
    w = np.clip(v, 0.0, cap)
    if w.sum() <= max_total:
        return w
    low, high = 0.0, float(v.max())
    for _ in range(60):
        shift = 0.5 * (low + high)
        low, high = (shift, high) if np.clip(v - shift, 0.0, cap).sum() > max_total else (low, shift)
    return np.clip(v - high, 0.0, cap)


def _kkt_violators(r: np.ndarray, w: np.ndarray, working: np.ndarray, cap: float, max_total: float,
                   gamma: float) -> np.ndarray:
    """The assets outside ``working`` that break the full problem's optimality conditions at ``w``, worst first.

    The expected CRRA utility is concave, so ``w`` is optimal for every asset when its KKT conditions hold: with
    ``lam`` the budget's multiplier (0 when the budget is slack), each asset's marginal utility ``g_i = mean_s
    u'(W_s) R_si`` equals ``lam`` where ``0 < w_i < cap``, is at least ``lam`` at the cap and at most ``lam`` at
    zero. ``w`` solves the problem restricted to ``working``, which covers every asset of ``working``; an asset
    left out (at zero) whose ``g_i`` exceeds ``lam`` would earn weight and is returned. ``lam`` is taken as the
    smallest value the held assets allow, so that no asset that could earn weight passes.
    """
    wealth = 1.0 + r @ w
    marginal = (wealth ** -gamma) @ r / len(r)
    held = w > _NOISE
    free = held & (w < cap - _NOISE)
    if w.sum() < max_total - _NOISE:
        lam = 0.0
    elif free.any():
        lam = float(marginal[free].min())
    else:
        lam = float(marginal[held].min())
    outside = np.setdiff1d(np.arange(r.shape[1]), working)
    missed = outside[marginal[outside] > lam + KKT_TOLERANCE]
    return missed[np.argsort(-marginal[missed], kind="stable")]


def utility_objective(wealth: cp.Variable, gamma: float, mean_of_logs: bool = True) -> cp.Minimize | cp.Maximize:
    """The mean CRRA utility of ``wealth`` (one value per scenario) as a cvxpy objective (for log utility, the sum
    of the logs when not ``mean_of_logs``: the same optimum, scaled otherwise for the solver)."""
    if gamma == 1.0:
        logs = cp.sum(cp.log(wealth))
        return cp.Maximize(logs / wealth.shape[0] if mean_of_logs else logs)
    # For gamma > 1, maximizing mean W^(1-gamma) / (1-gamma) is minimizing sum W^(1-gamma), convex for W > 0. The
    # sum, not the mean: with terms of 1/n, CLARABEL's static regularization leaves the weights ~1e-3 off.
    utility = cp.inv_pos(wealth) if gamma == 2.0 else cp.power(wealth, 1.0 - gamma)
    return cp.Minimize(cp.sum(utility))


def shrink_expected_returns(mean, uncertainty) -> tuple[np.ndarray, np.ndarray, float]:
    """Expected returns shrunk toward zero by their uncertainty (normal-normal empirical Bayes).

    Each estimate ``m_i`` of a true expected return ``mu_i`` has standard error ``s_i``; across symbols the
    true values are taken as ``N(0, tau^2)``, with ``tau^2 = max(mean(m^2) - mean(s^2), 0)`` (method of
    moments). The posterior mean is ``m_i tau^2 / (tau^2 + s_i^2)``: a noisy mean, which Kelly would
    otherwise bet on in full, is pulled toward zero in proportion to its noise. Returns the shrunk means,
    the factors ``tau^2 / (tau^2 + s_i^2)`` and ``tau^2``. Zero uncertainty everywhere leaves the means.
    """
    m = np.asarray(mean, dtype="float64")
    s2 = np.square(np.nan_to_num(np.asarray(uncertainty, dtype="float64"), nan=0.0))
    if m.shape != s2.shape:
        raise ValueError(f"shrink_expected_returns: {m.size} means but {s2.size} uncertainties")
    if m.size == 0:
        return m, m, 0.0
    tau2 = float(max(np.mean(m**2) - np.mean(s2), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(s2 > 0, tau2 / (tau2 + s2), 1.0)
    return m * factor, factor, tau2


def cap_binding_share(weights, cap: float, tolerance: float = 1e-6) -> float:
    """Share of the held positions (weight > 0) sitting at the position cap; NaN when nothing is held."""
    w = np.asarray(weights, dtype="float64")
    held = w > tolerance
    return float(np.mean(w[held] >= cap - tolerance)) if held.any() else float("nan")
