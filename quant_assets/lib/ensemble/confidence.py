"""The confidence: the probability of a gain over the horizon, calibrated out of fold, or the base rate where the
calibration has shown no skill.

The ensemble's own ``p_up`` is Platt-scaled (a logistic regression on its logit) against the realized gains of
earlier windows' out-of-fold rows. Cross-fitted over the blocks of earlier windows, that calibration is scored
against the base rate: the long-run share of gains of the asset class at the horizon over the training span where
it is given (years of labels, steadier than a few windows dominated by their months' market moves), else the share
of gains in the other blocks. Only where its out-of-fold Brier score is below the base rate's is the calibrated
probability what is shown; otherwise the base rate is, labelled as such, so a person never reads knowledge into a
number that carries none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from quant_assets.lib.ensemble.history import effective_rows
from quant_assets.lib.vocabulary import BASE_RATE, CALIBRATED
CONFIDENCE_COLUMNS: tuple[str, ...] = ("confidence", "prob_gain", "prob_gain_base_rate", "confidence_source")
# Gains and losses (each) and effective rows of history needed before a calibration may be fitted or judged.
MIN_OUTCOMES = 20
MIN_EFFECTIVE_ROWS = 30.0
_CLIP = 1e-4


def gains(realized) -> np.ndarray:
    """Whether each realized log return is a gain (``> 0``)."""
    return np.asarray(realized, dtype="float64") > 0


@dataclass(frozen=True)
class GainCalibration:
    """Platt scaling of ``p_up``: ``expit(intercept + slope * logit(p_up))``."""

    intercept: float = 0.0
    slope: float = 1.0

    def predict(self, p_up) -> np.ndarray:
        """The calibrated probability of a gain for each ``p_up``."""
        return special.expit(self.intercept + self.slope * _logit(p_up))


def fit_gain_calibration(p_up, gain) -> GainCalibration:
    """Platt-scale ``p_up`` on realized gains; the identity with fewer than ``MIN_OUTCOMES`` gains or losses."""
    y = np.asarray(gain, dtype=bool)
    if min(int(y.sum()), int((~y).sum())) < MIN_OUTCOMES:
        return GainCalibration()
    model = LogisticRegression(C=1.0).fit(_logit(p_up)[:, None], y)
    return GainCalibration(float(model.intercept_[0]), float(model.coef_[0, 0]))


def confidence_evaluation(rows: pd.DataFrame, key: str, blocks: list[np.ndarray], base_rate: float | None = None) -> dict:
    """Out of fold over ``blocks`` (values of ``rows[key]``): the Brier score of the calibrated ``p_up`` (fitted on
    the other blocks) and of the base rate (``base_rate``, or the share of gains in the other blocks), the AUC of
    ``p_up`` for a gain, the rows and the effective rows. ``rows`` carries ``p_up``, ``realized``, ``date`` and
    ``horizon``; empty with fewer than two blocks."""
    if len(blocks) < 2 or rows.empty or key not in rows.columns:
        return {}
    gain = gains(rows["realized"])
    p_up = rows["p_up"].to_numpy(dtype="float64")
    calibrated, base = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for block in blocks:
        inside = rows[key].isin(block).to_numpy()
        if not inside.any() or inside.all():
            continue
        calibrated[inside] = fit_gain_calibration(p_up[~inside], gain[~inside]).predict(p_up[inside])
        base[inside] = gain[~inside].mean() if base_rate is None else base_rate
    ok = np.isfinite(calibrated)
    if min(int(gain[ok].sum()), int((~gain[ok]).sum())) < MIN_OUTCOMES:
        return {}
    y = gain[ok].astype("float64")
    return {
        "rows": int(ok.sum()),
        "effective_rows": effective_rows(rows["date"].to_numpy()[ok], y, str(rows["horizon"].iloc[0])),
        "brier_calibrated": float(np.mean((calibrated[ok] - y) ** 2)),
        "brier_base_rate": float(np.mean((base[ok] - y) ** 2)),
        "auc_p_up": float(roc_auc_score(y, p_up[ok])),
    }


@dataclass(frozen=True)
class GainProbability:
    """One horizon's probabilities of a gain: the calibrated one, the base rate and which is shown (``source``)."""

    calibrated: np.ndarray
    base_rate: float
    source: str
    reason: str
    evaluation: dict

    @property
    def shown(self) -> np.ndarray:
        """What is stored as ``confidence`` and shown: the calibrated probability, or the base rate."""
        return self.calibrated if self.source == CALIBRATED else np.full(len(self.calibrated), self.base_rate)

    def columns(self) -> dict[str, object]:
        """The ``CONFIDENCE_COLUMNS`` of the horizon's rows."""
        return {"confidence": self.shown, "prob_gain": self.calibrated,
                "prob_gain_base_rate": np.full(len(self.calibrated), self.base_rate), "confidence_source": self.source}


def gain_probability(history: pd.DataFrame, p_up_now, evaluation: dict, prior_base_rate: float,
                     long_run_base_rate: float | None = None) -> GainProbability:
    """The probability of a gain of the rows whose ``p_up`` is ``p_up_now``, learned from ``history`` (one horizon's
    earlier rows: ``p_up``, ``realized``) and judged by ``evaluation`` (``confidence_evaluation`` of those rows).

    The base rate is ``long_run_base_rate`` where given, else the share of gains in ``history``
    (``prior_base_rate``, e.g. the random walk's probability of a gain, without ``MIN_OUTCOMES`` gains and losses
    there). The calibrated probability is shown only where its out-of-fold Brier score is below the base rate's on
    at least ``MIN_EFFECTIVE_ROWS`` effective rows."""
    p_up_now = np.asarray(p_up_now, dtype="float64")
    gain = gains(history["realized"]) if len(history) else np.zeros(0, dtype=bool)
    enough = min(int(gain.sum()), int((~gain).sum())) >= MIN_OUTCOMES
    base_rate = float(gain.mean()) if enough else float(prior_base_rate)
    if long_run_base_rate is not None and np.isfinite(long_run_base_rate):
        base_rate = float(long_run_base_rate)
    calibration = fit_gain_calibration(history["p_up"].to_numpy(dtype="float64"), gain) if enough else GainCalibration()
    calibrated = calibration.predict(p_up_now)
    if not evaluation:
        reason = f"{len(history)} earlier rows: too few outcomes to judge a calibration out of fold"
    elif evaluation["effective_rows"] < MIN_EFFECTIVE_ROWS:
        reason = f"{evaluation['effective_rows']:.1f} effective out-of-fold rows < {MIN_EFFECTIVE_ROWS:g}"
    elif evaluation["brier_calibrated"] >= evaluation["brier_base_rate"]:
        reason = (f"out-of-fold Brier {evaluation['brier_calibrated']:.4f} not below the base rate's "
                  f"{evaluation['brier_base_rate']:.4f}")
    else:
        return GainProbability(calibrated, base_rate, CALIBRATED, "", evaluation)
    return GainProbability(calibrated, base_rate, BASE_RATE, reason, evaluation)


def _logit(p) -> np.ndarray:
    return special.logit(np.clip(np.asarray(p, dtype="float64"), _CLIP, 1 - _CLIP))
