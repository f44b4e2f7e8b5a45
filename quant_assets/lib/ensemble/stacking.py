"""Stacked quantile averaging: per horizon, simplex weights minimizing the quantile CRPS of the Vincentized
combination ``q = sum_m w_m q_m``, shrunk toward a prior (more so with little history); the combination itself;
the members implausible against the reference; and the out-of-fold (cross-fitted) ensemble of the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from quant_assets.lib.ensemble.frames import LEVELS, PREDICTION_REQUIRED, by_model, horizon_order, key_columns, require
from quant_assets.lib.ensemble.history import effective_rows, usable_history
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, QUANTILE_COLUMNS
from quant_assets.lib.walk_forward.scoring import crps_quantiles

DEFAULT_SHRINKAGE = 50.0  # pseudo-count of effective rows pulling toward equal weights / no adjustment
DEFAULT_MIN_ROWS = 20.0  # effective rows below which stacking keeps its prior weights
CROSS_FIT_FOLDS = 5  # blocks of earlier windows (or dates) for out-of-fold ensembles
# A model whose P10-P90 spread is beyond these multiples of the reference's is implausible at that horizon.
SPREAD_BOUNDS = (1.0 / 3.0, 3.0)
# ...or whose median sits further than this many reference P10-P90 spreads from the reference's median.
MAX_MEDIAN_SHIFT = 1.0


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
        horizons = sorted(history["horizon"].unique(), key=horizon_order)
    return {h: stack(history, list(models), h, shrinkage, min_rows).weights for h in horizons}


def combine(preds: pd.DataFrame, weights) -> pd.DataFrame:
    """The weighted ensemble distribution per (symbol, date, horizon) of a predictions frame.

    ``weights`` is ``{horizon: {model: weight}}`` (or one ``{model: weight}`` for every horizon). Quantiles
    are averaged level by level (Vincentization, monotone when the inputs are); ``mean``, ``std`` and
    ``p_up`` are those of the weighted mixture. Where a model has no row for a key its weight is spread
    over the models present; where only zero-weight models are present they count equally. Returns the
    key columns (``window_start`` too when present), ``DISTRIBUTION_COLUMNS`` and ``n_models``.
    """
    require(preds, PREDICTION_REQUIRED, "the predictions frame")
    keys = key_columns(preds)
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
        index, values = by_model(group, models, DISTRIBUTION_COLUMNS)  # values: n x M x C
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


def implausible_members(preds: pd.DataFrame, reference: str, *, bounds=SPREAD_BOUNDS,
                        max_shift: float = MAX_MEDIAN_SHIFT) -> dict[str, dict[str, str]]:
    """Per horizon, the members whose distribution is implausible against ``reference``'s, with the reason.

    On the rows both predict, a member's median P10-P90 spread over the reference's must lie within
    ``bounds``, and the median distance between the two medians must stay within ``max_shift`` reference
    spreads (a forecast of a -94% median year from a model that learned on a few crashes is not a forecast).
    """
    out: dict[str, dict[str, str]] = {}
    keys = key_columns(preds)
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


@dataclass
class Stack:
    """One horizon's stacking weights and how they were reached: the unshrunk optimum, the shrinkage, the history
    used (raw and effective rows), the CRPS of equal and of stacked weights, and why it fell back, if it did."""

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
        index, values = by_model(rows, models, QUANTILE_COLUMNS)
        complete = np.all(np.isfinite(values), axis=(1, 2))
        realized = rows.drop_duplicates(key_columns(rows)).set_index(key_columns(rows))["realized"]
        y = realized.reindex(index).to_numpy(dtype="float64")[complete]
        folds = index.get_level_values(fold_key)[complete] if fold_key else None
        return cls(np.sort(values[complete], axis=2), y, np.asarray(index.get_level_values("date")[complete]), folds)

    def without(self, block) -> "_StackRows":
        """The rows whose fold-key value is not in ``block``: what ``of`` gives on the history without them."""
        keep = ~self.folds.isin(block)
        return _StackRows(self.q[keep], self.y[keep], self.dates[keep], self.folds[keep])


def stack(history: pd.DataFrame, models: list[str], horizon: str, shrinkage: float, min_rows: float,
          prior: Mapping[str, float] | None = None, rows: _StackRows | None = None) -> Stack:
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
        return Stack(start, None, 1.0, n, n_eff, None, None, "a single model")
    if n_eff < min_rows:
        reason = f"{n} complete rows ({n_eff:.1f} effective) < {min_rows:g} effective rows"
        return Stack(start, None, 1.0, n, n_eff, None, None, reason)
    optimal = _optimal_weights(q, y)
    lam = shrinkage / (shrinkage + n_eff)
    w = (1.0 - lam) * optimal + lam * target
    return Stack(
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
        loss = LEVELS * u + beta * np.logaddexp(0.0, -u / beta)
        slope = -(LEVELS - special.expit(-u / beta))
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


def out_of_fold(history: pd.DataFrame, members: dict[str, list[str]], horizons, shrinkage: float, min_rows: float,
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
        weights = {h: stack(history, members[h], h, shrinkage, min_rows, prior, rows=laid_out[h].without(block)).weights
                   for h in horizons}
        parts.append(combine(history[inside], {h: {m: w.get(m, 0.0) for m in history["model"].unique()}
                                               for h, w in weights.items()}))
    return _attach_realized(pd.concat(parts, ignore_index=True), history), key, blocks


def _fold_key(frame: pd.DataFrame) -> str:
    return "window_start" if "window_start" in frame.columns and frame["window_start"].nunique() >= 2 else "date"


def _attach_realized(frame: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    keys = key_columns(frame)
    realized = history.drop_duplicates(keys)[[*keys, "realized"]]
    return frame.merge(realized, on=keys, how="left")
