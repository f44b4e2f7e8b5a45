"""The meta-ensemble: stacked quantile averaging, conformal recalibration and a calibrated confidence.

Everything here learns only from *earlier* windows' out-of-sample predictions whose labels were realized
before the current window starts, then applies to the current window:

1. ``stacking_weights``: per horizon, simplex weights minimizing the quantile CRPS of the Vincentized
   combination ``q = sum_m w_m q_m``, shrunk toward equal weights (more so with little history).
2. ``combine``: quantile averaging plus mixture mean/std and mixture P(up).
3. ``fit_recalibration`` / ``apply_recalibration``: per central interval (q05-q95, q10-q90, q25-q75), a
   symmetric scale-normalized widening or narrowing so that its coverage on earlier windows matches its
   nominal share (conformalized quantile regression); the median stays.
4. ``agreement_features`` / ``fit_confidence`` / ``predict_confidence``: the probability that the
   ensemble's direction is right, from a calibrated logistic regression on model agreement.

History size is counted in *effective* rows, ``rows / horizon sessions / design effect``: consecutive
dates' labels overlap by all but one step, so a year of daily 1y labels is about one independent observation
per symbol; and symbols move together on a date (the market), so a cross-section of m outcomes with
intraclass correlation rho counts as ``m / (1 + (m - 1) rho)`` (Kish's design effect). Without the second
factor a single month's market move, seen in every symbol, would pass for hundreds of observations.
Every fallback (equal weights, no recalibration, agreement-based confidence) is reported in ``info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quant_assets.lib.models.base import (
    DISTRIBUTION_COLUMNS,
    HORIZON_BY_LABEL,
    QUANTILE_COLUMNS,
    QUANTILE_LEVELS,
    quantile_distribution,
)
from quant_assets.lib.walk_forward.scoring import crps_quantiles

PREDICTION_REQUIRED: tuple[str, ...] = ("model", "symbol", "date", "horizon", *DISTRIBUTION_COLUMNS)
FEATURE_COLUMNS: tuple[str, ...] = ("agreement", "dispersion", "strength")
DEFAULT_SHRINKAGE = 50.0  # pseudo-count of effective rows pulling toward equal weights / no adjustment
DEFAULT_MIN_ROWS = 20.0  # effective rows below which stacking keeps its prior weights
# Conformal recalibration works from fewer rows: its level rises toward the largest past miss when n_eff is small.
RECALIBRATION_MIN_ROWS = 10.0
CONFIDENCE_MIN_ROWS = 30.0  # effective rows (and 20 raw hits and misses) needed to fit the confidence model
CROSS_FIT_FOLDS = 5  # blocks of earlier windows (or dates) for out-of-fold ensembles
# A model whose P10-P90 spread is beyond these multiples of the reference's is implausible at that horizon.
SPREAD_BOUNDS = (1.0 / 3.0, 3.0)
# ...or whose median sits further than this many reference P10-P90 spreads from the reference's median.
MAX_MEDIAN_SHIFT = 1.0
# Blocks of a horizon's length of out-of-fold history before its forecast means may move sizing off the prior.
SKILL_MIN_BLOCKS = 4
FALLBACK_SLOPE = 0.2  # deliberately modest: unvalidated agreement is weak evidence of a right call
_LEVELS = np.asarray(QUANTILE_LEVELS)
# The quantile-implied sigma used to normalize conformity scores (q90 - q10 of a normal is 2.563 sigma).
_Z_SPAN = float(stats.norm.ppf(0.90) - stats.norm.ppf(0.10))


def stacking_weights(
    history: pd.DataFrame,
    models,
    *,
    shrinkage: float = DEFAULT_SHRINKAGE,
    min_rows: float = DEFAULT_MIN_ROWS,
    as_of=None,
    horizons=None,
) -> dict[str, dict[str, float]]:
    """Per horizon, the weight of each of ``models`` in the quantile-averaged ensemble.

    ``history`` holds earlier windows' predictions (``model, symbol, date, horizon``, the distribution
    columns, ``realized`` and optionally ``label_end``). Rows with a null ``realized``, and when ``as_of``
    is given rows whose ``label_end`` is null or on/after ``as_of``, are dropped. Only (symbol, date)
    keys predicted by every model are used. The CRPS-optimal simplex weights ``w*`` are shrunk to
    ``(1 - lam) w* + lam / M`` with ``lam = shrinkage / (shrinkage + n_eff)``; with fewer than
    ``min_rows`` effective rows the weights are equal. ``horizons`` defaults to those in ``history``.
    """
    history = usable_history(history, as_of)
    if horizons is None:
        horizons = sorted(history["horizon"].unique(), key=_horizon_order)
    return {h: _stack(history, list(models), h, shrinkage, min_rows).weights for h in horizons}


def combine(preds: pd.DataFrame, weights) -> pd.DataFrame:
    """The weighted ensemble distribution per (symbol, date, horizon) of a predictions frame.

    ``weights`` is ``{horizon: {model: weight}}`` (or one ``{model: weight}`` for every horizon). Quantiles
    are averaged level by level (Vincentization, monotone when the inputs are); ``mean``, ``std`` and
    ``p_up`` are those of the weighted mixture. Where a model has no row for a key its weight is spread
    over the models present; where only zero-weight models are present they count equally. Returns the
    key columns (``window_start`` too when present), ``DISTRIBUTION_COLUMNS`` and ``n_models``.
    """
    _require(preds, PREDICTION_REQUIRED, "the predictions frame")
    keys = _keys(preds)
    flat = bool(weights) and all(isinstance(v, (int, float, np.floating)) for v in weights.values())
    parts = []
    for horizon, group in preds.groupby("horizon", sort=False):
        table = weights if flat else weights.get(horizon)
        if table is None:
            raise ValueError(f"combine: no ensemble weights for horizon {horizon!r}")
        models = sorted(group["model"].unique())
        w = np.array([float(table.get(m, 0.0)) for m in models])
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError(f"combine: weights for horizon {horizon!r} must be finite and non-negative")
        index, values = _wide(group, models, DISTRIBUTION_COLUMNS)  # values: n x M x C
        present = np.all(np.isfinite(values), axis=2)
        weight = present * w[None, :]
        total = weight.sum(axis=1, keepdims=True)
        weight = np.where(total > 0, weight, present.astype("float64"))
        weight = weight / weight.sum(axis=1, keepdims=True)
        values = np.where(present[:, :, None], values, 0.0)
        col = {c: i for i, c in enumerate(DISTRIBUTION_COLUMNS)}
        quantiles = np.einsum("nm,nmk->nk", weight, values[:, :, [col[c] for c in QUANTILE_COLUMNS]])
        mean_m, std_m = values[:, :, col["mean"]], values[:, :, col["std"]]
        mean = np.sum(weight * mean_m, axis=1)
        second = np.sum(weight * (std_m**2 + mean_m**2), axis=1)
        out = index.to_frame(index=False)
        out["mean"] = mean
        out["std"] = np.sqrt(np.maximum(second - mean**2, 0.0))
        out[list(QUANTILE_COLUMNS)] = np.sort(quantiles, axis=1)
        out["p_up"] = np.clip(np.sum(weight * values[:, :, col["p_up"]], axis=1), 0.0, 1.0)
        out["n_models"] = present.sum(axis=1)
        parts.append(out)
    if not parts:
        empty = preds[keys].iloc[0:0].reset_index(drop=True)
        return empty.assign(**{c: pd.Series(dtype="float64") for c in DISTRIBUTION_COLUMNS}, n_models=0)
    return pd.concat(parts, ignore_index=True)[[*keys, *DISTRIBUTION_COLUMNS, "n_models"]]


@dataclass
class Recalibration:
    """Per horizon and quantile column, the shift in units of the forecast's quantile-implied sigma;
    ``segments`` holds per horizon the shifts of each segment (asset class) with enough history of its own."""

    adjustments: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)  # horizon -> why it is left unadjusted
    segments: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    borrowed: dict[str, str] = field(default_factory=dict)  # horizon -> the shorter horizon whose widening it took


def fit_recalibration(history_combined: pd.DataFrame, *, min_rows: float = RECALIBRATION_MIN_ROWS,
                      horizons=None) -> Recalibration:
    """Learn per horizon and central interval ``[q_lo, q_hi]`` the symmetric widening ``E`` making
    ``[q_lo - E s, q_hi + E s]`` cover its nominal share (conformalized quantile regression, Romano et al.).

    ``history_combined`` is earlier windows' ensemble (``horizon``, quantile columns, ``realized``), built
    out of sample (cross-fitted: each row combined with weights not fitted on it). The conformity score of a
    row is ``max(q_lo - realized, realized - q_hi) / s`` with ``s = (q90 - q10) / 2.563``, so the adjustment
    scales with each forecast's own spread; ``E`` is the empirical quantile of the scores at
    ``conformal_level(nominal, n_eff)``: with short history that level rises toward 1 (a conservative
    widening toward nominal coverage, never a pull back to the raw width); it may be negative
    (narrowing) once history shows the intervals too wide. The median
    is not moved: a location shift learned from a few earlier windows mostly replays their market's drift.
    Horizons with fewer than ``min_rows`` effective rows are left as is.

    With a ``segment`` column (the asset class), each segment with ``min_rows`` effective rows of its own
    also gets its own shifts (Mondrian conformal prediction): models pooled over equities and crypto can be
    too wide on one and too narrow on the other, which one pooled widening cannot fix. Segments with less
    history take the pooled shifts.
    """
    _require(history_combined, ("horizon", *QUANTILE_COLUMNS, "realized"), "the combined history frame")
    known = history_combined[np.isfinite(history_combined["realized"].astype("float64"))]
    result = Recalibration()
    for horizon, group in known.groupby("horizon", sort=False):
        n_eff = effective_rows(group["date"], group["realized"], horizon)
        result.rows[horizon] = len(group)
        if n_eff < min_rows:
            result.fallback[horizon] = f"{len(group)} rows ({n_eff:.1f} effective) < {min_rows:g} effective rows"
            continue
        result.adjustments[horizon] = _conformal_shifts(group, n_eff)
        if "segment" not in group.columns:
            continue
        for segment, rows in group.groupby("segment", sort=True):
            segment_eff = effective_rows(rows["date"], rows["realized"], horizon)
            if segment_eff >= min_rows:
                result.segments.setdefault(horizon, {})[str(segment)] = _conformal_shifts(rows, segment_eff)
    ordered = sorted(set(horizons or []) | set(result.rows), key=_horizon_order)
    for i, horizon in enumerate(ordered):
        if horizon in result.adjustments:
            continue
        result.fallback.setdefault(horizon, "no realized history")
        donor = next((h for h in reversed(ordered[:i]) if h in result.adjustments and h not in result.borrowed), None)
        if donor is not None:
            shifts = result.adjustments[donor]
            lower = len(QUANTILE_COLUMNS) // 2  # q05, q10, q25 move down, q75, q90, q95 up, the median stays
            result.adjustments[horizon] = {c: min(shifts[c], 0.0) if j < lower else max(shifts[c], 0.0)
                                           for j, c in enumerate(QUANTILE_COLUMNS)}
            result.borrowed[horizon] = donor
    return result


def conformal_level(nominal: float, n_eff: float) -> float:
    """The score quantile a split-conformal interval of ``nominal`` coverage uses with ``n_eff`` independent
    calibration outcomes: ``ceil((n_eff + 1) nominal) / n_eff``, capped at 1.

    Counting effective rather than raw rows makes short histories conservative: the interval is widened
    toward the largest past miss, and the extra widening fades as history grows (Romano et al. 2019, with
    the sample size discounted for overlapping labels and common market moves).
    """
    if n_eff <= 0:
        return 1.0
    return float(min(np.ceil((n_eff + 1.0) * nominal) / n_eff, 1.0))


def _conformal_shifts(rows: pd.DataFrame, n_eff: float) -> dict[str, float]:
    """The shrunk split-conformal widening of each central interval on ``rows`` (see ``fit_recalibration``)."""
    q = np.sort(rows[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"), axis=1)
    y = rows["realized"].to_numpy(dtype="float64")
    n, spread = len(y), _spread(q)
    shifts = dict.fromkeys(QUANTILE_COLUMNS, 0.0)
    for lo in range(len(_LEVELS) // 2):
        hi = len(_LEVELS) - 1 - lo
        scores = np.maximum(q[:, lo] - y, y - q[:, hi]) / spread
        level = conformal_level(_LEVELS[hi] - _LEVELS[lo], n_eff)
        widening = float(np.quantile(scores, level))
        shifts[QUANTILE_COLUMNS[lo]], shifts[QUANTILE_COLUMNS[hi]] = -widening, widening
    return shifts


def apply_recalibration(frame: pd.DataFrame, recalibration: Recalibration) -> pd.DataFrame:
    """Shift the quantiles of ``frame`` by the fitted adjustments, keeping them monotone.

    Quantiles are sorted after the shift (a monotone rearrangement). ``mean``, ``std`` and ``p_up`` move
    with the quantiles: by the change in the mean, std ratio and P(up) of the piecewise-linear law of
    ``base.quantile_distribution`` before and after, so the mixture information they carry is kept.
    Rows whose ``segment`` has shifts of its own take those. Horizons without adjustments are returned unchanged.
    """
    _require(frame, ("horizon", *DISTRIBUTION_COLUMNS), "the ensemble frame")
    out = frame.copy()
    for horizon, shifts in recalibration.adjustments.items():
        mask = (out["horizon"] == horizon).to_numpy()
        if not mask.any():
            continue
        q = np.sort(out.loc[mask, list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"), axis=1)
        shift = np.tile([shifts[c] for c in QUANTILE_COLUMNS], (len(q), 1))
        if "segment" in out.columns:
            segment = out.loc[mask, "segment"].astype(str).to_numpy()
            for name, own in recalibration.segments.get(horizon, {}).items():
                shift[segment == name] = [own[c] for c in QUANTILE_COLUMNS]
        adjusted = np.sort(q + _spread(q)[:, None] * shift, axis=1)
        before, after = quantile_distribution(q), quantile_distribution(adjusted)
        out.loc[mask, list(QUANTILE_COLUMNS)] = adjusted
        out.loc[mask, "mean"] = out.loc[mask, "mean"].to_numpy() + (after["mean"] - before["mean"]).to_numpy()
        out.loc[mask, "std"] = out.loc[mask, "std"].to_numpy() * (after["std"] / before["std"]).to_numpy()
        p_up = out.loc[mask, "p_up"].to_numpy() + (after["p_up"] - before["p_up"]).to_numpy()
        out.loc[mask, "p_up"] = np.clip(p_up, 0.0, 1.0)
    return out


def agreement_features(preds: pd.DataFrame, ensemble: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (symbol, date, horizon): how much the models agree with the ensemble's call.

    ``agreement`` is the share of models whose mean has the ensemble mean's sign (up when > 0),
    ``dispersion`` the spread (population std) of model means over their average std, ``strength`` the
    ensemble's ``|mean| / std``. ``ensemble`` (keys, ``mean``, ``std``) defaults to the equal-weight
    mixture of ``preds``. Returns the keys, ``FEATURE_COLUMNS`` and ``direction`` (+1 up, -1 down).
    """
    _require(preds, PREDICTION_REQUIRED, "the predictions frame")
    if ensemble is None:
        ensemble = combine(preds, {m: 1.0 for m in preds["model"].unique()})
    keys = _keys(preds)
    _require(ensemble, (*keys, "mean", "std"), "the ensemble frame")
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
    _require(features, FEATURE_COLUMNS, "the confidence features frame")
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
    _require(features, FEATURE_COLUMNS, "the confidence features frame")
    if model.estimator is None:
        share = features["agreement"].to_numpy(dtype="float64")
        return np.clip(0.5 + 0.5 * (2.0 * share - 1.0) * model.slope, 0.0, 1.0), True
    if features.empty:
        return np.zeros(0), False
    return model.estimator.predict_proba(_feature_matrix(features))[:, 1], False


