"""The one interface every forecaster follows, and the helpers that turn a model's output into the
distribution frame the warehouse stores.

A forecaster is fitted for one horizon. ``fit(frame)`` takes rows of ``symbol, date`` plus feature
columns plus the ``target`` column (the forward log return of that horizon); ``predict(frame)`` takes
rows with the same feature columns and returns one row per input row with the columns of
``DISTRIBUTION_COLUMNS``. Rows whose prediction needs history (sequence models, GARCH, the baseline)
read it from earlier rows of the same symbol in the frame they are given, so callers pass a frame that
starts early enough and keep only the rows they need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from quant_assets.lib.vocabulary import HORIZON_BY_LABEL, Horizon

QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
QUANTILE_COLUMNS: tuple[str, ...] = ("q05", "q10", "q25", "q50", "q75", "q90", "q95")
DISTRIBUTION_COLUMNS: tuple[str, ...] = ("mean", "std", *QUANTILE_COLUMNS, "p_up")
KEY_COLUMNS: tuple[str, ...] = ("symbol", "date")
TARGET = "target"
# Columns a feature frame may carry that are never model inputs.
NON_FEATURE_COLUMNS = frozenset({"symbol", "date", "asset_class", TARGET, "source"})


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric model inputs of a feature frame, in a stable (sorted) order."""
    return sorted(
        c
        for c in frame.columns
        if c not in NON_FEATURE_COLUMNS and not c.startswith("fwd_") and pd.api.types.is_numeric_dtype(frame[c])
    )


def design_matrix(frame: pd.DataFrame, columns: list[str], fill: pd.Series | None = None) -> np.ndarray:
    """Feature matrix with missing values filled by ``fill`` (training medians) so every row predicts."""
    values = frame[columns].astype("float64")
    if fill is not None:
        values = values.fillna(fill)
    return values.fillna(0.0).to_numpy()


