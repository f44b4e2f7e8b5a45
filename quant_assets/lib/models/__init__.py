"""The ten forecasters (statistical, tree-based, deep learning) and the random-walk baseline.

Model modules import heavy libraries (torch, lightgbm, xgboost, arch), so they load on first use.
"""

from __future__ import annotations

from quant_assets.lib.models.base import Forecaster

# name -> (module, class, family, Dagster kind)
CATALOG: dict[str, tuple[str, str, str, str]] = {
    "ridge": ("linear", "RidgeForecaster", "statistical", "sklearn"),
    "quantile_linear": ("linear", "QuantileLinearForecaster", "statistical", "sklearn"),
    "garch": ("garch", "GarchForecaster", "statistical", "arch"),
    "drift_walk": ("drift_walk", "DriftWalkForecaster", "statistical", "scipy"),
    "lightgbm": ("trees", "LightGBMForecaster", "tree", "lightgbm"),
    "xgboost": ("trees", "XGBoostForecaster", "tree", "xgboost"),
    "extra_trees": ("trees", "ExtraTreesForecaster", "tree", "sklearn"),
    "mlp": ("deep", "MLPForecaster", "deep", "pytorch"),
    "gru": ("deep", "GRUForecaster", "deep", "pytorch"),
    "tcn": ("deep", "TCNForecaster", "deep", "pytorch"),
}
BASELINE = "baseline"
MODEL_NAMES: tuple[str, ...] = tuple(CATALOG)
_BASELINE_ENTRY = ("baseline", "RandomWalkBaseline", "baseline", "python")


def model_entry(name: str) -> tuple[str, str, str, str]:
    if name == BASELINE:
        return _BASELINE_ENTRY
    if name not in CATALOG:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join((*MODEL_NAMES, BASELINE))}")
    return CATALOG[name]


def make_model(name: str, *, horizon: str, seed: int) -> Forecaster:
    """A fresh, seeded forecaster of the named kind for one horizon."""
    from importlib import import_module

    module, cls, _, _ = model_entry(name)
    return getattr(import_module(f"quant_assets.lib.models.{module}"), cls)(horizon=horizon, seed=seed)
