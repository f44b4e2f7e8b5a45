"""The fitted models of each (window, model), kept under ``$QUANT_HOME/models/<window_start>/<model>/`` so a
later process (the daily prediction step) can load them without refitting.

A folder holds one file per horizon in the format ``training.save_models`` writes (the deep models' own
``save``, joblib otherwise), the same files the fit logs to MLflow. A fit writes its folder beside it and
swaps it in with one rename, so a reader sees the previous fit's models or the new ones, never a mix.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import joblib

from quant_assets.lib.models.base import HORIZONS, Forecaster
from quant_assets.lib.training import save_models


def models_folder(home: Path | str, window_start: date, model: str) -> Path:
    """Where the fitted models of ``model`` for the window starting ``window_start`` are kept."""
    return Path(home) / "models" / window_start.isoformat() / model


def save_window_models(home: Path | str, window_start: date, model: str, models: dict[str, Forecaster]) -> Path:
    """Write the per-horizon models of one fit, replacing any earlier fit of the same (window, model)."""
    folder = models_folder(home, window_start, model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{model}.{os.getpid()}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_models(models, staging)
    retired = folder.with_name(f".{model}.{os.getpid()}.old")
    if folder.exists():
        folder.rename(retired)
    staging.rename(folder)
    shutil.rmtree(retired, ignore_errors=True)
    return folder


def load_window_models(home: Path | str, window_start: date, model: str) -> dict[str, Forecaster] | None:
    """The per-horizon models of one stored fit (horizon label -> fitted forecaster), or None when the
    (window, model) has no complete stored fit."""
    folder = models_folder(home, window_start, model)
    found = {}
    for horizon in HORIZONS:
        torch_file = folder / f"{model}_{horizon.label}.pt"
        joblib_file = folder / f"{model}_{horizon.label}.joblib"
        if torch_file.exists():
            from quant_assets.lib.models.deep import DeepForecaster

            found[horizon.label] = DeepForecaster.load(torch_file)
        elif joblib_file.exists():
            found[horizon.label] = joblib.load(joblib_file)
        else:
            return None
    return found


def copy_models(folder: Path, destination: Path) -> None:
    """Copy a stored fit's files into ``destination`` (the folder the fit logs to MLflow)."""
    shutil.copytree(folder, destination, dirs_exist_ok=True)
