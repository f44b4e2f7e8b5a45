"""Group ``ensemble``: one meta-ensemble per window over the ten models' out-of-sample forecasts."""

from datetime import date

import dagster as dg

from quant_assets.defs.automation import ON_DEPS_UPDATED
from quant_assets.defs.features.assets import LABELS_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.defs.walk_forward.daily import DAILY_PREDICTIONS_KEY
from quant_assets.lib.ensemble.window import ensemble_window
from quant_assets.lib.models import MODEL_NAMES
from quant_assets.render.report import markdown_table

ENSEMBLE_KEY = dg.AssetKey(["meta_ensemble"])


def build_ensemble_defs(partitions: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    """The meta_ensemble asset. A window's ensemble learns from the realized results of earlier windows'
    fits and combines its own window's: its Dagster deps are the fits of that window and of every earlier
    one (so a backfill orders them first), never its own earlier partitions; and the labels, which realize
    day by day, and the days' predictions of its window, so that the current window's ensemble is refreshed
    as either arrives."""
    this_and_earlier = dg.TimeWindowPartitionMapping(start_offset=-len(partitions.get_partition_keys()), end_offset=0)

    @dg.asset(key=ENSEMBLE_KEY, group_name="ensemble", partitions_def=partitions,
              deps=[*(dg.AssetDep(f"fit_{name}", partition_mapping=this_and_earlier) for name in MODEL_NAMES), LABELS_KEY,
                    DAILY_PREDICTIONS_KEY],
              automation_condition=ON_DEPS_UPDATED,
              kinds={"sklearn", "scipy", "duckdb"},
              description="Stacked, recalibrated distributions of the ten models with the probability of a gain, "
                          "calibrated out of fold or the base rate.")
    def meta_ensemble(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      settings: SettingsResource) -> dg.MaterializeResult:
        summary = ensemble_window(warehouse.get(), date.fromisoformat(context.partition_key),
                                  cache_dir=settings.get().ensemble_cache)
        coverage = summary["coverage"]
        summary["coverage"] = markdown_table(coverage) if len(coverage) else "no realized labels yet"
        return dg.MaterializeResult(metadata=as_dagster_metadata(summary))

    return meta_ensemble