def build_ensemble(
    current_preds: pd.DataFrame,
    history_preds: pd.DataFrame | None,
    as_of,
    *,
    shrinkage: float = DEFAULT_SHRINKAGE,
    min_rows: float = DEFAULT_MIN_ROWS,
    seed: int = 0,
    segments: Mapping[str, str] | None = None,
    reference: str | None = None,
    reference_drift_days: Mapping[str, float] | None = None,
    class_growth: Mapping[str, float] | None = None,
    memo: Callable[..., Any] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The calibrated ensemble of the current window and a JSON-ready account of how it was made.

    ``current_preds``: every member's predictions for the current window. ``history_preds``: earlier
    windows' predictions with ``realized`` (and ``label_end``, rows with ``label_end >= as_of`` are
    dropped). ``segments`` maps a symbol to its asset class, for per-class recalibration. ``reference``
    names the member every other is judged against (the random walk): stacking weights shrink toward it
    (so without history the ensemble is the reference), members whose spread or median is implausible
    against it at a horizon are dropped there, and a horizon whose out-of-fold ensemble has not beaten it
    on earlier windows does not drive sizing (``sizing_mean`` is the prior and ``confidence`` the reference's,
    the mean with the standard error of a drift estimated over ``reference_drift_days[horizon]`` days per
    symbol, the reference's training span; a trailing year where not given). ``class_growth`` (per asset
    class, the log of the mean daily gross return over the training span) sets the sizing prior
    (``sizing_prior``), which the ensemble's mean moves off only as far as its out-of-fold skill. ``memo``
    (``memo(fn, *args)``, e.g. a ``memo.DiskMemo``) keeps what is learned from the history alone across calls.

    Per horizon: stacking weights; an out-of-fold (cross-fitted over blocks of earlier windows) ensemble of
    the history, on which the conformal recalibration, the reference comparison and the confidence model
    are learned; spreads made non-decreasing across horizons. Returns per key the distribution columns,
    ``confidence``, ``sizing_mean`` and ``mean_uncertainty`` (the expected return sizing uses and its
    standard error), ``beats_reference`` and (when present in ``current_preds``) ``realized`` and
    ``label_end``; and ``info`` with weights, adjustments, scores, history sizes and every fallback used.
    """
    _require(current_preds, PREDICTION_REQUIRED, "the current predictions frame")
    if current_preds.empty:
        raise ValueError("build_ensemble: the current predictions frame is empty")
    models = sorted(current_preds["model"].unique())
    if reference is not None and reference not in models:
        raise ValueError(f"build_ensemble: the reference {reference!r} has no predictions in the current window")
    horizons = sorted(current_preds["horizon"].unique(), key=_horizon_order)
    if history_preds is None or history_preds.empty:
        history_preds = current_preds.iloc[0:0].assign(realized=np.nan, label_end=pd.NaT)
    history = usable_history(history_preds, as_of)
    history = history[history["model"].isin(models) & history["horizon"].isin(horizons)]
    # A canonical row order: the cross-fitted folds follow it, and a warehouse query returns
    # rows in whatever order they were written, so the same forecasts must give the same ensemble.
    current_preds = current_preds.sort_values([*_keys(current_preds), "model"], ignore_index=True)
    history = history.sort_values([*_keys(history), "model"], ignore_index=True)

    info: dict = {"as_of": str(pd.Timestamp(as_of).date()), "models": models, "reference": reference,
                  "horizons": {}, "fallbacks": []}
    dropped = implausible_members(current_preds, reference) if reference else {}
    members = {h: [m for m in models if m not in dropped.get(h, {})] for h in horizons}
    prior = {reference: 1.0} if reference else None
    stacks = {h: _stack(history, members[h], h, shrinkage, min_rows, prior) for h in horizons}
    weights = {h: {m: stacks[h].weights.get(m, 0.0) for m in models} for h in horizons}
    learn = memo or _call
    past, fold_key, blocks = learn(_out_of_fold, history, members, horizons, shrinkage, min_rows, prior)
    versus = _reference_comparison(past, history, reference, horizons)
    # Never worse than the reference: a horizon whose stack has not beaten it out of fold is the reference alone,
    # unrecalibrated (the recalibration was learned on the stack's errors, not the reference's).
    stacked = [h for h in horizons if versus[h]["beats"]]
    weights.update({h: {m: float(m == reference) for m in models} for h in horizons if h not in stacked})
    current = combine(current_preds, weights)
    if segments is not None:
        current = current.assign(segment=current["symbol"].map(segments))
        past = past.assign(segment=past["symbol"].map(segments))
    recal = fit_recalibration(past[past["horizon"].isin(stacked)], horizons=stacked)
    current, widened_current = widen_with_horizon(apply_recalibration(current, recal))
    past = apply_recalibration(past, recal)

    current_features = agreement_features(current_preds, current)
    past_features = agreement_features(history, past).merge(past[[*_keys(past), "realized", "p_up", "mean"]],
                                                            on=_keys(past))
    confidence = pd.Series(np.nan, index=current_features.index)
    current = current.assign(**_member_uncertainty(current_preds, current, weights))
    current["beats_reference"] = current["horizon"].map(lambda h: versus[h]["beats"]).astype(bool)
    direction_now = current.set_index(_keys(current)).reindex(
        current_features.set_index(_keys(current_features)).index)
    for h in horizons:
        stack = stacks[h]
        fit_rows = past_features[past_features["horizon"] == h].reset_index(drop=True)
        hit = direction_hit(fit_rows["direction"], fit_rows["realized"])
        model = fit_confidence(fit_rows, hit, seed=seed)
        now = (current_features["horizon"] == h).to_numpy()
        evaluation = learn(_confidence_evaluation, fit_rows, hit, fold_key, blocks, seed) if not model.fallback else {}
        confidence.loc[now], used_fallback = predict_confidence(model, current_features[now])
        method = model.method
        if evaluation and evaluation["brier_confidence"] >= evaluation["brier_p_up"]:
            calibration = fit_pup_calibration(direction_probability(fit_rows), hit)
            confidence.loc[now] = calibration.predict(direction_probability(direction_now[now]))
            method = "calibrated_p_up"
            info["fallbacks"].append(f"{h}: confidence is the calibrated p_up (agreement adds nothing out of fold: "
                                     f"Brier {evaluation['brier_confidence']:.4f} vs {evaluation['brier_p_up']:.4f})")
        info["horizons"][h] = {
            "members": members[h],
            "dropped_implausible": dropped.get(h, {}),
            "weights": weights[h],
            "optimal_weights": stack.optimal,
            "shrinkage_lambda": stack.lam,
            "history_rows": stack.rows,
            "history_effective_rows": stack.n_eff,
            "crps_equal_weights": stack.crps_equal,
            "crps_stacked": stack.crps_stacked,
            "out_of_fold": versus[h],
            "recalibration": recal.adjustments.get(h),
            "recalibration_by_segment": recal.segments.get(h, {}),
            "recalibration_rows": recal.rows.get(h, 0),
            "recalibration_borrowed_from": recal.borrowed.get(h),
            "confidence_method": method,
            "confidence_rows": model.rows,
            "confidence_evaluation": evaluation,
            "widened_across_horizons": int(widened_current.get(h, 0)),
        }
        if dropped.get(h):
            info["fallbacks"].append(f"{h}: dropped implausible member(s) {', '.join(sorted(dropped[h]))}")
        if stack.fallback:
            start = "the reference" if reference else "equal weights"
            info["fallbacks"].append(f"{h}: {start} ({stack.fallback})")
        if h in recal.borrowed:
            info["fallbacks"].append(f"{h}: recalibration widening borrowed from {recal.borrowed[h]} "
                                     f"({recal.fallback[h]})")
        elif h in stacked and h not in recal.adjustments:
            reason = recal.fallback.get(h, "no realized history")
            info["fallbacks"].append(f"{h}: no recalibration ({reason})")
        if used_fallback:
            info["fallbacks"].append(f"{h}: agreement-share confidence ({model.reason})")
        if h not in stacked:
            info["fallbacks"].append(f"{h}: the reference alone, and it does not drive sizing ({versus[h]['reason']}): "
                                     f"distribution, expected return and confidence are the reference's")
    current_features = current_features.assign(confidence=confidence.to_numpy())

    keys = _keys(current)
    out = current.merge(current_features[[*keys, "confidence"]], on=keys, how="left")
    out = out.assign(sizing_prior=0.0)
    if reference:
        out, skill = _sizing_from_reference(out, current_preds, past, history, reference, reference_drift_days or {},
                                            class_growth)
        for h, entry in skill.items():
            info["horizons"].setdefault(h, {})["sizing_skill"] = entry
    extras = [c for c in ("realized", "label_end") if c in current_preds.columns]
    if extras:
        out = out.merge(current_preds.drop_duplicates(keys)[[*keys, *extras]], on=keys, how="left")
    return out[[*keys, *DISTRIBUTION_COLUMNS, "confidence", *SIZING_COLUMNS, *extras]], info


def build_class_ensembles(current_preds: pd.DataFrame, history_preds: pd.DataFrame | None, as_of,
                          classes: Mapping[str, str], **options) -> tuple[pd.DataFrame, dict[str, dict]]:
    """``build_ensemble`` once per asset class (``classes`` maps each symbol to its class): stacking weights, the
    comparison with the reference, the recalibration, the confidence and the sizing skill are each the class's own.

    Members' skill differs by class (on the sample, every model beats the random walk at 3m on equities and loses
    to it on crypto), and stacking weights fitted on both classes pooled minimize a CRPS dominated by the class
    with the larger errors (a crypto asset's is several times an equity's): equities would get crypto's weights.
    Returns the rows of every class and, per class, ``build_ensemble``'s account."""
    unknown = sorted(set(current_preds["symbol"]) - set(classes))
    if unknown:
        raise ValueError(f"build_class_ensembles: no asset class for {', '.join(unknown)}")
    frames, info = [], {}
    for name in sorted({classes[s] for s in current_preds["symbol"].unique()}):
        members = [s for s, c in classes.items() if c == name]
        history = None if history_preds is None else history_preds[history_preds["symbol"].isin(members)]
        frame, info[name] = build_ensemble(current_preds[current_preds["symbol"].isin(members)], history, as_of,
                                           segments=classes, **options)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    return combined.sort_values(_keys(combined), ignore_index=True), info


