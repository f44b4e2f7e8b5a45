"""Scores of distributional forecasts: CRPS, pinball loss, coverage, Brier score and (rank) IC.

Per-observation scoring rules (``crps_quantiles``, ``pinball_loss``, ``brier``; ``crps_gaussian`` is in ``models.base``)
return one value per forecast, lower is better, and are averaged by the caller; ``coverage`` and the
information coefficients return one figure. ``score_predictions`` turns a predictions frame into the
``forecasts.scores`` rows, one per (model, horizon).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS
from quant_assets.lib.vocabulary import HORIZONS

SCORE_COLUMNS: tuple[str, ...] = ("model", "horizon", "n", "ic", "rank_ic", "crps", "pinball", "coverage_80", "brier")
PREDICTION_COLUMNS: tuple[str, ...] = (
    "model", "horizon", "symbol", "date", "mean", "std", *QUANTILE_COLUMNS, "p_up", "realized",
)
# A correlation across fewer symbols than this says nothing about cross-sectional ranking.
MIN_SYMBOLS_PER_DATE = 3


def pinball_loss(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray = QUANTILE_LEVELS) -> np.ndarray:
    """Pinball (quantile) loss averaged over ``levels``, one value per observation.

    ``quantiles`` is n x k (column j predicts level ``levels[j]``); the loss at level q is
    ``q (y - F_q)`` when ``y >= F_q`` and ``(1 - q)(F_q - y)`` otherwise.
    """
    y = np.atleast_1d(np.asarray(y, dtype="float64"))
    q, alpha = _quantile_arrays(y, quantiles, levels)
    diff = y[:, None] - q
    return np.mean(np.where(diff >= 0, alpha * diff, (alpha - 1.0) * diff), axis=1)


def crps_quantiles(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray = QUANTILE_LEVELS) -> np.ndarray:
    """The CRPS approximated from quantile forecasts: twice the mean pinball loss over ``levels``.

    This is ``scoringrules.crps_quantile`` (Berrisch & Ziel 2023), one value per observation.
    """
    return 2.0 * pinball_loss(y, quantiles, levels)


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of observations inside the closed interval ``[lo, hi]`` (NaN when there is none)."""
    y, lo, hi = (np.asarray(a, dtype="float64") for a in (y, lo, hi))
    if y.size == 0:
        return float("nan")
    return float(np.mean((y >= lo) & (y <= hi)))


def brier(y: np.ndarray, p_up: np.ndarray) -> np.ndarray:
    """Brier score of the probability ``p_up`` that the outcome ``y`` is positive, one value per observation."""
    y, p_up = np.asarray(y, dtype="float64"), np.asarray(p_up, dtype="float64")
    return (p_up - (y > 0)) ** 2


def information_coefficient(frame: pd.DataFrame, prediction: str = "mean", realized: str = "realized") -> float:
    """Pearson correlation of ``prediction`` and ``realized`` across symbols on each date, averaged over dates.

    ``frame`` holds one model and horizon (``date`` plus the two columns). Dates with fewer than three
    symbols or a constant prediction or outcome are skipped; NaN when no date remains.
    """
    return _mean_or_nan(_per_date_correlation(frame, prediction, realized, rank=False))


def rank_ic(frame: pd.DataFrame, prediction: str = "mean", realized: str = "realized") -> float:
    """Spearman correlation (average ranks for ties) per date, averaged; same skipping rules as the IC."""
    return _mean_or_nan(_per_date_correlation(frame, prediction, realized, rank=True))


