"""Where an installation keeps its files: the one reader of ``QUANT_HOME`` and ``QUANT_CACHE_DIR``, and the one
place that names what lives under them. Standard library only, so the ``quant`` command and the API use it without
loading the settings."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "~/.quant"


def home() -> Path:
    """``$QUANT_HOME`` (default ``~/.quant``) as an absolute path."""
    return Path(os.environ.get("QUANT_HOME", DEFAULT_HOME)).expanduser().resolve()


def cache_dir(home: Path) -> Path:
    """``$QUANT_CACHE_DIR``, results keyed by their inputs' content that homes may share; unset, ``<home>/cache``."""
    shared = os.environ.get("QUANT_CACHE_DIR")
    return Path(shared) if shared else home / "cache"


def warehouse_path(home: Path) -> Path:
    return home / "warehouse.duckdb"


def personal_path(home: Path) -> Path:
    """The person's own data (their plays): a file of its own, which no pipeline step opens."""
    return home / "personal.duckdb"


def dagster_home(home: Path) -> Path:
    return home / "dagster"


def mlflow_uri(home: Path) -> str:
    """The MLflow store of a home that names no tracking server."""
    return f"sqlite:///{home / 'mlflow.db'}"


def mlflow_lock(home: Path) -> Path:
    """The cross-process lock every MLflow call of a home takes (SQLite answers "locked" to parallel writers)."""
    return home / "mlflow.lock"


def mlflow_artifacts(home: Path) -> Path:
    return home / "mlflow-artifacts"


def dbt_target(home: Path) -> Path:
    return home / "dbt_target"


def models_home(home: Path, object_store: str | None = None, endpoint_url: str | None = None):
    """Where the fitted models live (under ``models/``): the home, or the object store (a ``UPath`` with its
    endpoint) that the workers that fit and the host that predicts share."""
    if object_store is None:
        return home
    from upath import UPath

    return UPath(object_store, **({"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}))