SIZING_COLUMNS: tuple[str, ...] = ("sizing_mean", "mean_uncertainty", "sizing_prior", "beats_reference")


def implausible_members(preds: pd.DataFrame, reference: str, *, bounds=SPREAD_BOUNDS,
                        max_shift: float = MAX_MEDIAN_SHIFT) -> dict[str, dict[str, str]]:
    """Per horizon, the members whose distribution is implausible against ``reference``'s, with the reason.

    On the rows both predict, a member's median P10-P90 spread over the reference's must lie within
    ``bounds``, and the median distance between the two medians must stay within ``max_shift`` reference
    spreads (a forecast of a -94% median year from a model that learned on a few crashes is not a forecast).
    """
    out: dict[str, dict[str, str]] = {}
    keys = _keys(preds)
    for horizon, group in preds.groupby("horizon", sort=False):
        ref = group.loc[group["model"] == reference, [*keys, "q10", "q50", "q90"]]
        joined = group[group["model"] != reference].merge(ref, on=keys, suffixes=("", "_ref"))
        base = (joined["q90_ref"] - joined["q10_ref"]).astype("float64").clip(lower=1e-12)
        medians = pd.DataFrame({"model": joined["model"],
                                "ratio": (joined["q90"] - joined["q10"]).astype("float64") / base,
                                "shift": (joined["q50"] - joined["q50_ref"]).abs().astype("float64") / base,
                                }).groupby("model", sort=True).median()
        for model, ratio, shift in zip(medians.index, medians["ratio"], medians["shift"]):
            if not np.isfinite(ratio) or not bounds[0] <= ratio <= bounds[1]:
                out.setdefault(str(horizon), {})[model] = f"P10-P90 spread {ratio:.2f}x the reference's"
            elif not np.isfinite(shift) or shift > max_shift:
                out.setdefault(str(horizon), {})[model] = f"median {shift:.2f} reference spreads from the reference's"
    return out