def score_predictions(pred: pd.DataFrame) -> pd.DataFrame:
    """One ``forecasts.scores`` row per (model, horizon) of a predictions frame.

    Rows whose ``realized`` is null are ignored. Columns: ``n`` (scored rows), ``ic`` and ``rank_ic``
    (of ``mean``), ``crps`` (quantile CRPS over q05..q95), ``pinball`` (mean pinball loss),
    ``coverage_80`` (share of ``realized`` within ``[q10, q90]``) and ``brier`` (of ``p_up``).
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in pred.columns]
    if missing:
        raise ValueError(f"the predictions frame lacks column(s) {missing}")
    frame = pred[list(PREDICTION_COLUMNS)].copy()
    numeric = ["mean", "std", *QUANTILE_COLUMNS, "p_up", "realized"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype("float64")
    frame = frame[frame["realized"].notna()].reset_index(drop=True)
    if frame[["model", "horizon"]].isna().any().any():
        raise ValueError("the predictions frame has rows with a null model or horizon")
    if frame.empty:
        metrics = {c: "float64" for c in SCORE_COLUMNS[3:]}
        return pd.DataFrame(columns=list(SCORE_COLUMNS)).astype({"n": "int64", **metrics})
    y = frame["realized"].to_numpy()
    q = frame[list(QUANTILE_COLUMNS)].to_numpy()
    pinball = pinball_loss(y, q)
    frame["crps"] = 2.0 * pinball
    frame["pinball"] = pinball
    frame["coverage_80"] = ((y >= frame["q10"].to_numpy()) & (y <= frame["q90"].to_numpy())).astype("float64")
    frame["brier"] = brier(y, frame["p_up"].to_numpy())
    keys = ["model", "horizon"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped[["crps", "pinball", "coverage_80", "brier"]].mean()
    out["n"] = grouped.size()
    out["ic"] = _per_date_correlation(frame, "mean", "realized", rank=False, keys=keys).groupby(keys).mean()
    out["rank_ic"] = _per_date_correlation(frame, "mean", "realized", rank=True, keys=keys).groupby(keys).mean()
    out = out.reset_index()
    order = {h.label: i for i, h in enumerate(HORIZONS)}
    out = out.assign(_h=out["horizon"].map(order).fillna(len(order))).sort_values(["model", "_h", "horizon"])
    return out[list(SCORE_COLUMNS)].reset_index(drop=True).astype({"n": "int64"})


def skill(scores: pd.DataFrame, reference: str = "baseline") -> pd.DataFrame:
    """CRPS skill ``1 - crps / crps_ref`` of each model against ``reference``, per horizon.

    Rows are matched on ``horizon`` (and ``window_start`` when present). Returns the key columns,
    ``model``, ``crps``, ``crps_ref`` and ``skill``; positive skill beats the reference. A horizon the
    reference lacks gets a NaN skill.
    """
    missing = [c for c in ("model", "horizon", "crps") if c not in scores.columns]
    if missing:
        raise ValueError(f"the scores frame lacks column(s) {missing}")
    ref = scores[scores["model"] == reference]
    if ref.empty:
        raise ValueError(f"the scores frame has no rows for the reference model {reference!r}")
    keys = [c for c in ("window_start", "horizon") if c in scores.columns]
    if ref.duplicated(keys).any():
        raise ValueError(f"the reference model {reference!r} has several score rows for the same {keys}")
    ref = ref[keys + ["crps"]].rename(columns={"crps": "crps_ref"})
    out = scores[keys + ["model", "crps"]].merge(ref, on=keys, how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["skill"] = 1.0 - out["crps"].astype("float64") / out["crps_ref"].astype("float64")
    return out[[*keys, "model", "crps", "crps_ref", "skill"]]


def newey_west_t(series, lags: int) -> float:
    """t-statistic of the mean of ``series`` with a Newey-West (Bartlett kernel) HAC standard error.

    For the mean of per-date information coefficients whose labels overlap (``lags`` = the horizon's steps):
    plain standard errors would count each overlapping month of daily 1m labels as 21 observations.
    Non-finite values are dropped; NaN with fewer than three values or a zero variance.
    """
    x = np.asarray(series, dtype="float64")
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return float("nan")
    if lags < 0:
        raise ValueError(f"newey_west_t: lags must be non-negative, got {lags}")
    d = x - x.mean()
    lags = int(min(lags, n - 1))
    variance = d @ d / n
    for k in range(1, lags + 1):
        variance += 2.0 * (1.0 - k / (lags + 1.0)) * (d[k:] @ d[:-k]) / n
    return float(x.mean() / np.sqrt(variance / n)) if variance > 0 else float("nan")


def _quantile_arrays(y: np.ndarray, quantiles: np.ndarray, levels) -> tuple[np.ndarray, np.ndarray]:
    q = np.atleast_2d(np.asarray(quantiles, dtype="float64"))
    alpha = np.asarray(levels, dtype="float64")
    if y.ndim != 1 or q.ndim != 2 or q.shape != (y.size, alpha.size):
        raise ValueError(
            f"quantiles must be n x {alpha.size} (one row per observation, one column per level); "
            f"got shape {q.shape} for {y.size} observations"
        )
    if np.any((alpha <= 0) | (alpha >= 1)):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {alpha.tolist()}")
    return q, alpha


def _per_date_correlation(frame: pd.DataFrame, x: str, y: str, *, rank: bool, keys: list[str] | None = None) -> pd.Series:
    """Correlation per (keys, date) over the dates with enough distinct values to define one."""
    keys = list(keys or [])
    missing = [c for c in [*keys, "date", x, y] if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {missing} needed for the information coefficient")
    by = [*keys, "date"]
    data = frame[by].copy()
    data["x"] = pd.to_numeric(frame[x], errors="coerce").astype("float64")
    data["y"] = pd.to_numeric(frame[y], errors="coerce").astype("float64")
    data = data[np.isfinite(data["x"]) & np.isfinite(data["y"])]
    groups = data.groupby(by, sort=True)
    # Distinct-value counts rather than a variance threshold: rounding makes a constant's variance non-zero.
    usable = (groups["x"].transform("size") >= MIN_SYMBOLS_PER_DATE) & (groups["x"].transform("nunique") >= 2) & (
        groups["y"].transform("nunique") >= 2
    )
    data = data[usable]
    if data.empty:
        index = pd.MultiIndex.from_arrays([[] for _ in by], names=by) if keys else None
        return pd.Series(dtype="float64", index=index)
    groups = data.groupby(by, sort=True)
    if rank:
        data[["x", "y"]] = groups[["x", "y"]].rank(method="average")
        groups = data.groupby(by, sort=True)
    dx = data["x"] - groups["x"].transform("mean")
    dy = data["y"] - groups["y"].transform("mean")
    parts = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy})
    for column in by:
        parts[column] = data[column]
    sums = parts.groupby(by, sort=True)[["xy", "xx", "yy"]].sum()
    return (sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])).clip(-1.0, 1.0)


def _mean_or_nan(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")
