"""Linear forecasters: ridge regression with a modelled residual scale, and linear quantile regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS, QUANTILE_LEVELS, TARGET, Forecaster, finish, quantile_distribution
from quant_assets.lib.models.quantreg import quantile_regression


class RidgeForecaster(Forecaster):
    """Ridge mean on standardized features, a second ridge on ``log|residual|`` for the scale, and
    the empirical distribution of the scaled residuals for the shape (so fat tails and skew survive).
    """

    name = "ridge"
    reads_history = False
    defaults = {"alpha": 100.0, "scale_alpha": 1000.0}

    def fit(self, frame: pd.DataFrame) -> "RidgeForecaster":
        """Fit mean, scale and residual shape on the rows with a known target."""
        rows = self.fit_rows(frame)
        x = self.prep_.standardized(rows)
        y = rows[TARGET].to_numpy(dtype="float64")
        self.mean_model_ = Ridge(alpha=self.alpha).fit(x, y)
        resid = y - self.mean_model_.predict(x)
        # Floor |r| so exact zeros do not send log|r| to -inf and drag the scale fit.
        floor = max(1e-3 * float(np.std(resid)), 1e-10)
        self.scale_model_ = Ridge(alpha=self.scale_alpha).fit(x, np.log(np.maximum(np.abs(resid), floor)))
        log_scale = self.scale_model_.predict(x)
        # Out-of-range features must not extrapolate the scale beyond what training saw.
        self.log_scale_range_ = (float(log_scale.min()), float(log_scale.max()))
        z = resid / np.exp(log_scale)
        self.z_sorted_ = np.sort(z)
        self.z_quantiles_ = np.quantile(z, QUANTILE_LEVELS)
        self.z_mean_ = float(z.mean())
        self.z_std_ = max(float(z.std()), 1e-12)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Distribution per row: ``mean + scale * z`` with ``z`` the training residual law."""
        x = self.prep_.standardized(frame)
        center = self.mean_model_.predict(x)
        scale = np.exp(np.clip(self.scale_model_.predict(x), *self.log_scale_range_))
        dist = pd.DataFrame(
            {
                "mean": center + scale * self.z_mean_,
                "std": scale * self.z_std_,
                **{c: center + scale * q for c, q in zip(QUANTILE_COLUMNS, self.z_quantiles_)},
                # P(center + scale*z > 0) under the empirical law of z.
                "p_up": 1.0
                - np.searchsorted(self.z_sorted_, -center / scale, side="right") / len(self.z_sorted_),
            }
        )
        return finish(frame, dist[list(DISTRIBUTION_COLUMNS)])


class QuantileLinearForecaster(Forecaster):
    """One exact linear quantile regression per level (Frisch-Newton interior point, ``quantreg.py``) on
    standardized features.

    Training rows beyond ``max_rows`` are subsampled with the seed, which keeps the fit to a few
    seconds on a full universe; the quantile estimates barely move at that sample size.
    """

    name = "quantile_linear"
    reads_history = False
    defaults = {"max_rows": 8_000, "max_iter": 50}

    def fit(self, frame: pd.DataFrame) -> "QuantileLinearForecaster":
        """Fit one coefficient vector per quantile level; levels whose duality gap had not closed within
        ``max_iter`` Newton steps are listed in ``iteration_limit_levels``."""
        rows = self.fit_rows(frame, self.max_rows)
        x = self.prep_.standardized(rows)
        # Constant columns make the Newton systems singular; they carry nothing anyway.
        self.active_ = np.flatnonzero(x.std(axis=0) > 1e-12)
        design = np.column_stack([np.ones(len(x)), x[:, self.active_]])
        y = rows[TARGET].to_numpy(dtype="float64")
        coefs = []
        self.iteration_limit_levels = []
        for level in QUANTILE_LEVELS:
            coef, _, converged = quantile_regression(design, y, level, max_iter=self.max_iter)
            if not converged:
                self.iteration_limit_levels.append(level)
            coefs.append(coef)
        self.coef_ = np.column_stack(coefs)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predicted quantiles (crossings rearranged) turned into the distribution columns."""
        x = self.prep_.standardized(frame)[:, self.active_]
        quantiles = np.column_stack([np.ones(len(x)), x]) @ self.coef_
        return finish(frame, quantile_distribution(quantiles))
