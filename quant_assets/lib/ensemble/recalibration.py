"""Conformal recalibration of the ensemble's central intervals, and bands made non-decreasing across horizons.

Per central interval (q05-q95, q10-q90, q25-q75), a symmetric scale-normalized widening or narrowing so that its
coverage on earlier windows matches its nominal share (conformalized quantile regression); the median stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from quant_assets.lib.ensemble.frames import LEVELS, horizon_order, key_columns, require
from quant_assets.lib.ensemble.history import effective_rows
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS, quantile_distribution

# Conformal recalibration works from fewer rows: its level rises toward the largest past miss when n_eff is small.
RECALIBRATION_MIN_ROWS = 10.0
# The quantile-implied sigma used to normalize conformity scores (q90 - q10 of a normal is 2.563 sigma).
_Z_SPAN = float(stats.norm.ppf(0.90) - stats.norm.ppf(0.10))


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
    require(history_combined, ("horizon", *QUANTILE_COLUMNS, "realized"), "the combined history frame")
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
    ordered = sorted(set(horizons or []) | set(result.rows), key=horizon_order)
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
    spread = _spread(q)
    shifts = dict.fromkeys(QUANTILE_COLUMNS, 0.0)
    for lo in range(len(LEVELS) // 2):
        hi = len(LEVELS) - 1 - lo
        scores = np.maximum(q[:, lo] - y, y - q[:, hi]) / spread
        level = conformal_level(LEVELS[hi] - LEVELS[lo], n_eff)
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
    require(frame, ("horizon", *DISTRIBUTION_COLUMNS), "the ensemble frame")
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
        _move_quantiles(out, mask, q, np.sort(q + _spread(q)[:, None] * shift, axis=1))
    return out


def widen_with_horizon(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Make each (symbol, date)'s P10-P90 spread non-decreasing in the horizon (HORIZONS order): a band narrower
    than a shorter horizon's is stretched around its median (mean and p_up follow, as in
    ``apply_recalibration``); returns the frame and the rows widened per horizon."""
    out = frame.copy()
    widened: dict[str, int] = {}
    base = [c for c in key_columns(out) if c != "horizon"]
    spread = (out["q90"] - out["q10"]).astype("float64")
    order = sorted(out["horizon"].unique(), key=horizon_order)
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
                _move_quantiles(out, mask, q, median + (q - median) * scale[:, None], std_ratio=scale)
                widened[h] = int(np.sum(scale > 1.0))
                now = now * scale
        floor = now if floor is None else np.maximum(now, floor.reindex(now.index).fillna(-np.inf))
    return out, widened


def _move_quantiles(out: pd.DataFrame, mask: np.ndarray, q: np.ndarray, moved: np.ndarray, std_ratio=None) -> None:
    """Set the ``mask`` rows' quantiles ``q`` to ``moved`` in place; ``mean`` and ``p_up`` shift by the change in
    those of ``base.quantile_distribution``'s law, ``std`` scales by ``std_ratio`` (by default that law's ratio)."""
    before, after = quantile_distribution(q), quantile_distribution(moved)
    out.loc[mask, list(QUANTILE_COLUMNS)] = moved
    out.loc[mask, "mean"] = out.loc[mask, "mean"].to_numpy() + (after["mean"] - before["mean"]).to_numpy()
    ratio = (after["std"] / before["std"]).to_numpy() if std_ratio is None else std_ratio
    out.loc[mask, "std"] = out.loc[mask, "std"].to_numpy() * ratio
    p_up = out.loc[mask, "p_up"].to_numpy() + (after["p_up"] - before["p_up"]).to_numpy()
    out.loc[mask, "p_up"] = np.clip(p_up, 0.0, 1.0)


def _spread(q: np.ndarray) -> np.ndarray:
    return np.maximum((q[:, 5] - q[:, 1]) / _Z_SPAN, 1e-8)
