"""Group ``market``: raw prices and on-chain metrics, validated, replacing the previous contents."""


import dagster as dg

from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.lib.market import load_onchain, load_prices


@dg.asset(
    key=dg.AssetKey(["market", "prices"]),
    group_name="market",
    kinds={"duckdb", "polars"},
    description="Daily OHLCV per symbol (market.prices) from the configured provider, validated.",
)
def prices(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    result = load_prices(settings.get(), warehouse.get())
    for warning in result.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(metadata=as_dagster_metadata(result.metadata()))


@dg.asset(
    key=dg.AssetKey(["market", "onchain"]),
    group_name="market",
    kinds={"duckdb", "polars"},
    description="Daily on-chain metrics per crypto asset (market.onchain), each stamped with known_at.",
)
def onchain_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    result = load_onchain(settings.get(), warehouse.get())
    for warning in result.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(metadata=as_dagster_metadata(result.metadata()))
