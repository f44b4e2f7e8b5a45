"""Group ``market``: prices and on-chain metrics, one daily partition per day of final bars.

Each asset returns the polars frame of its partition range to the warehouse IO manager, which replaces that
slice (``partition_expr`` = ``date``) in one transaction. Twenty years load in one run (single-run backfill).
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.market.calendar import clock_moment
from quant_assets.lib.market.slices import LoadResult, Slice, load_onchain, load_prices

PRICES_KEY = dg.AssetKey(["market", "prices"])
ONCHAIN_KEY = dg.AssetKey(["market", "onchain"])
MARKET_KEYS = (PRICES_KEY, ONCHAIN_KEY)
SLICE_IO_MANAGER = "warehouse_io_manager"


def slice_of(context: dg.AssetExecutionContext, settings) -> Slice:
    """The partition range's days, judged at the clock (the wall clock only when the data follows it)."""
    window = context.partition_time_window
    moment = clock_moment(None if settings.follows_wall_clock else settings.clock_today)
    return Slice(window.start.date(), window.end.date() - timedelta(days=1), moment)


def _stored(context: dg.AssetExecutionContext, result: LoadResult) -> pl.DataFrame:
    for warning in result.warnings:
        context.log.warning(warning)
    context.add_output_metadata(as_dagster_metadata(result.metadata()))
    return result.frame


def build_market_defs(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The two market assets on ``partitions`` (daily), stored through the warehouse IO manager."""
    common = dict(group_name="market", partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                  io_manager_key=SLICE_IO_MANAGER, metadata={"partition_expr": "date"}, kinds={"duckdb", "polars"})

    @dg.asset(key=PRICES_KEY, description="Daily OHLCV per symbol (market.prices), final sessions only, validated.",
              **common)
    def prices(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource) -> pl.DataFrame:
        current = settings.get()
        return _stored(context, load_prices(current, warehouse.get(), slice_of(context, current)))

    @dg.asset(key=ONCHAIN_KEY, description="Daily on-chain metrics per crypto asset (market.onchain), each stamped "
                                            "with known_at.", **common)
    def onchain_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        settings: SettingsResource) -> pl.DataFrame:
        current = settings.get()
        return _stored(context, load_onchain(current, warehouse.get(), slice_of(context, current)))

    return [prices, onchain_metrics]
