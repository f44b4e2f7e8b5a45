"""The one Definitions object of the quant_assets code location."""

from __future__ import annotations

import dagster as dg

from quant_assets.defs.market.assets import onchain_metrics, prices
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.settings import get_settings


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[prices, onchain_metrics],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
            "settings": SettingsResource(),
        },
    )


defs = build_definitions()
