"""AR(1)-GARCH(1,1) with Student-t innovations per symbol, aggregated to the horizon's sum of returns."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate import base as arch_base

from quant_assets.lib.models.base import (
    Forecaster,
    finish,
    horizon_steps,
    student_t_distribution,
    training_rows,
)

# Returns are modelled in percent: the optimizer is far better conditioned than on raw log returns.
RETURN_SCALE = 100.0


@dataclass(frozen=True)
class GarchParams:
    """AR(1)-GARCH(1,1)-t parameters on percent returns:
    ``r_t = mu + phi r_{t-1} + e_t``, ``s2_t = omega + alpha e_{t-1}^2 + beta s2_{t-1}``, ``e_t ~ t(nu)``."""

    mu: float
    phi: float
    omega: float
    alpha: float
    beta: float
    nu: float

    @property
    def unconditional_variance(self) -> float:
        """Long-run daily variance ``omega / (1 - alpha - beta)``."""
        return self.omega / max(1.0 - self.alpha - self.beta, 1e-6)


def garch_filter(resid: np.ndarray, omega: float, alpha: float, beta: float, initial: float) -> np.ndarray:
    """Conditional variances through ``resid`` (length n) with fixed parameters; returns n + 1 values.

    ``out[0] = omega + (alpha + beta) * initial`` (``initial`` plays the role of arch's backcast),
    ``out[t + 1] = omega + alpha * resid[t]^2 + beta * out[t]``, so ``out[t]`` is the variance of
    ``resid[t]`` given the past and ``out[n]`` the one-step-ahead forecast. A missing residual carries
    no news: its square is replaced by its expectation ``out[t]``.
    """
    resid = np.asarray(resid, dtype="float64")
    out = np.empty(len(resid) + 1)
    out[0] = omega + (alpha + beta) * initial
    for t, e in enumerate(resid):
        shock = e * e if np.isfinite(e) else out[t]
        out[t + 1] = omega + alpha * shock + beta * out[t]
    return out


def sum_forecast(params: GarchParams, last_return: np.ndarray, next_variance: np.ndarray, steps: int):
    """Mean and variance of the sum of the next ``steps`` returns, given the current return and the
    one-step-ahead conditional variance (arrays, percent units).

    AR(1): ``E r_{t+k} = mu sum_{i<k} phi^i + phi^k r_t``; the sum's error is
    ``sum_j c_j e_{t+j}`` with ``c_j = sum_{i=0}^{steps-j} phi^i``, and GARCH(1,1) gives
    ``E s2_{t+j} = omega sum_{i<j-1} p^i + p^{j-1} s2_{t+1}`` with ``p = alpha + beta``.
    """
    k = np.arange(1, steps + 1)
    phi_pow = params.phi ** np.arange(steps + 1)
    partial = np.cumsum(phi_pow)  # partial[m] = sum_{i<=m} phi^i
    mean_weight = params.mu * partial[k - 1].sum()
    ar_weight = phi_pow[1:].sum()
    c = partial[steps - k]
    p = params.alpha + params.beta
    p_pow = p ** np.arange(steps)
    a = params.omega * np.concatenate([[0.0], np.cumsum(p_pow)[:-1]])  # a_j = omega sum_{i<j-1} p^i
    var_const = float((c**2 * a).sum())
    var_slope = float((c**2 * p_pow).sum())
    mean = mean_weight + ar_weight * last_return
    variance = var_const + var_slope * next_variance
    return mean, variance


class GarchForecaster(Forecaster):
    """Per-symbol AR(1)-GARCH(1,1)-t on ``ret_1d``, filtered at predict time through each symbol's own
    return history in the frame with the fitted parameters, aggregated to the horizon.

    Symbols with fewer than ``min_obs`` training returns, or whose fit fails, use pooled parameters
    (the median of the fitted symbols' parameters, preferring the same asset class); they are listed
    in ``fallback_symbols`` (with the reason in ``fallback_reasons``). Symbols met only at predict time
    are pooled too and listed in ``predict_fallback_symbols``.
    """

    name = "garch"

    defaults = {"min_obs": 250}

    def fit(self, frame: pd.DataFrame) -> "GarchForecaster":
        """Fit one model per symbol on the ``ret_1d`` of its training rows (those with a known target),
        in date order; then the pooled parameters used by fallback and unseen symbols."""
        rows = training_rows(frame, self.name)
        if "ret_1d" not in rows.columns:
            raise ValueError("garch: the training frame has no 'ret_1d' column")
        horizon_steps(rows, self.horizon)  # validates asset_class up front
        rows = rows.sort_values(["symbol", "date"], kind="stable")
        self.symbol_params: dict[str, GarchParams] = {}
        self.fallback_reasons: dict[str, str] = {}
        asset_class_of: dict[str, str] = {}
        pooled_returns = []
        for symbol, group in rows.groupby("symbol", sort=True):
            asset_class_of[symbol] = str(group["asset_class"].iloc[0])
            returns = group["ret_1d"].astype("float64").to_numpy() * RETURN_SCALE
            returns = returns[np.isfinite(returns)]
            pooled_returns.append(returns)
            if len(returns) < self.min_obs:
                self.fallback_reasons[symbol] = f"{len(returns)} training returns < min_obs={self.min_obs}"
                continue
            params, problem = _fit_one(returns)
            if params is None:
                self.fallback_reasons[symbol] = problem
            else:
                self.symbol_params[symbol] = params
        self._concatenated: GarchParams | None = None
        self.pooled_params = {
            ac: self._pooled(ac, asset_class_of, np.concatenate(pooled_returns)) for ac in ("equity", "crypto")
        }
        self.fallback_symbols = sorted(self.fallback_reasons)
        self.predict_fallback_symbols: list[str] = []
        return self

    def _pooled(self, asset_class: str, asset_class_of: dict[str, str], all_returns: np.ndarray) -> GarchParams:
        same = [p for s, p in self.symbol_params.items() if asset_class_of[s] == asset_class]
        fitted = same or list(self.symbol_params.values())
        if fitted:
            mu, phi, omega, alpha, beta, nu = (float(v) for v in np.median([astuple(p) for p in fitted], axis=0))
            # Medians taken one by one may leave the stationary region; shrink beta back inside.
            beta = min(beta, 0.999 - alpha)
            return GarchParams(mu, phi, omega, alpha, beta, nu)
        # No symbol could be fitted alone: fit the concatenated returns of all symbols once.
        if self._concatenated is None:
            if len(all_returns) < self.min_obs:
                raise ValueError(
                    f"garch: only {len(all_returns)} training returns across all symbols; need at least {self.min_obs}"
                )
            params, problem = _fit_one(all_returns)
            if params is None:
                raise ValueError(f"garch: the pooled fit on all symbols failed: {problem}")
            self._concatenated = params
        return self._concatenated

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Student-t distribution of the h-step sum of log returns for every row, from information
        up to and including that row's date."""
        if "ret_1d" not in frame.columns:
            raise ValueError("garch: the frame to predict has no 'ret_1d' column")
        steps = horizon_steps(frame, self.horizon)
        keyed = frame[["symbol", "date", "asset_class"]].assign(_pos=np.arange(len(frame)), _steps=steps)
        keyed["_ret"] = frame["ret_1d"].astype("float64").to_numpy() * RETURN_SCALE
        keyed = keyed.sort_values(["symbol", "date"], kind="stable")
        parts = []
        unseen = []
        for symbol, group in keyed.groupby("symbol", sort=True):
            asset_class = str(group["asset_class"].iloc[0])
            params = self.symbol_params.get(symbol)
            if params is None:
                params = self.pooled_params[asset_class]
                if symbol not in self.fallback_reasons:
                    unseen.append(symbol)
            parts.append(_predict_symbol(params, group, int(group["_steps"].iloc[0])))
        self.predict_fallback_symbols = unseen
        dist = pd.concat(parts).sort_index()
        return finish(frame, dist.reset_index(drop=True))

    def params(self) -> dict[str, object]:
        """Hyper-parameters worth logging."""
        return {**super().params(), "mean": "AR(1)", "vol": "GARCH(1,1)", "dist": "t"}


def _linear_constraints(a: np.ndarray, b: np.ndarray) -> list[dict[str, object]]:
    """arch's parameter constraints ``a @ params - b >= 0`` as one vector constraint with its Jacobian ``a``."""
    if len(a) == 0:
        return []
    return [{"type": "ineq", "fun": lambda params, *args: a @ params - b, "jac": lambda params, *args: a}]


@contextmanager
def analytic_constraint_jacobian() -> Iterator[None]:
    """arch hands SLSQP its linear constraints without a Jacobian, one function a row, so SciPy differentiates
    each numerically at every step: two thirds of a fit's time. Within this block it gets them with theirs."""
    original = arch_base.constraint
    arch_base.constraint = _linear_constraints
    try:
        yield
    finally:
        arch_base.constraint = original


def _fit_one(returns: np.ndarray) -> tuple[GarchParams | None, str]:
    """Maximum-likelihood AR(1)-GARCH(1,1)-t on percent returns; (params, '') or (None, reason)."""
    model = arch_model(returns, mean="AR", lags=1, vol="GARCH", p=1, q=1, dist="t", rescale=False)
    with warnings.catch_warnings(), analytic_constraint_jacobian():
        # Convergence is judged below from the flag; the optimizer's own chatter is noise here.
        warnings.simplefilter("ignore")
        try:
            result = model.fit(disp="off", show_warning=False)
        except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
            return None, f"fit failed: {exc}"
    if result.convergence_flag != 0:
        return None, f"optimizer did not converge (flag {result.convergence_flag})"
    params = GarchParams(*(float(v) for v in np.asarray(result.params)))
    if not (params.nu > 2 and params.alpha + params.beta < 1 and params.omega > 0):
        return None, f"fitted parameters outside the usable region: {params}"
    return params, ""


def _predict_symbol(params: GarchParams, group: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Distribution rows (indexed by original position) for one symbol's rows in date order."""
    returns = group["_ret"].to_numpy()
    lagged = np.concatenate([[np.nan], returns[:-1]])
    resid = returns - params.mu - params.phi * lagged
    variances = garch_filter(resid, params.omega, params.alpha, params.beta, params.unconditional_variance)
    # A missing current return carries no news: use the unconditional mean in the AR term.
    long_run_mean = params.mu / (1.0 - params.phi) if abs(params.phi) < 1 else 0.0
    last = np.where(np.isfinite(returns), returns, long_run_mean)
    mean, variance = sum_forecast(params, last, variances[1:], steps)
    dist = student_t_distribution(mean / RETURN_SCALE, np.sqrt(variance) / RETURN_SCALE, dof=params.nu)
    dist.index = group["_pos"].to_numpy()
    return dist
