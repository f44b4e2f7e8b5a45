"""Tree ensembles: LightGBM and XGBoost quantile boosting, and an extra-trees leaf-distribution forest."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import ExtraTreesRegressor

from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS, TARGET, Forecaster, finish, quantile_distribution

# Training rows each tree model fits on at most (see base.subsample_rows): about half a 10-year panel of
# 23 symbols, which halves the fitting time at no measurable cost in CRPS (bench/walk_forward.py).
TREE_MAX_ROWS = 25_000
# The extra-trees forest on fewer: its leaves keep at least min_samples_leaf rows, so on fewer rows each leaf
# holds a wider share of the sample and its distribution is smoother. Over the 46 monthly windows 2019-01..2022-10
# its CRPS skill against the random walk rose at every horizon (1w +0.000, 1m +0.007, 3m +0.026, 1y +0.020) for
# about half the fitting time.
EXTRA_TREES_MAX_ROWS = 15_000


def _standardized_target(rows: pd.DataFrame) -> tuple[np.ndarray, float, float]:
    """Target in units of its training std: boosting hyper-parameters then mean the same thing at every horizon."""
    y = rows[TARGET].to_numpy(dtype="float64")
    center, scale = float(y.mean()), float(y.std())
    scale = scale if scale > 1e-12 else 1.0
    return (y - center) / scale, center, scale


class LightGBMForecaster(Forecaster):
    """One LightGBM quantile-loss booster per level in ``QUANTILE_LEVELS``; mean, std and P(up) come
    from the predicted quantile function."""

    name = "lightgbm"
    reads_history = False
    defaults = {"n_estimators": 80, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 100,
                "num_threads": 1, "max_rows": TREE_MAX_ROWS}

    def booster_params(self, level: float) -> dict[str, object]:
        """The parameters of the booster for quantile ``level`` (scikit-learn names, which ``lgb.train`` also
        takes as aliases)."""
        return {
            "objective": "quantile",
            "alpha": level,
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "max_bin": 63,
            "n_jobs": self.num_threads,
            "random_state": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def fit(self, frame: pd.DataFrame) -> "LightGBMForecaster":
        """Fit the seven quantile boosters on the rows with a known target. They share one binned
        ``Dataset``: binning the features is a quarter of a booster's cost and the same for every level."""
        rows = self.fit_rows(frame, self.max_rows)
        x = self.prep_.raw(rows)
        y, self.y_center_, self.y_scale_ = _standardized_target(rows)
        params = [self.booster_params(level) for level in QUANTILE_LEVELS]
        binned = lgb.Dataset(x, y, params={k: params[0][k] for k in ("max_bin", "verbose")}, free_raw_data=False)
        self.models_ = [lgb.train(p, binned) for p in params]
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Distribution per row from the seven predicted quantiles."""
        x = self.prep_.raw(frame)
        quantiles = np.column_stack([m.predict(x) for m in self.models_])
        return finish(frame, quantile_distribution(self.y_center_ + self.y_scale_ * quantiles))



class XGBoostForecaster(Forecaster):
    """One XGBoost model with ``reg:quantileerror`` and all seven ``quantile_alpha`` levels at once.

    XGBoost starts each level from the training quantile (a vector ``base_score``), so the trees only add
    the conditional part: 40 rounds at a learning rate of 0.1 score as 80 at 0.05 did (CRPS skill per horizon
    within +-0.003 over four windows of 2019-2021) in half the time."""

    name = "xgboost"
    reads_history = False
    defaults = {"n_estimators": 40, "learning_rate": 0.1, "max_depth": 3, "min_child_weight": 100.0, "nthread": 1,
                "max_rows": TREE_MAX_ROWS}

    def fit(self, frame: pd.DataFrame) -> "XGBoostForecaster":
        """Fit the multi-quantile booster on the rows with a known target."""
        rows = self.fit_rows(frame, self.max_rows)
        x = self.prep_.raw(rows)
        y, self.y_center_, self.y_scale_ = _standardized_target(rows)
        self.model_ = xgb.XGBRegressor(
            objective="reg:quantileerror",
            quantile_alpha=np.asarray(QUANTILE_LEVELS),
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=0.8,
            colsample_bytree=0.8,
            tree_method="hist",
            max_bin=64,
            n_jobs=self.nthread,
            random_state=self.seed,
        ).fit(x, y)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Distribution per row from the seven predicted quantiles."""
        quantiles = self.model_.predict(self.prep_.raw(frame)).reshape(len(frame), len(QUANTILE_LEVELS))
        return finish(frame, quantile_distribution(self.y_center_ + self.y_scale_ * quantiles))