def widen_with_horizon(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Make each (symbol, date)'s P10-P90 spread non-decreasing in the horizon (HORIZONS order): a band narrower
    than a shorter horizon's is stretched around its median (mean and p_up follow, as in
    ``apply_recalibration``); returns the frame and the rows widened per horizon."""
    out = frame.copy()
    widened: dict[str, int] = {}
    base = [c for c in _keys(out) if c != "horizon"]
    spread = (out["q90"] - out["q10"]).astype("float64")
    order = sorted(out["horizon"].unique(), key=_horizon_order)
    floor = None
    for h in order:
        mask = (out["horizon"] == h).to_numpy()
        now = pd.Series(spread[mask].to_numpy(), index=pd.MultiIndex.from_frame(out.loc[mask, base]))
        if floor is not None:
            needed = floor.reindex(now.index).to_numpy()
            scale = np.where(np.isfinite(needed) & (needed > now.to_numpy()), needed / np.maximum(now.to_numpy(), 1e-12), 1.0)
            if np.any(scale > 1.0):
                q = out.loc[mask, list(QUANTILE_COLUMNS)].to_numpy(dtype="float64")
                median = q[:, [3]]
                wider = median + (q - median) * scale[:, None]
                before, after = quantile_distribution(q), quantile_distribution(wider)
                out.loc[mask, list(QUANTILE_COLUMNS)] = wider
                out.loc[mask, "std"] = out.loc[mask, "std"].to_numpy() * scale
                out.loc[mask, "mean"] = out.loc[mask, "mean"].to_numpy() + (after["mean"] - before["mean"]).to_numpy()
                p_up = out.loc[mask, "p_up"].to_numpy() + (after["p_up"] - before["p_up"]).to_numpy()
                out.loc[mask, "p_up"] = np.clip(p_up, 0.0, 1.0)
                widened[h] = int(np.sum(scale > 1.0))
                now = now * scale
        floor = now if floor is None else np.maximum(now, floor.reindex(now.index).fillna(-np.inf))
    return out, widened


def _out_of_fold(history: pd.DataFrame, members: dict[str, list[str]], horizons, shrinkage: float, min_rows: float,
                 prior) -> tuple[pd.DataFrame, str, list[np.ndarray]]:
    """The history's ensemble with every block of earlier windows (or of dates, with a single window) combined
    by weights fitted on the other blocks, with ``realized``; the fold-key column and the blocks of its values."""
    key = _fold_key(history)
    if history.empty:
        return _attach_realized(combine(history, {}), history), key, []
    values = np.sort(history[key].unique())
    blocks = [b for b in np.array_split(values, min(CROSS_FIT_FOLDS, len(values))) if len(b)]
    # Laid out once per horizon; each fold's training rows are those outside its block.
    laid_out = {h: _StackRows.of(history, members[h], h, fold_key=key) for h in horizons}
    parts = []
    for block in blocks:
        inside = history[key].isin(block).to_numpy()
        weights = {h: _stack(history, members[h], h, shrinkage, min_rows, prior, rows=laid_out[h].without(block)).weights
                   for h in horizons}
        parts.append(combine(history[inside], {h: {m: w.get(m, 0.0) for m in history["model"].unique()}
                                               for h, w in weights.items()}))
    return _attach_realized(pd.concat(parts, ignore_index=True), history), key, blocks


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _fold_key(frame: pd.DataFrame) -> str:
    return "window_start" if "window_start" in frame.columns and frame["window_start"].nunique() >= 2 else "date"


def _reference_comparison(past: pd.DataFrame, history: pd.DataFrame, reference: str | None, horizons) -> dict:
    """Per horizon: out-of-fold CRPS of the ensemble and of the reference on the same rows, and whether the
    ensemble beat it (needs ``DEFAULT_MIN_ROWS`` effective rows of evidence)."""
    out = {}
    for h in horizons:
        rows = past[past["horizon"] == h]
        entry = {"rows": len(rows), "crps_ensemble": None, "crps_reference": None, "beats": reference is None,
                 "reason": "no reference" if reference is None else ""}
        if len(rows):
            y = rows["realized"].to_numpy(dtype="float64")
            entry["crps_ensemble"] = float(np.mean(crps_quantiles(y, rows[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"))))
        if reference is not None:
            ref = history[(history["model"] == reference) & (history["horizon"] == h)]
            joined = rows[_keys(rows)].merge(ref, on=_keys(rows), how="inner")
            n_eff = effective_rows(joined["date"], joined["realized"], h) if len(joined) else 0.0
            if len(joined):
                entry["crps_reference"] = float(np.mean(crps_quantiles(
                    joined["realized"].to_numpy(dtype="float64"), joined[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"))))
            if n_eff < DEFAULT_MIN_ROWS:
                entry["reason"] = f"{n_eff:.1f} effective out-of-fold rows < {DEFAULT_MIN_ROWS:g}"
            elif entry["crps_ensemble"] >= entry["crps_reference"]:
                entry["reason"] = (f"out-of-fold CRPS {entry['crps_ensemble']:.5f} not below the reference's "
                                   f"{entry['crps_reference']:.5f}")
            else:
                entry["beats"] = True
        out[h] = entry
    return out


def _confidence_evaluation(rows: pd.DataFrame, hit: np.ndarray, key: str, blocks: list[np.ndarray], seed: int) -> dict:
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


def _member_uncertainty(preds: pd.DataFrame, combined: pd.DataFrame, weights) -> dict[str, np.ndarray]:
    """The standard error of the ensemble mean taken as the weighted spread of its members' means around it."""
    keys = _keys(combined)
    rows = preds[[*keys, "model", "mean"]].merge(combined[[*keys, "mean"]].rename(columns={"mean": "ens"}), on=keys)
    rows["w"] = [float(weights.get(h, {}).get(m, 0.0)) for h, m in zip(rows["horizon"], rows["model"])]
    rows["wd"] = rows["w"] * (rows["mean"] - rows["ens"]) ** 2
    sums = rows.groupby(keys, sort=False)[["w", "wd"]].sum()
    spread = np.sqrt(sums["wd"] / sums["w"].where(sums["w"] > 0)).fillna(0.0)
    aligned = spread.reindex(pd.MultiIndex.from_frame(combined[keys])).to_numpy()
    return {"sizing_mean": combined["mean"].to_numpy(), "mean_uncertainty": np.nan_to_num(aligned)}


