"""Group ``market``: prices and on-chain metrics, one daily partition per day of final bars.

Each asset returns the polars frame of its partition range to the warehouse IO manager, which replaces that
slice (``partition_expr`` = ``date``) in one transaction. Twenty years load in one run (single-run backfill).
A restatement of stored history the prices fetch found (a split the provider now adjusts) is written first, in its
own transaction, and the ``restatements_propagated`` check fails until the features have been rebuilt from it and
every window and advice day that read a day whose return it changed has been re-materialized.
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.market.adjustments import store_restatement, unpropagated
from quant_assets.lib.market.calendar import clock_moment
from quant_assets.lib.market.providers import ProviderConfig
from quant_assets.lib.market.slices import LoadResult, Slice, load_onchain, load_prices
from quant_assets.lib.storage.refits import pending_refits

PRICES_KEY = dg.AssetKey(["market", "prices"])
ONCHAIN_KEY = dg.AssetKey(["market", "onchain"])
MARKET_KEYS = (PRICES_KEY, ONCHAIN_KEY)
SLICE_IO_MANAGER = "warehouse_io_manager"


def provider_config(settings) -> ProviderConfig:
    """The values of ``settings`` the providers read (the key stays a ``SecretStr``)."""
    return ProviderConfig(provider=settings.provider, universe=settings.universe, history_start=settings.history_start,
                          seed=settings.seed, prices_file=settings.prices_file, onchain_file=settings.onchain_file,
                          date_format=settings.date_format, polygon_api_key=settings.polygon_api_key,
                          synthetic_equities=settings.synthetic_equity_count)


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
    """The two market assets on ``partitions`` (daily), stored through the warehouse IO manager, and the check
    that restated prices have reached the features."""
    common = dict(group_name="market", partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                  io_manager_key=SLICE_IO_MANAGER, metadata={"partition_expr": "date"}, kinds={"duckdb", "polars"})

    @dg.asset(key=PRICES_KEY, description="Daily OHLCV per symbol (market.prices), final sessions only, validated.",
              **common)
    def prices(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource) -> pl.DataFrame:
        current = settings.get()
        result = load_prices(provider_config(current), warehouse.get(), slice_of(context, current))
        if result.restatement is not None:
            store_restatement(warehouse.get(), result.restatement)
        return _stored(context, result)

    @dg.asset(key=ONCHAIN_KEY, description="Daily on-chain metrics per crypto asset (market.onchain), each stamped "
                                            "with known_at.", **common)
    def onchain_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        settings: SettingsResource) -> pl.DataFrame:
        current = settings.get()
        return _stored(context, load_onchain(provider_config(current), warehouse.get(), slice_of(context, current)))

    @dg.asset_check(asset=PRICES_KEY, name="restatements_propagated",
                    description="Fails while a restatement of stored prices (market.adjustments) has not been rebuilt "
                                "into the features and labels, or while a window's fits or ensemble or a day's advice "
                                "that read a day whose return it changed has not been re-materialized (the "
                                "restatement_refits sensor requests them, in order, once the features are rebuilt).")
    def restatements_propagated(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        # Both halves are flags written by the run that did the work (the features run marks the events it rebuilt
        # from; each refit refreshes its own marks), rather than timestamps compared across runs that may overlap.
        pending = unpropagated(warehouse.get())
        symbols = sorted(set(pending["symbol"].to_list())) if pending.height else []
        refits = pending_refits(warehouse.get())
        return dg.AssetCheckResult(
            passed=not symbols and refits.empty, severity=dg.AssetCheckSeverity.ERROR,
            metadata=as_dagster_metadata({
                "pending_restatements": pending.height, "symbols": symbols,
                "events": [{k: str(v) for k, v in row.items()} for row in pending.iter_rows(named=True)],
                "pending_refits": len(refits), "refits": refits}),
            description=restatement_status(symbols, refits))

    return [prices, onchain_metrics, restatements_propagated]


def restatement_status(symbols: list[str], refits) -> str | None:
    """One sentence on what a restatement still waits for; None when nothing does."""
    if symbols:
        return (f"prices of {', '.join(symbols)} were restated and their features and labels not yet rebuilt; "
                "materialize the features group")
    if refits.empty:
        return None
    waiting = ", ".join(f"{stage} {partition}" + (f" ({model})" if model else "") for stage, model, partition in
                        refits[["stage", "model", "partition_date"]].head(6).itertuples(index=False))
    more = f" and {len(refits) - 6} more" if len(refits) > 6 else ""
    return f"{len(refits)} outputs read restated prices and were not re-materialized yet: {waiting}{more}"
