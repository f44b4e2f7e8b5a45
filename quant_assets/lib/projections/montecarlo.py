"""Monte Carlo projection: correlated scenarios from per-symbol forecast quantiles, and their bands.

Each (symbol, horizon) marginal is the distribution of ``base.quantile_distribution``: linear between the
seven quantiles q05..q95 in probability, normal-like tails beyond q05/q95 (linear in the normal score,
with the slope of the outer quantile pair). Dependence comes from a Gaussian or Student-t copula whose
correlation is estimated from recent residual returns.

Speed: a marginal's quantile function composed with the copula's CDF is one monotone map of the
copula variable, tabulated per (symbol, horizon) on a fine uniform grid and read back by linear
interpolation with integer indexing, so no CDF or inverse CDF is evaluated per draw (the interpolation
error is a few tenths of a percent of the q05-q95 spread at most, at the quantile knots). Draws beyond the
grid (probability ~1e-5 per side) are mapped exactly. The copula is drawn once and read through
every horizon's tables (see ``Scenarios``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS
from quant_assets.lib.vocabulary import HORIZON_BY_LABEL

BAND_LEVELS: dict[str, float] = {"p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p90": 0.90}
PORTFOLIO = "PORTFOLIO"
GRID_POINTS = 1024
_LEVELS = np.asarray(QUANTILE_LEVELS)
_Z_LEVELS = stats.norm.ppf(_LEVELS)
MIN_OVERLAP = 20  # residual dates two symbols must share for their correlation to be estimated


@dataclass
class Scenarios:
    """Simulated log returns: ``returns[horizon]`` is n_scenarios x n_symbols, columns in ``symbols`` order.

    Scenario k is one draw of the copula reused at every horizon (common random numbers): symbol i sits
    at the same quantile of its 1w, 1m, 3m and 1y marginals, so the bands form a coherent fan. Each
    horizon's marginals and cross-sectional dependence are as specified; dependence *across* horizons
    is comonotone by construction, so path statistics between horizons are not meaningful.
    """

    symbols: list[str]
    horizons: list[str]
    returns: dict[str, np.ndarray]
    correlation: np.ndarray
    copula: str
    dof: float
    seed: int
    uncorrelated: list[str] = field(default_factory=list)  # symbols without residual history


def simulate(
    marginals: pd.DataFrame,
    residuals: pd.DataFrame,
    n_scenarios: int = 10_000,
    seed: int = 0,
    copula: str = "t",
    dof: float = 5.0,
    shrinkage: float | None = None,
) -> Scenarios:
    """Draw correlated log-return scenarios for every (symbol, horizon) of ``marginals``.

    ``marginals``: one row per (symbol, horizon) with ``q05..q95`` (other columns ignored); every symbol
    needs every horizon present. ``residuals``: a wide date x symbol frame of recent residual returns
    (NaN allowed) whose correlation (``residual_correlation``) couples the symbols; a symbol without
    enough residual history is simulated independently and listed in ``uncorrelated``. ``copula`` is ``'gaussian'`` or
    ``'t'`` (with ``dof`` degrees of freedom). Seeded: the same inputs and seed give the same scenarios.
    """
    if copula not in ("gaussian", "t"):
        raise ValueError(f"copula must be 'gaussian' or 't', got {copula!r}")
    if copula == "t" and not dof > 0:
        raise ValueError(f"the t copula needs positive degrees of freedom, got {dof}")
    if n_scenarios < 1:
        raise ValueError(f"n_scenarios must be at least 1, got {n_scenarios}")
    symbols, horizons, quantiles = _marginal_array(marginals)
    correlation, uncorrelated = residual_correlation(residuals, symbols, shrinkage=shrinkage)
    chol = np.linalg.cholesky(correlation)
    dof = float(dof) if copula == "t" else float("inf")
    grid = _grid(dof)
    values, slopes = _tables(quantiles, grid, dof)
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n_scenarios, len(symbols))) @ chol.T
    if np.isfinite(dof):
        draws *= np.sqrt(dof / rng.chisquare(dof, size=(n_scenarios, 1)))
    index, frac, outside = _locate(draws, grid)
    returns = {
        horizon: _lookup(index, frac, outside, values[h], slopes[h], quantiles[h], grid, dof)
        for h, horizon in enumerate(horizons)
    }
    return Scenarios(symbols, horizons, returns, correlation, copula, dof, seed, uncorrelated)


def residual_correlation(
    residuals: pd.DataFrame, symbols: list[str], *, shrinkage: float | None = None
) -> tuple[np.ndarray, list[str]]:
    """A positive-definite correlation of ``symbols`` from a wide date x symbol residual frame.

    Pairwise-complete Pearson correlations (pairs sharing fewer than 20 dates count as 0), shrunk toward
    the identity by ``shrinkage`` (default ``d / (d + n)``, d symbols, n the median pairwise overlap),
    then eigenvalues floored at 1e-6 and the diagonal reset to 1. Returns the matrix and the symbols
    left uncorrelated (absent from ``residuals`` or with fewer than 20 finite values).
    """
    d = len(symbols)
    present = [s for s in symbols if s in residuals.columns]
    corr, lam, thin = np.eye(d), shrinkage, [s for s in symbols if s not in residuals.columns]
    if present:
        try:
            data = residuals[present].to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the residuals frame must hold numbers in every symbol column: {error}") from None
        pairwise, overlap = _pairwise_correlation(data)
        idx = [symbols.index(s) for s in present]
        corr[np.ix_(idx, idx)] = pairwise
        thin += [s for s, n in zip(present, np.diag(overlap)) if n < MIN_OVERLAP]
        if lam is None and len(present) >= 2:
            lam = d / (d + max(float(np.median(overlap[np.triu_indices(len(present), 1)])), 1.0))
    lam = 0.0 if lam is None else float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"correlation shrinkage must lie in [0, 1], got {shrinkage}")
    corr = (1.0 - lam) * corr + lam * np.eye(d)
    eigval, eigvec = np.linalg.eigh((corr + corr.T) / 2.0)
    corr = (eigvec * np.maximum(eigval, 1e-6)) @ eigvec.T
    scale = 1.0 / np.sqrt(np.diag(corr))
    corr = corr * scale[:, None] * scale[None, :]
    np.fill_diagonal(corr, 1.0)
    return corr, sorted(thin)


def _pairwise_correlation(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlations over pairwise-complete rows (as ``DataFrame.corr``), 0 below ``MIN_OVERLAP``
    shared rows or for a constant series; and the shared-row counts."""
    finite = np.isfinite(data)
    mask = finite.astype("float64")
    # Centred first so the one-pass moments below do not cancel catastrophically.
    centre = np.sum(np.where(finite, data, 0.0), axis=0) / np.maximum(mask.sum(axis=0), 1.0)
    x = np.where(finite, data - centre, 0.0)
    n = mask.T @ mask
    with np.errstate(divide="ignore", invalid="ignore"):
        sums = x.T @ mask  # [i, j]: sum of series i over the rows where j is known
        squares = (x * x).T @ mask
        mean_i, mean_j = sums / n, sums.T / n
        cov = (x.T @ x) / n - mean_i * mean_j
        var_i, var_j = squares / n - mean_i**2, squares.T / n - mean_j**2
        corr = cov / np.sqrt(var_i * var_j)
    corr = np.where((n >= MIN_OVERLAP) & (var_i > 0) & (var_j > 0) & np.isfinite(corr), corr, 0.0)
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr, n