def _sizing_from_reference(out: pd.DataFrame, preds: pd.DataFrame, past: pd.DataFrame, history: pd.DataFrame,
                           reference: str, drift_days: Mapping[str, float],
                           class_growth: Mapping[str, float] | None) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The expected return sizing uses: the reference's no-information prior (``sizing_prior``), moved toward the
    ensemble's mean by as much as its departures from the prior showed up in outcomes out of fold (per horizon,
    ``forecast_skill``). On horizons that have not beaten the reference the sizing mean is the prior, with the
    standard error of a drift estimated over ``drift_days`` of the horizon (a trailing year by default: the
    reference's spread times ``sqrt(steps / days)``), and the confidence is the reference's own probability of
    the direction it calls. Returns the rows and the skill found per horizon."""
    keys = _keys(out)
    ref = preds[preds["model"] == reference][[*keys, "mean", "std", "p_up"]].rename(
        columns={"mean": "ref_mean", "std": "ref_std", "p_up": "ref_p_up"})
    out = out.merge(ref, on=keys, how="left")
    # A row the reference did not forecast keeps a prior of zero: its mean is shrunk toward no return.
    out["sizing_prior"] = np.nan_to_num(sizing_prior(out, class_growth), nan=0.0)
    past_ref = history[history["model"] == reference][[*_keys(history), "mean", "std"]].rename(
        columns={"mean": "ref_mean", "std": "ref_std"})
    past = past.merge(past_ref, on=_keys(past), how="inner")
    past = past.assign(sizing_prior=sizing_prior(past, class_growth))
    skill = {h: forecast_skill(past[past["horizon"] == h], h) for h in out["horizon"].unique()}
    beta = out["horizon"].map(lambda h: skill[h]["slope"]).to_numpy(dtype="float64")
    prior = out["sizing_prior"].to_numpy(dtype="float64")
    out["sizing_mean"] = prior + beta * (out["sizing_mean"].to_numpy(dtype="float64") - prior)
    out["mean_uncertainty"] = beta * out["mean_uncertainty"].to_numpy(dtype="float64")
    fallback = ~out["beats_reference"].to_numpy(dtype=bool) & out["ref_mean"].notna().to_numpy()
    steps = out["horizon"].map(lambda h: _steps(h)).to_numpy(dtype="float64")
    days = out["horizon"].map(lambda h: float(drift_days.get(h, 252.0))).to_numpy(dtype="float64")
    out.loc[fallback, "sizing_mean"] = out.loc[fallback, "sizing_prior"]
    out.loc[fallback, "mean_uncertainty"] = (out["ref_std"] * np.sqrt(steps / days))[fallback]
    ref_direction = np.where(out["ref_mean"] > 0, out["ref_p_up"], 1.0 - out["ref_p_up"])
    out.loc[fallback, "confidence"] = ref_direction[fallback]
    return out.drop(columns=["ref_mean", "ref_std", "ref_p_up"]), skill


def sizing_prior(frame: pd.DataFrame, class_growth: Mapping[str, float] | None = None) -> np.ndarray:
    """The expected log return sizing starts from without information: every symbol of an asset class (``segment``,
    one class without it) gets the same *arithmetic* expected return, so its log mean is the class's log expected
    gross return less half its own variance (``std`` of ``frame``). The random walk's equal *log* drifts would hand
    the most volatile names the largest arithmetic returns, and Kelly would favour them for their volatility alone.

    The class's log expected gross return at the horizon is ``class_growth[class]`` (per session or day, over the
    training span) times the horizon's steps; for a class without it, the reference's (``ref_mean`` plus half
    ``ref_std`` squared), averaged over the class's symbols on the date."""
    segment = frame["segment"].astype(str) if "segment" in frame.columns else pd.Series("all", index=frame.index)
    arithmetic = frame["ref_mean"].to_numpy(dtype="float64") + 0.5 * frame["ref_std"].to_numpy(dtype="float64") ** 2
    groups = [c for c in _keys(frame) if c != "symbol"]
    per_class = pd.Series(arithmetic, index=frame.index).groupby(
        [frame[c] for c in groups] + [segment], sort=False).transform("mean").to_numpy()
    if class_growth:
        steps = np.asarray([_class_steps(h, c) for h, c in zip(frame["horizon"], segment)], dtype="float64")
        long_run = segment.map(class_growth).to_numpy(dtype="float64") * steps
        per_class = np.where(np.isfinite(long_run), long_run, per_class)
    return per_class - 0.5 * frame["std"].to_numpy(dtype="float64") ** 2


