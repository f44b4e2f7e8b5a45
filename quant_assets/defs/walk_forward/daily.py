"""Group ``walk_forward_daily``: each day's feature rows predicted with the stored models of the window that contains
the day, so a window fitted when it opened keeps forecasting through its month without being refitted."""

import warnings

import dagster as dg

from quant_assets.defs.automation import FOLLOW_UPSTREAM
from quant_assets.defs.features.assets import FEATURES_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.partitions import daily_partitions
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.walk_forward.predict_daily import predict_and_store_day
from quant_assets.lib.models import BASELINE, MODEL_NAMES
from quant_assets.settings import Settings

DAILY_PREDICTIONS_KEY = dg.AssetKey(["daily_predictions"])
# Not ``walk_forward``: that group's assets are window-partitioned, and the walk_forward job and every
# ``groups("walk_forward")`` selection materialize one window key; a daily asset among them breaks both.
DAILY_GROUP = "walk_forward_daily"


def build_daily_prediction_defs(windows_partitions: dg.TimeWindowPartitionsDefinition,
                                settings: Settings) -> list[dg.AssetsDefinition]:
    """The ``daily_predictions`` asset: day D's partition depends on the features of D and on the fits of the
    window containing D (a time-overlap mapping from the day to its window)."""
    # Days before the first window (history reaches further back than the windows) have no upstream fit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        day_to_window = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)

    @dg.asset(key=DAILY_PREDICTIONS_KEY, group_name=DAILY_GROUP, partitions_def=daily_partitions(settings),
              deps=[FEATURES_KEY,
                    *(dg.AssetDep(f"fit_{name}", partition_mapping=day_to_window) for name in (*MODEL_NAMES, BASELINE))],
              kinds={"duckdb"}, automation_condition=FOLLOW_UPSTREAM,
              description="The day's forecasts.predictions rows from the stored models of the window containing the day.")
    def daily_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                          settings: SettingsResource) -> dg.MaterializeResult:
        day = context.partition_time_window.start.date()
        window = windows_partitions.get_partition_key_for_timestamp(context.partition_time_window.start.timestamp())
        if not windows_partitions.has_partition_key(window):
            context.log.info(f"no walk-forward window contains {day}; nothing to predict")
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "day": str(day),
                                                  "note": f"no walk-forward window contains {day}"})
        window_start = windows_partitions.start_time_for_partition_key(window).date()
        summary = predict_and_store_day(warehouse.get(), settings.get().models_home, window_start, day)
        if "note" in summary:
            context.log.warning(summary["note"])
        return dg.MaterializeResult(metadata=as_dagster_metadata(summary))

    return [daily_predictions]