# Per-leaf statistics kept by the extra-trees forecaster, in this column order.
_LEAF_STATS = (*QUANTILE_COLUMNS, "mean", "second_moment", "p_up")


class ExtraTreesForecaster(Forecaster):
    """Extremely randomized trees whose prediction is a mixture of leaf distributions (in the spirit
    of quantile regression forests): every leaf keeps the quantiles, first two moments and share of
    positive values of the training targets it holds, and a row's distribution averages those over
    the trees. The mean equals the forest's regression prediction; the std is the mixture's.
    """

    name = "extra_trees"
    reads_history = False
    defaults = {"n_estimators": 50, "min_samples_leaf": 50, "max_features": 0.5, "n_jobs": 1,
                "max_rows": EXTRA_TREES_MAX_ROWS}

    def fit(self, frame: pd.DataFrame) -> "ExtraTreesForecaster":
        """Grow the forest and tabulate the target's distribution in every leaf."""
        rows = self.fit_rows(frame, self.max_rows)
        x = self.prep_.raw(rows)
        y = rows[TARGET].to_numpy(dtype="float64")
        self.forest_ = ExtraTreesRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            bootstrap=False,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        ).fit(x, y)
        leaves = self.forest_.apply(x)
        self.leaf_tables_ = [
            _leaf_table(leaves[:, t], y, tree.tree_.node_count) for t, tree in enumerate(self.forest_.estimators_)
        ]
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Average of the leaf distributions each row falls into."""
        leaves = self.forest_.apply(self.prep_.raw(frame))
        stats = np.zeros((len(frame), len(_LEAF_STATS)))
        for t, table in enumerate(self.leaf_tables_):
            stats += table[leaves[:, t]]
        stats /= len(self.leaf_tables_)
        out = pd.DataFrame(stats, columns=list(_LEAF_STATS))
        out["std"] = np.sqrt(np.maximum(out["second_moment"] - out["mean"] ** 2, 1e-16))
        return finish(frame, out)



def _leaf_table(leaf: np.ndarray, y: np.ndarray, node_count: int) -> np.ndarray:
    """``node_count x len(_LEAF_STATS)`` table of the targets' statistics per leaf (zeros for inner nodes).

    Quantiles use numpy's default linear interpolation between order statistics, vectorized over
    leaves by sorting on (leaf, y).
    """
    order = np.lexsort((y, leaf))
    leaf_sorted, y_sorted = leaf[order], y[order]
    ids, start, count = np.unique(leaf_sorted, return_index=True, return_counts=True)
    table = np.zeros((node_count, len(_LEAF_STATS)))
    for j, level in enumerate(QUANTILE_LEVELS):
        pos = level * (count - 1)
        lo = np.floor(pos).astype("int64")
        hi = np.minimum(lo + 1, count - 1)
        frac = pos - lo
        table[ids, j] = y_sorted[start + lo] * (1 - frac) + y_sorted[start + hi] * frac
    n_q = len(QUANTILE_LEVELS)
    table[ids, n_q] = np.add.reduceat(y_sorted, start) / count
    table[ids, n_q + 1] = np.add.reduceat(y_sorted**2, start) / count
    table[ids, n_q + 2] = np.add.reduceat((y_sorted > 0).astype("float64"), start) / count
    return table