def _class_steps(horizon: str, asset_class: str) -> int:
    """The horizon's length in the class's own steps: days for crypto, sessions otherwise."""
    h = HORIZON_BY_LABEL[horizon]
    return h.crypto_days if asset_class == "crypto" else h.equity_sessions


def forecast_skill(past: pd.DataFrame, horizon: str, min_blocks: int = SKILL_MIN_BLOCKS) -> dict[str, object]:
    """How much of the out-of-fold ensemble's departure from the prior showed up in outcomes at ``horizon``.

    The slope of ``realized - sizing_prior`` on ``mean - sizing_prior`` (through the origin), with a standard
    error clustered in blocks of the horizon's length (overlapping labels and one market day's common move count
    once), and the slope sizing uses: ``b * max(0, 1 - (se / b)^2)`` clipped to [0, 1] (a positive-part
    James-Stein shrinkage of a noisy slope toward no skill), 0 with fewer than ``min_blocks`` blocks. A forecast
    whose cross-section is noise gets ~0, and sizing keeps the prior: Kelly does not bet on it."""
    entry: dict[str, object] = {"rows": len(past), "blocks": 0, "raw_slope": None, "standard_error": None,
                                "slope": 0.0, "reason": ""}
    rows = past[np.isfinite(pd.to_numeric(past["realized"], errors="coerce").astype("float64"))]
    if rows.empty:
        entry["reason"] = "no realized out-of-fold rows"
        return entry
    x = (rows["mean"] - rows["sizing_prior"]).to_numpy(dtype="float64")
    y = (rows["realized"] - rows["sizing_prior"]).to_numpy(dtype="float64")
    dates = pd.to_datetime(rows["date"])
    span_days = max(int(round(_steps(horizon) * 7 / 5)), 1)
    block = ((dates - dates.min()).dt.days // span_days).to_numpy()
    blocks = np.unique(block)
    entry["blocks"] = int(len(blocks))
    sxx = float(np.sum(x * x))
    if len(blocks) < min_blocks or sxx <= 0:
        entry["reason"] = f"{len(blocks)} blocks of {span_days} days < {min_blocks}" if sxx > 0 else "no dispersion"
        return entry
    slope = float(np.sum(x * y) / sxx)
    scores = pd.Series(x * (y - slope * x)).groupby(block).sum().to_numpy()
    se = float(np.sqrt(np.sum(scores**2) * len(blocks) / (len(blocks) - 1)) / sxx)
    shrink = max(0.0, 1.0 - (se / slope) ** 2) if slope > 0 else 0.0
    entry.update(raw_slope=slope, standard_error=se, slope=float(np.clip(slope * shrink, 0.0, 1.0)),
                 reason="" if slope > 0 else "departures from the prior did not show up in outcomes")
    return entry


def usable_history(history: pd.DataFrame, as_of=None) -> pd.DataFrame:
    """Rows of ``history`` with a realized label, known (``label_end < as_of``) when ``as_of`` is given.

    With ``as_of``, ``history`` must carry ``label_end``: without it no row can be shown to be known.
    """
    _require(history, (*PREDICTION_REQUIRED, "realized", *(["label_end"] if as_of is not None else [])),
             "the history frame")
    keep = np.isfinite(pd.to_numeric(history["realized"], errors="coerce").astype("float64").to_numpy())
    if as_of is not None:
        label_end = pd.to_datetime(history["label_end"])
        keep &= (label_end < pd.Timestamp(as_of)).fillna(False).to_numpy()
    return history[keep].reset_index(drop=True)


@dataclass
class _Stack:
    weights: dict[str, float]
    optimal: dict[str, float] | None
    lam: float
    rows: int
    n_eff: float
    crps_equal: float | None
    crps_stacked: float | None
    fallback: str


@dataclass
class _StackRows:
    """One horizon's history with its members side by side: the rows (keys) where every member has all its
    quantiles, their sorted quantiles (n x M x K), outcome, date and fold-key value."""

    q: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    folds: pd.Index | None

    @classmethod
    def of(cls, history: pd.DataFrame, models: list[str], horizon: str, fold_key: str | None = None) -> "_StackRows":
        rows = history[(history["horizon"] == horizon) & history["model"].isin(models)]
        if rows.empty:
            empty = np.zeros((0, len(models), len(QUANTILE_COLUMNS)))
            return cls(empty, np.zeros(0), np.zeros(0, dtype="datetime64[ns]"), pd.Index([]) if fold_key else None)
        index, values = _wide(rows, models, QUANTILE_COLUMNS)
        complete = np.all(np.isfinite(values), axis=(1, 2))
        realized = rows.drop_duplicates(_keys(rows)).set_index(_keys(rows))["realized"]
        y = realized.reindex(index).to_numpy(dtype="float64")[complete]
        folds = index.get_level_values(fold_key)[complete] if fold_key else None
        return cls(np.sort(values[complete], axis=2), y, np.asarray(index.get_level_values("date")[complete]), folds)

    def without(self, block) -> "_StackRows":
        """The rows whose fold-key value is not in ``block``: what ``of`` gives on the history without them."""
        keep = ~self.folds.isin(block)
        return _StackRows(self.q[keep], self.y[keep], self.dates[keep], self.folds[keep])


def _stack(history: pd.DataFrame, models: list[str], horizon: str, shrinkage: float, min_rows: float,
           prior: Mapping[str, float] | None = None, rows: _StackRows | None = None) -> _Stack:
    """CRPS-optimal simplex weights for one horizon, shrunk toward ``prior`` (equal weights by default).
    ``rows``, when given, are the history's ``_StackRows`` for these models and horizon, already laid out."""
    m = len(models)
    target = np.array([float((prior or {}).get(name, 0.0)) for name in models]) if prior else np.full(m, 1.0 / m)
    target = target / target.sum() if target.sum() > 0 else np.full(m, 1.0 / m)
    start = {name: float(x) for name, x in zip(models, target)}
    rows = _StackRows.of(history, models, horizon) if rows is None else rows
    q, y, n = rows.q, rows.y, len(rows.y)
    n_eff = effective_rows(rows.dates, y, horizon) if n else 0.0
    if m == 1:
        return _Stack(start, None, 1.0, n, n_eff, None, None, "a single model")
    if n_eff < min_rows:
        reason = f"{n} complete rows ({n_eff:.1f} effective) < {min_rows:g} effective rows"
        return _Stack(start, None, 1.0, n, n_eff, None, None, reason)
    optimal = _optimal_weights(q, y)
    lam = shrinkage / (shrinkage + n_eff)
    w = (1.0 - lam) * optimal + lam * target
    return _Stack(
        {name: float(x) for name, x in zip(models, w)},
        {name: float(x) for name, x in zip(models, optimal)},
        float(lam), n, float(n_eff), _mean_crps(q, y, np.full(m, 1.0 / m)), _mean_crps(q, y, w), "",
    )


def _mean_crps(q: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Mean quantile CRPS of the combination ``sum_m w_m q[:, m, :]``."""
    return float(np.mean(crps_quantiles(y, np.einsum("nmk,m->nk", q, w))))


def _optimal_weights(q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Simplex weights minimizing the quantile CRPS of ``sum_m w_m q[:, m, :]`` (q is n x M x K).

    The pinball loss is smoothed (softplus with width 1% of the outcome scale) so SLSQP sees a smooth
    convex objective; the result is kept only if it beats equal weights on the exact CRPS.
    """
    n, m, k = q.shape
    scale = max(float(np.std(y)), 1e-12)
    qs, ys, beta = q / scale, y / scale, 0.01

    def objective(w):
        u = ys[:, None] - np.einsum("nmk,m->nk", qs, w)
        loss = _LEVELS * u + beta * np.logaddexp(0.0, -u / beta)
        slope = -(_LEVELS - special.expit(-u / beta))
        return 2.0 * loss.mean(), 2.0 * np.einsum("nk,nmk->m", slope, qs) / (n * k)

    start = np.full(m, 1.0 / m)
    result = optimize.minimize(
        objective, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(m)}],
        options={"maxiter": 300, "ftol": 1e-12},
    )
    w = np.clip(result.x, 0.0, None)
    w = w / w.sum() if w.sum() > 0 else start
    return w if _mean_crps(q, y, w) <= _mean_crps(q, y, start) else start