def crps_gaussian(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mean, std^2) at each observation ``y``; a zero ``std`` gives ``|y - mean|``."""
    y, mean, std = (np.asarray(a, dtype="float64") for a in (y, mean, std))
    if np.any(std < 0):
        raise ValueError("crps_gaussian: std must be non-negative; found a negative standard deviation")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (y - mean) / std
        crps = std * (z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1.0 / np.sqrt(np.pi))
    return np.where(std == 0, np.abs(y - mean), crps)


def gaussian_distribution(mean: np.ndarray, std: np.ndarray) -> pd.DataFrame:
    """Distribution columns of a normal law N(mean, std^2)."""
    return student_t_distribution(mean, std, dof=np.inf)


def student_t_distribution(mean: np.ndarray, std: np.ndarray, dof: float) -> pd.DataFrame:
    """Distribution columns of a location-scale Student-t whose standard deviation is ``std``."""
    mean = np.asarray(mean, dtype="float64")
    std = np.maximum(np.asarray(std, dtype="float64"), 1e-8)
    if np.isfinite(dof):
        if dof <= 2:
            raise ValueError(f"Student-t degrees of freedom must exceed 2 for a finite std, got {dof}")
        scale = std / np.sqrt(dof / (dof - 2.0))
        law = stats.t(df=dof)
    else:
        scale = std
        law = stats.norm()
    out = {"mean": mean, "std": std}
    for column, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS):
        out[column] = mean + scale * law.ppf(level)
    out["p_up"] = law.sf(-mean / scale)
    return pd.DataFrame(out)


def quantile_distribution(quantiles: np.ndarray) -> pd.DataFrame:
    """Distribution columns from predicted quantiles (n x 7, levels ``QUANTILE_LEVELS``).

    Crossing quantiles are sorted (a monotone rearrangement); the mean, std and P(up) come from a
    piecewise-linear quantile function with normal tails fitted to the outer quantiles.
    """
    q = np.sort(np.asarray(quantiles, dtype="float64"), axis=1)
    levels = np.asarray(QUANTILE_LEVELS)
    # Integrate the quantile function on a fine grid: linear between known levels, normal beyond.
    grid = (np.arange(200) + 0.5) / 200
    z = stats.norm.ppf
    spread_lo = np.maximum(q[:, 1] - q[:, 0], 1e-8) / (z(0.10) - z(0.05))
    spread_hi = np.maximum(q[:, 6] - q[:, 5], 1e-8) / (z(0.95) - z(0.90))
    # np.interp per row, vectorized: the grid falls in the same level segment for every row.
    right = np.clip(np.searchsorted(levels, grid), 1, len(levels) - 1)
    weight = np.clip((grid - levels[right - 1]) / (levels[right] - levels[right - 1]), 0.0, 1.0)
    inner = q[:, right - 1] * (1.0 - weight) + q[:, right] * weight
    lower = q[:, [0]] + spread_lo[:, None] * (z(grid) - z(0.05))[None, :]
    upper = q[:, [6]] + spread_hi[:, None] * (z(grid) - z(0.95))[None, :]
    values = np.where(grid[None, :] < 0.05, lower, np.where(grid[None, :] > 0.95, upper, inner))
    out = {"mean": values.mean(axis=1), "std": np.maximum(values.std(axis=1), 1e-8)}
    for i, column in enumerate(QUANTILE_COLUMNS):
        out[column] = q[:, i]
    out["p_up"] = (values > 0).mean(axis=1)
    return pd.DataFrame(out)


def finish(frame: pd.DataFrame, distribution: pd.DataFrame) -> pd.DataFrame:
    """Attach ``symbol, date`` of ``frame`` to its distribution rows and enforce monotone quantiles."""
    dist = distribution.reset_index(drop=True).copy()
    dist[list(QUANTILE_COLUMNS)] = np.sort(dist[list(QUANTILE_COLUMNS)].to_numpy(), axis=1)
    dist["p_up"] = dist["p_up"].clip(0.0, 1.0)
    keys = frame[list(KEY_COLUMNS)].reset_index(drop=True)
    return pd.concat([keys, dist[list(DISTRIBUTION_COLUMNS)]], axis=1)


class Forecaster(ABC):
    """A seeded distributional forecaster for one horizon (scikit-learn's fit/predict shape)."""

    name: str = "forecaster"
    # Whether a row's prediction reads earlier rows of its symbol in the frame (GARCH filtering, sequence
    # models, trailing baselines); a row-wise model predicts each row from its own features alone.
    reads_history: bool = True
    # The hyper-parameters and their defaults: the constructor takes any of them by name, and they are what
    # ``params`` logs, so a model names each once.
    defaults: dict[str, object] = {}

    def __init__(self, horizon: str, seed: int = 0, **hyperparameters: object) -> None:
        if horizon not in HORIZON_BY_LABEL:
            raise ValueError(f"unknown horizon {horizon!r}; expected one of {sorted(HORIZON_BY_LABEL)}")
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            raise TypeError(f"{self.name}: unknown hyper-parameter(s) {unknown}; expected some of {sorted(self.defaults)}")
        self.horizon = HORIZON_BY_LABEL[horizon]
        self.seed = seed
        for key, value in {**self.defaults, **hyperparameters}.items():
            setattr(self, key, value)

    @abstractmethod
    def fit(self, frame: pd.DataFrame) -> "Forecaster":
        """Fit on rows with features and ``target``; returns self."""

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row: ``symbol, date`` and ``DISTRIBUTION_COLUMNS``."""

    @property
    def family(self) -> str:
        """statistical, tree, deep or baseline, as the model's catalog entry says."""
        from quant_assets.lib.models import model_entry

        return model_entry(self.name)[2]

    @property
    def kind(self) -> str:
        """The library the model runs on (Dagster's asset kind), as the model's catalog entry says."""
        from quant_assets.lib.models import model_entry

        return model_entry(self.name)[3]

    def params(self) -> dict[str, object]:
        """Hyper-parameters worth logging (MLflow params)."""
        return {"horizon": self.horizon.label, "seed": self.seed, **{key: getattr(self, key) for key in self.defaults}}

    def fit_rows(self, frame: pd.DataFrame, max_rows: int | None = None) -> pd.DataFrame:
        """The training rows (known target, at most ``max_rows`` drawn with the seed); fits ``prep_`` on them."""
        rows = subsample_rows(training_rows(frame, self.name), max_rows, self.seed)
        self.prep_ = FeaturePrep.fit(rows)
        return rows


def subsample_rows(rows: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` of ``rows``, drawn with ``seed`` and kept in their order.

    Daily rows of overlapping forward returns are strongly dependent (a 1m label shares 20 of 21 days with
    the next), so a random subset spread over the whole span loses little information and saves most of
    the fitting time.
    """
    if max_rows is None or len(rows) <= max_rows:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), int(max_rows), replace=False))
    return rows.iloc[keep].reset_index(drop=True)


def training_rows(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The rows of a training frame whose ``target`` is known (finite), with a fresh index."""
    if TARGET not in frame.columns:
        raise ValueError(f"{model}: the training frame has no {TARGET!r} column")
    target = pd.to_numeric(frame[TARGET], errors="coerce").astype("float64")
    known = np.isfinite(target.to_numpy())
    rows = frame.loc[known].reset_index(drop=True).assign(**{TARGET: target.to_numpy()[known]})
    if rows.empty:
        raise ValueError(f"{model}: the training frame has no row with a finite {TARGET!r}")
    return rows


def horizon_steps(frame: pd.DataFrame, horizon: Horizon) -> np.ndarray:
    """Per row, the horizon's length in steps of that row's calendar (sessions or days by ``asset_class``)."""
    if "asset_class" not in frame.columns:
        raise ValueError(f"the frame has no 'asset_class' column, needed to size horizon {horizon.label!r}")
    asset_class = frame["asset_class"].astype("string").fillna("<null>")
    unknown = sorted(set(asset_class.unique()) - {"equity", "crypto"})
    if unknown:
        raise ValueError(f"asset_class must be 'equity' or 'crypto'; found {unknown} in the frame")
    return np.where(asset_class.to_numpy() == "crypto", horizon.crypto_days, horizon.equity_sessions).astype("int64")


@dataclass
class FeaturePrep:
    """Training-time feature handling for tabular models: which columns, the medians that fill
    missing values, and (for linear models) the centre/scale that standardize them.

    An ``is_crypto`` indicator is added when the frame carries ``asset_class``, so a model can tell
    equities (whose ``oc_`` columns are always null) from crypto after median filling.
    """

    columns: list[str]
    medians: pd.Series
    center: np.ndarray
    scale: np.ndarray
    use_asset_class: bool

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> "FeaturePrep":
        """Learn columns, medians and standardization from training rows."""
        columns = feature_columns(frame)
        use_asset_class = "asset_class" in frame.columns
        if not columns and not use_asset_class:
            raise ValueError("the training frame has no numeric feature column")
        values = frame[columns].astype("float64").replace([np.inf, -np.inf], np.nan)
        medians = values.median()
        prep = cls(columns, medians, np.zeros(0), np.ones(0), use_asset_class)
        raw = prep.raw(frame)
        center = raw.mean(axis=0)
        scale = raw.std(axis=0)
        prep.center = center
        prep.scale = np.where(scale > 1e-12, scale, 1.0)
        return prep

    @property
    def names(self) -> list[str]:
        """Column names of the design matrices, in order."""
        return [*self.columns, *(["is_crypto"] if self.use_asset_class else [])]

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Median-filled feature matrix (columns ``names``)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks feature column(s) {missing} that the model was trained on")
        values = frame[self.columns].astype("float64").replace([np.inf, -np.inf], np.nan)
        matrix = design_matrix(values, self.columns, self.medians)
        if self.use_asset_class:
            if "asset_class" not in frame.columns:
                raise ValueError("the frame has no 'asset_class' column, which the model was trained with")
            is_crypto = (frame["asset_class"].astype("string") == "crypto").fillna(False).to_numpy(dtype="float64")
            matrix = np.column_stack([matrix, is_crypto])
        return matrix

    def standardized(self, frame: pd.DataFrame, clip: float = 5.0) -> np.ndarray:
        """Median-filled, standardized and clipped to ``±clip`` (robust to outliers in linear models)."""
        return np.clip((self.raw(frame) - self.center) / self.scale, -clip, clip)
