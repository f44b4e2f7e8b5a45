"""Dagster resources: the warehouse handle factory and the dbt CLI, both pointed at ``QUANT_HOME``."""

from __future__ import annotations

import dagster as dg

from quant_assets.lib.warehouse import Warehouse
from quant_assets.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """Hands out a LazyDatabase; holds a path, never a connection."""

    path: str

    def get(self) -> Warehouse:
        return Warehouse(self.path)


class SettingsResource(dg.ConfigurableResource):
    """The environment's Settings, captured once per run so every asset of the run sees the same ones."""

    def get(self) -> Settings:
        return Settings()