def _attach_realized(frame: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    keys = _keys(frame)
    realized = history.drop_duplicates(keys)[[*keys, "realized"]]
    return frame.merge(realized, on=keys, how="left")


def _wide(frame: pd.DataFrame, models: list[str], columns) -> tuple[pd.MultiIndex, np.ndarray]:
    """(keys index, n x M x C array) of ``columns`` per key and model; NaN where a model has no row."""
    keys = _keys(frame)
    duplicated = frame.duplicated([*keys, "model"])
    if duplicated.any():
        first = frame.loc[duplicated, [*keys, "model"]].iloc[0].to_dict()
        raise ValueError(f"the predictions frame has several rows for the same key and model, e.g. {first}")
    wide = frame.set_index([*keys, "model"])[list(columns)].astype("float64").unstack("model")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([list(columns), models]))
    values = wide.to_numpy().reshape(len(wide), len(columns), len(models)).transpose(0, 2, 1)
    return wide.index, values


def _spread(q: np.ndarray) -> np.ndarray:
    return np.maximum((q[:, 5] - q[:, 1]) / _Z_SPAN, 1e-8)


def _feature_matrix(features: pd.DataFrame) -> np.ndarray:
    # Clipped so a few extreme ratios (tiny stds) do not dominate the standardization.
    return np.clip(features[list(FEATURE_COLUMNS)].to_numpy(dtype="float64"), 0.0, 10.0)


