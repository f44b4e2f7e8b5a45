"""Exact linear quantile regression by the Frisch-Newton interior-point method (Portnoy and Koenker 1997;
the ``fn``/``fnb`` solver of R's quantreg, ``lp.fnm``).

The quantile regression ``min_b sum_i rho_tau(y_i - x_i b)`` is a linear program whose dual is
``max_d y'd  s.t.  X'd = (1 - tau) X'1, 0 <= d <= 1``; a primal-dual path-following method with Mehrotra's
predictor-corrector solves it in a few tens of Newton steps, each one ``p x p`` system (``X' diag(q) X``), so
the cost is ``O(n p^2)`` per step. Statsmodels' ``QuantReg`` (iteratively reweighted least squares) takes
hundreds of steps of the same order and stops at an approximation.
"""

from __future__ import annotations

import numpy as np


def _step_to_boundary(value: np.ndarray, change: np.ndarray) -> float:
    """Largest step ``t`` keeping ``value + t * change >= 0`` (``1e20`` if nothing decreases)."""
    falling = change < 0
    if not falling.any():
        return 1e20
    return float(np.min(-value[falling] / change[falling]))


def quantile_regression(design: np.ndarray, y: np.ndarray, tau: float, *, tolerance: float = 1e-6,
                        max_iter: int = 50, step_fraction: float = 0.99995) -> tuple[np.ndarray, int, bool]:
    """Coefficients ``b`` minimizing the check loss of ``y - design @ b`` at level ``tau`` in (0, 1); also the
    Newton steps taken and whether the duality gap fell below ``tolerance`` (relative to ``sum |y|``)."""
    design = np.asarray(design, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {tau}")
    n = len(y)
    a = design.T  # p x n: the dual's constraint matrix
    c = -y
    b = (1.0 - tau) * design.sum(axis=0)
    u = np.ones(n)
    x = np.full(n, 1.0 - tau)  # the dual point, strictly inside [0, 1]
    s = u - x
    dual = np.linalg.lstsq(a.T, c, rcond=None)[0]
    r = c - a.T @ dual
    r = r + 0.001 * (r == 0)
    z = np.where(r > 0, r, 0.0)
    w = z - r
    scale = max(float(np.abs(y).sum()), 1e-12)
    gap = float(c @ x - dual @ b + w @ u)
    steps = 0
    while gap > tolerance * scale and steps < max_iter:
        steps += 1
        q = 1.0 / (z / x + w / s)
        r = z - w
        aq = a * q
        normal = aq @ a.T
        rhs = aq @ r
        dy = np.linalg.solve(normal, rhs)
        dx = q * (a.T @ dy - r)
        ds = -dx
        dz = -z * (dx / x + 1.0)
        dw = -w * (ds / s + 1.0)
        fp = min(step_fraction * min(_step_to_boundary(x, dx), _step_to_boundary(s, ds)), 1.0)
        fd = min(step_fraction * min(_step_to_boundary(w, dw), _step_to_boundary(z, dz)), 1.0)
        if min(fp, fd) < 1.0:
            # Mehrotra's corrector: re-centre toward the central path with the predicted complementarity.
            mu = float(z @ x + w @ s)
            g = float((z + fd * dz) @ (x + fp * dx) + (w + fd * dw) @ (s + fp * ds))
            mu = mu * (g / mu) ** 3 / (2.0 * n)
            dxdz, dsdw = dx * dz, ds * dw
            xinv, sinv = 1.0 / x, 1.0 / s
            xi = mu * (xinv - sinv)
            dy = np.linalg.solve(normal, rhs + aq @ (dxdz - dsdw - xi))
            dx = q * (a.T @ dy + xi - r - dxdz + dsdw)
            ds = -dx
            dz = mu * xinv - z - xinv * z * dx - dxdz
            dw = mu * sinv - w - sinv * w * ds - dsdw
            fp = min(step_fraction * min(_step_to_boundary(x, dx), _step_to_boundary(s, ds)), 1.0)
            fd = min(step_fraction * min(_step_to_boundary(w, dw), _step_to_boundary(z, dz)), 1.0)
        x = x + fp * dx
        s = s + fp * ds
        dual = dual + fd * dy
        w = w + fd * dw
        z = z + fd * dz
        gap = float(c @ x - dual @ b + w @ u)
    return -dual, steps, gap <= tolerance * scale
