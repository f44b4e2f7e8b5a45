"""The fitted models of each (window, model), kept under ``<home>/models/<window_start>/<model>/`` so a later
process (the daily prediction step) can load them without refitting. ``home`` is ``$QUANT_HOME`` on one machine,
or the object store's URL (a ``UPath`` carrying its endpoint) in the distributed profile, where the worker that
fits and the host that predicts are different machines.

A fit's files (one per horizon, in the format ``training.save_models`` writes: the deep models' own ``save``,
joblib otherwise; the same files the fit logs to MLflow) go to a folder of their own, ``<model>/<fit id>/``;
then the one-line pointer ``<model>/CURRENT`` names it, and earlier fits are removed. Switching the pointer is
one rename on a disk and one PUT on an object store (which has no rename), so a reader sees the previous fit's
models or the new ones, never a mix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import joblib
from upath import UPath

from quant_assets.lib.models.base import Forecaster
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.training import save_models

POINTER = "CURRENT"


def models_folder(home: Path | str | UPath, window_start: date, model: str) -> UPath:
    """Where the fits of ``model`` for the window starting ``window_start`` are kept."""
    return UPath(home) / "models" / window_start.isoformat() / model


def save_window_models(home: Path | str | UPath, window_start: date, model: str, models: dict[str, Forecaster]) -> UPath:
    """Write the per-horizon models of one fit, replacing any earlier fit of the same (window, model); returns the
    fit's folder."""
    folder = models_folder(home, window_start, model)
    fit = folder / uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="quant-models-") as staging:
        save_models(models, Path(staging))
        fit.fs.makedirs(fit.path, exist_ok=True)
        for file in sorted(Path(staging).iterdir()):
            fit.fs.put_file(str(file), (fit / file.name).path)
    _point_to(folder, fit.name)
    for earlier in folder.iterdir():
        if earlier.name not in (fit.name, POINTER):
            earlier.fs.rm(earlier.path, recursive=True)
    return fit


def load_window_models(home: Path | str | UPath, window_start: date, model: str) -> dict[str, Forecaster] | None:
    """The per-horizon models of the current stored fit (horizon label -> fitted forecaster), or None when the
    (window, model) has no complete stored fit."""
    folder = models_folder(home, window_start, model)
    try:
        return _load_fit(folder)
    except FileNotFoundError:
        # A new fit replaced the one the pointer named while it was being read; the pointer now names a whole fit.
        return _load_fit(folder)


def copy_models(fit: UPath, destination: Path) -> None:
    """Copy a stored fit's files into the local folder ``destination`` (the folder the fit logs to MLflow)."""
    destination.mkdir(parents=True, exist_ok=True)
    for file in fit.iterdir():
        file.fs.get_file(file.path, str(destination / file.name))


def _point_to(folder: UPath, fit_name: str) -> None:
    pointer = folder / POINTER
    if _on_local_disk(pointer):
        staged = Path(pointer.path).with_name(f".{POINTER}.{os.getpid()}")
        staged.write_text(fit_name)
        staged.replace(pointer.path)
    else:
        pointer.write_text(fit_name)


def _load_fit(folder: UPath) -> dict[str, Forecaster] | None:
    pointer = folder / POINTER
    if not pointer.exists():
        return None
    fit = folder / pointer.read_text().strip()
    with _local(fit) as local:
        found = {}
        for horizon in HORIZONS:
            torch_file = local / f"{folder.name}_{horizon.label}.pt"
            joblib_file = local / f"{folder.name}_{horizon.label}.joblib"
            if torch_file.exists():
                from quant_assets.lib.models.deep import DeepForecaster

                found[horizon.label] = DeepForecaster.load(torch_file)
            elif joblib_file.exists():
                found[horizon.label] = joblib.load(joblib_file)
            else:
                return None
    return found


def _on_local_disk(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


@contextmanager
def _local(fit: UPath) -> Iterator[Path]:
    """The fit's folder on the local disk: itself on one machine, a temporary copy from an object store."""
    if _on_local_disk(fit):
        if not Path(fit.path).is_dir():
            raise FileNotFoundError(fit.path)
        yield Path(fit.path)
        return
    copy = Path(tempfile.mkdtemp(prefix="quant-models-"))
    try:
        copy_models(fit, copy)
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)