def marginal_quantile(quantiles: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The marginal quantile function at normal scores ``z`` (probability ``Phi(z)``).

    ``quantiles`` has shape (..., 7) (levels ``QUANTILE_LEVELS``, sorted first); ``z`` has shape (k,)
    (the same scores for every marginal) or (..., k); the result has shape (..., k). Linear in
    probability between q05 and q95; beyond, linear in ``z`` with slope ``(q10 - q05) / (z10 - z05)``
    below and ``(q95 - q90) / (z95 - z90)`` above, as ``base.quantile_distribution``.
    """
    q = np.sort(np.asarray(quantiles, dtype="float64"), axis=-1)
    z = np.asarray(z, dtype="float64")
    # Eight pieces (lower tail, six inner segments, upper tail), each intercept + slope * phi(z).
    piece = np.searchsorted(_Z_LEVELS, z)
    inner = np.clip(piece, 1, len(_LEVELS) - 1)
    phi = (special.ndtr(z) - _LEVELS[inner - 1]) / (_LEVELS[inner] - _LEVELS[inner - 1])
    phi = np.where(piece == 0, z - _Z_LEVELS[0], np.where(piece == len(_LEVELS), z - _Z_LEVELS[-1], phi))
    intercept = np.concatenate([q[..., :1], q[..., :-1], q[..., -1:]], axis=-1)
    slope = np.concatenate([
        np.maximum(q[..., 1:2] - q[..., 0:1], 1e-8) / (_Z_LEVELS[1] - _Z_LEVELS[0]),
        np.diff(q, axis=-1),
        np.maximum(q[..., 6:7] - q[..., 5:6], 1e-8) / (_Z_LEVELS[6] - _Z_LEVELS[5]),
    ], axis=-1)
    if z.ndim == 1:
        return intercept[..., piece] + slope[..., piece] * phi
    return np.take_along_axis(intercept, piece, axis=-1) + np.take_along_axis(slope, piece, axis=-1) * phi


def bands(scenarios: Scenarios, weights=None) -> pd.DataFrame:
    """P10..P90 and P(loss) of log returns per symbol and horizon, plus a ``PORTFOLIO`` row per horizon.

    ``weights`` (symbol -> weight, long-only, summing to at most 1; the rest is cash at 0%) define the
    portfolio: its simple return is ``sum_i w_i (exp(r_i) - 1)``, reported as the log return
    ``log(1 + R)``. Without weights no portfolio rows are added. Columns: ``symbol, horizon, p10, p25,
    p50, p75, p90, prob_loss`` (``prob_loss`` = share of scenarios with a negative return).
    """
    w = _weights(scenarios, weights) if weights is not None else None
    levels = np.array(list(BAND_LEVELS.values()))
    rows = []
    for horizon in scenarios.horizons:
        r = scenarios.returns[horizon]
        table = {"symbol": list(scenarios.symbols), "horizon": horizon}
        q = np.quantile(r, levels, axis=0)
        table.update({name: q[i] for i, name in enumerate(BAND_LEVELS)})
        table["prob_loss"] = np.mean(r < 0, axis=0)
        rows.append(pd.DataFrame(table))
        if w is not None:
            portfolio = np.log1p(np.expm1(r) @ w)
            q = np.quantile(portfolio, levels)
            row = {"symbol": PORTFOLIO, "horizon": horizon, **dict(zip(BAND_LEVELS, q))}
            row["prob_loss"] = float(np.mean(portfolio < 0))
            rows.append(pd.DataFrame([row]))
    return pd.concat(rows, ignore_index=True)


def _marginal_array(marginals: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray]:
    """(symbols, horizons, H x d x 7 sorted quantiles) from the long marginals frame."""
    missing = [c for c in ("symbol", "horizon", *QUANTILE_COLUMNS) if c not in marginals.columns]
    if missing:
        raise ValueError(f"the marginals frame lacks column(s) {missing}")
    if marginals.empty:
        raise ValueError("the marginals frame is empty")
    unknown = sorted(set(marginals["horizon"]) - set(HORIZON_BY_LABEL))
    if unknown:
        raise ValueError(f"the marginals frame has unknown horizon(s) {unknown}; expected {list(HORIZON_BY_LABEL)}")
    symbols = sorted(marginals["symbol"].unique())
    horizons = [h for h in HORIZON_BY_LABEL if h in set(marginals["horizon"])]
    # Plain integer codes rather than a pandas reindex: this runs on every simulation.
    code = np.array([horizons.index(h) for h in marginals["horizon"]]) * len(symbols) + np.searchsorted(
        np.array(symbols, dtype=object), marginals["symbol"].to_numpy(dtype=object))
    counts = np.bincount(code, minlength=len(horizons) * len(symbols))
    if counts.max() > 1:
        h, i = divmod(int(np.argmax(counts)), len(symbols))
        raise ValueError(f"the marginals frame has several rows for symbol {symbols[i]!r}, horizon {horizons[h]!r}")
    full = np.full((len(horizons) * len(symbols), len(QUANTILE_COLUMNS)), np.nan)
    full[code] = marginals[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64")
    bad = np.flatnonzero(~np.isfinite(full).all(axis=1))
    if bad.size:
        h, i = divmod(int(bad[0]), len(symbols))
        raise ValueError(
            f"the marginals frame has no finite quantiles for symbol {symbols[i]!r}, horizon {horizons[h]!r}"
        )
    values = np.sort(full.reshape(len(horizons), len(symbols), len(QUANTILE_COLUMNS)), axis=2)
    return symbols, horizons, values


def _grid(dof: float) -> np.ndarray:
    # Only ~1e-5 of the mass per side falls outside (mapped exactly in _lookup); a wider grid would
    # coarsen the steps where almost all draws land.
    edge = float(stats.t.isf(1e-5, dof)) if np.isfinite(dof) else float(stats.norm.isf(1e-5))
    return np.linspace(-edge, edge, GRID_POINTS)


def _normal_scores(s: np.ndarray, dof: float) -> np.ndarray:
    """Phi^-1(F(s)) for the copula variable's CDF F, accurate in both tails (F(-|s|) is never rounded to 1)."""
    if not np.isfinite(dof):
        return s
    lower = special.ndtri(special.stdtr(dof, -np.abs(s)))
    return np.where(s > 0, -lower, lower)


def _tables(quantiles: np.ndarray, grid: np.ndarray, dof: float) -> tuple[np.ndarray, np.ndarray]:
    """Per horizon, the flattened per-symbol tables of the map at the grid points and its slope per step."""
    values = marginal_quantile(quantiles, _normal_scores(grid, dof))  # H x d x G
    # The last point is never a left neighbour (indices are clipped to G - 2); a zero keeps the stride.
    slopes = np.diff(values, axis=-1, append=values[..., -1:])
    return values.reshape(len(quantiles), -1), slopes.reshape(len(quantiles), -1)


def _locate(draws: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat table index (left grid neighbour, symbol stride included), fraction of a step, and the flat
    positions of draws outside the grid. Works in place on ``draws``."""
    n_sym = draws.shape[1]
    step = grid[1] - grid[0]
    frac = draws
    frac -= grid[0]
    frac *= 1.0 / step
    index = frac.astype(np.intp)
    np.clip(index, 0, GRID_POINTS - 2, out=index)
    frac -= index
    index += (np.arange(n_sym) * GRID_POINTS)[None, :]
    outside = np.zeros(0, dtype=np.intp)
    if frac.min() < 0.0 or frac.max() > 1.0:
        outside = np.flatnonzero((frac < 0.0) | (frac > 1.0))
    return index, frac, outside


def _lookup(index, frac, outside, values, slopes, quantiles, grid, dof) -> np.ndarray:
    """Linear interpolation in the tables (the hot loop), exact mapping for draws outside the grid."""
    out = np.take(slopes, index)
    out *= frac
    out += np.take(values, index)
    if outside.size:
        rows, cols = np.unravel_index(outside, out.shape)
        local = index.ravel()[outside] - cols * GRID_POINTS
        s = (frac.ravel()[outside] + local) * (grid[1] - grid[0]) + grid[0]
        out[rows, cols] = marginal_quantile(quantiles[cols], _normal_scores(s, dof)[:, None])[:, 0]
    return out


def _weights(scenarios: Scenarios, weights) -> np.ndarray:
    """Portfolio weights aligned to ``scenarios.symbols``: long-only, summing to at most 1."""
    table = dict(weights.items()) if hasattr(weights, "items") else None
    if table is None:
        raise ValueError("portfolio weights must be a mapping (or Series) of symbol -> weight")
    unknown = sorted(set(table) - set(scenarios.symbols))
    if unknown:
        raise ValueError(f"portfolio weights name symbol(s) {unknown} that have no scenarios")
    w = np.array([float(table.get(s, 0.0)) for s in scenarios.symbols])
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("portfolio weights must be finite and non-negative (long-only)")
    if w.sum() > 1.0 + 1e-9:
        raise ValueError(f"portfolio weights must sum to at most 1 (the rest is cash); they sum to {w.sum():.6g}")
    return w