def _keys(frame: pd.DataFrame) -> list[str]:
    return [*(["window_start"] if "window_start" in frame.columns else []), "symbol", "date", "horizon"]


def effective_rows(dates, realized, horizon: str) -> float:
    """Independent observations among realized labels: rows / horizon sessions / Kish design effect, the
    intraclass correlation of outcomes within a date estimated by one-way ANOVA (clipped to [0, 1])."""
    y = pd.Series(np.asarray(realized, dtype="float64"), index=pd.Index(np.asarray(dates)))
    n = len(y)
    if n == 0:
        return 0.0
    groups = y.groupby(level=0)
    per_date = n / groups.ngroups
    within = float(groups.var(ddof=1).mean()) if per_date > 1 else float("nan")
    between = float(groups.mean().var(ddof=1)) if groups.ngroups > 1 else float("nan")
    icc = 0.0
    if np.isfinite(within) and np.isfinite(between) and between + within > 0:
        between_component = max(between - within / per_date, 0.0)
        icc = between_component / (between_component + within) if between_component + within > 0 else 0.0
    return n / _steps(horizon) / (1.0 + (per_date - 1.0) * icc)


def _steps(horizon: str) -> int:
    return HORIZON_BY_LABEL[horizon].equity_sessions if horizon in HORIZON_BY_LABEL else 1


def _horizon_order(label: str) -> tuple[int, str]:
    order = list(HORIZON_BY_LABEL)
    return (order.index(label) if label in order else len(order), label)


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")
