"""The probability that the ensemble's called direction is right: a calibrated logistic regression on model
agreement, the calibrated ``p_up`` where agreement adds nothing out of fold, or the visible agreement-share fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quant_assets.lib.ensemble.frames import PREDICTION_REQUIRED, key_columns, require
from quant_assets.lib.ensemble.history import effective_rows
from quant_assets.lib.ensemble.stacking import combine

FEATURE_COLUMNS: tuple[str, ...] = ("agreement", "dispersion", "strength")
CONFIDENCE_MIN_ROWS = 30.0  # effective rows (and 20 raw hits and misses) needed to fit the confidence model
FALLBACK_SLOPE = 0.2  # deliberately modest: unvalidated agreement is weak evidence of a right call


def agreement_features(preds: pd.DataFrame, ensemble: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (symbol, date, horizon): how much the models agree with the ensemble's call.

    ``agreement`` is the share of models whose mean has the ensemble mean's sign (up when > 0),
    ``dispersion`` the spread (population std) of model means over their average std, ``strength`` the
    ensemble's ``|mean| / std``. ``ensemble`` (keys, ``mean``, ``std``) defaults to the equal-weight
    mixture of ``preds``. Returns the keys, ``FEATURE_COLUMNS`` and ``direction`` (+1 up, -1 down).
    """
    require(preds, PREDICTION_REQUIRED, "the predictions frame")
    if ensemble is None:
        ensemble = combine(preds, {m: 1.0 for m in preds["model"].unique()})
    keys = key_columns(preds)
    require(ensemble, (*keys, "mean", "std"), "the ensemble frame")
    ens = ensemble[[*keys, "mean", "std"]].rename(columns={"mean": "ens_mean", "std": "ens_std"})
    rows = preds[[*keys, "mean", "std"]].merge(ens, on=keys, how="inner", validate="many_to_one")
    rows = rows[np.isfinite(rows["mean"].astype("float64")) & np.isfinite(rows["std"].astype("float64"))]
    rows = rows.assign(
        agree=((rows["mean"] > 0) == (rows["ens_mean"] > 0)).astype("float64"),
        mean_sq=rows["mean"].astype("float64") ** 2,
    )
    out = rows.groupby(keys, sort=False).agg(
        agreement=("agree", "mean"),
        model_mean=("mean", "mean"),
        model_mean_sq=("mean_sq", "mean"),
        avg_std=("std", "mean"),
        ens_mean=("ens_mean", "first"),
        ens_std=("ens_std", "first"),
    ).reset_index()
    spread = np.sqrt(np.maximum(out["model_mean_sq"] - out["model_mean"] ** 2, 0.0))
    out["dispersion"] = spread / np.maximum(out["avg_std"], 1e-12)
    out["strength"] = out["ens_mean"].abs() / np.maximum(out["ens_std"], 1e-12)
    out["direction"] = np.where(out["ens_mean"] > 0, 1, -1)
    return out[[*keys, *FEATURE_COLUMNS, "direction"]]


def direction_hit(direction, realized) -> np.ndarray:
    """Whether the called direction (+1 up, -1 down) matched the realized return (up means ``> 0``)."""
    return (np.asarray(direction) > 0) == (np.asarray(realized, dtype="float64") > 0)


@dataclass
class ConfidenceModel:
    """A fitted confidence model, or the visible agreement-share fallback (``estimator is None``)."""

    estimator: object | None
    fallback: bool
    reason: str
    rows: int
    method: str
    slope: float = FALLBACK_SLOPE


def fit_confidence(
    features: pd.DataFrame,
    hit,
    *,
    seed: int = 0,
    min_rows: float = CONFIDENCE_MIN_ROWS,
    slope: float = FALLBACK_SLOPE,
) -> ConfidenceModel:
    """Fit P(direction right | agreement features): a seeded logistic regression, calibrated.

    Calibration is isotonic from 1,000 rows (Platt sigmoid below, where isotonic overfits), by
    3-fold unshuffled stratified cross-fitting (``CalibratedClassifierCV``). History is counted in
    effective rows (``effective_rows`` of the hits, when ``features`` carries ``date`` and ``horizon``):
    with fewer than ``min_rows`` of them, or fewer than 20 hits or misses, returns the fallback
    ``0.5 + 0.5 (2 agreement - 1) slope``.
    """
    require(features, FEATURE_COLUMNS, "the confidence features frame")
    y = np.asarray(hit, dtype=bool)
    if len(y) != len(features):
        raise ValueError(f"fit_confidence: {len(features)} feature rows but {len(y)} hit values")
    n, hits = len(y), int(y.sum())
    n_eff = _hit_effective_rows(features, y)
    if n_eff < min_rows or min(hits, n - hits) < 20:
        reason = (f"{n} rows ({n_eff:.1f} effective) with {hits} hits and {n - hits} misses "
                  f"(need {min_rows:g} effective rows, 20 of each)")
        return ConfidenceModel(None, True, reason, n, "agreement_fallback", slope)
    method = "isotonic" if n >= 1000 else "sigmoid"
    base = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, random_state=seed))
    model = CalibratedClassifierCV(base, method=method, cv=StratifiedKFold(n_splits=3))
    model.fit(_feature_matrix(features), y)
    return ConfidenceModel(model, False, "", n, f"logistic+{method}", slope)


def _hit_effective_rows(features: pd.DataFrame, hit: np.ndarray) -> float:
    if len(hit) == 0:
        return 0.0
    if not {"date", "horizon"} <= set(features.columns):
        return float(len(hit))
    return effective_rows(features["date"].to_numpy(), hit.astype("float64"), str(features["horizon"].iloc[0]))


def direction_probability(frame: pd.DataFrame) -> np.ndarray:
    """The ensemble's own probability that its called direction is right: ``p_up`` if the mean is up, else ``1 - p_up``."""
    p_up = frame["p_up"].to_numpy(dtype="float64")
    return np.where(frame["mean"].to_numpy(dtype="float64") > 0, p_up, 1.0 - p_up)


@dataclass
class PupCalibration:
    """Platt scaling of the direction probability implied by ``p_up`` (logit in, logit out)."""

    intercept: float = 0.0
    slope: float = 1.0

    def predict(self, probability: np.ndarray) -> np.ndarray:
        """The calibrated probability of each direction probability in ``probability``."""
        return special.expit(self.intercept + self.slope * special.logit(np.clip(probability, 1e-4, 1 - 1e-4)))


def fit_pup_calibration(probability: np.ndarray, hit: np.ndarray) -> PupCalibration:
    """Platt-scale the ensemble's direction probability on realized hits (identity with too little data)."""
    y = np.asarray(hit, dtype=bool)
    if len(y) < 20 or y.all() or not y.any():
        return PupCalibration()
    x = special.logit(np.clip(np.asarray(probability, dtype="float64"), 1e-4, 1 - 1e-4))[:, None]
    model = LogisticRegression(C=1.0).fit(x, y)
    return PupCalibration(float(model.intercept_[0]), float(model.coef_[0, 0]))


def predict_confidence(model: ConfidenceModel, features: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """Probability that the ensemble's direction is right, and whether the fallback produced it."""
    require(features, FEATURE_COLUMNS, "the confidence features frame")
    if model.estimator is None:
        share = features["agreement"].to_numpy(dtype="float64")
        return np.clip(0.5 + 0.5 * (2.0 * share - 1.0) * model.slope, 0.0, 1.0), True
    if features.empty:
        return np.zeros(0), False
    return model.estimator.predict_proba(_feature_matrix(features))[:, 1], False


def confidence_evaluation(rows: pd.DataFrame, hit: np.ndarray, key: str, blocks: list[np.ndarray], seed: int) -> dict:
    """Out-of-fold Brier score and AUC of the confidence model, of the calibrated ``p_up`` and of a constant."""
    if len(blocks) < 2 or key not in rows.columns:
        return {}
    conf, pup, const = (np.full(len(rows), np.nan) for _ in range(3))
    for block in blocks:
        inside = rows[key].isin(block).to_numpy()
        if not inside.any() or inside.all():
            continue
        train = rows[~inside]
        model = fit_confidence(train, hit[~inside], seed=seed)
        conf[inside], _ = predict_confidence(model, rows[inside])
        pup[inside] = fit_pup_calibration(direction_probability(train), hit[~inside]).predict(direction_probability(rows[inside]))
        const[inside] = hit[~inside].mean()
    ok = np.isfinite(conf) & np.isfinite(pup)
    if ok.sum() < 20 or hit[ok].all() or not hit[ok].any():
        return {}
    y = hit[ok].astype("float64")
    raw = direction_probability(rows[ok])
    return {
        "rows": int(ok.sum()),
        "brier_confidence": float(np.mean((conf[ok] - y) ** 2)),
        "brier_p_up": float(np.mean((pup[ok] - y) ** 2)),
        "brier_constant": float(np.mean((const[ok] - y) ** 2)),
        "auc_confidence": float(roc_auc_score(y, conf[ok])),
        "auc_p_up": float(roc_auc_score(y, raw)),
    }


def _feature_matrix(features: pd.DataFrame) -> np.ndarray:
    # Clipped so a few extreme ratios (tiny stds) do not dominate the standardization.
    return np.clip(features[list(FEATURE_COLUMNS)].to_numpy(dtype="float64"), 0.0, 10.0)
