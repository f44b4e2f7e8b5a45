"""Group ``features``: the dbt-duckdb project loaded with dagster-dbt, daily-partitioned like the market data, and
its blocking lookahead audit."""

import json
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging.version import Version

from quant_assets.defs.automation import FOLLOW_EVERY_NEW_DAY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.partitions import daily_partitions
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.features.lookahead import lookahead_audit
from quant_assets.lib.market.adjustments import mark_propagated, pending_restatement
from quant_assets.settings import get_settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_features"
FEATURES_KEY = dg.AssetKey(["features", "features"])
LABELS_KEY = dg.AssetKey(["labels", "forward_returns"])


class FeatureTranslator(DagsterDbtTranslator):
    """Models keyed by their DuckDB schema and name (``features/features``), all in group ``features``."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey([dbt_resource_props["config"]["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        # Each new day of market data brings the features and labels up to date.
        return FOLLOW_EVERY_NEW_DAY


class VenvDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource for this environment's own dbt, without two start-up costs every run paid for
    nothing (7 s of a daily features run): ``dbt --version`` in a subprocess, when the executable is the installed
    dbt-core; and a dbt adapter built in process, which loads every dbt macro and only serves
    ``fetch_column_metadata`` / ``fetch_row_counts``, which these assets do not call."""

    @property
    def _cli_version(self) -> Version:
        return Version(version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def build_feature_defs(project_dir: Path = DBT_PROJECT_DIR, partitions: dg.DailyPartitionsDefinition | None = None,
                       ) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition, VenvDbtCliResource]:
    """The dbt assets of ``project_dir`` (manifest prepared by ``dbt parse`` at install) on ``partitions`` (default:
    the market's daily partitions), their lookahead audit and CLI."""
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)

    # A backfill of any range is one incremental dbt run (models/staging/increment_bounds.sql): the range's first
    # day decides what is rewritten, from a lookback before it to the last stored day.
    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=FeatureTranslator(),
                name=f"dbt_{project.project_dir.name}", partitions_def=partitions or daily_partitions(get_settings()),
                backfill_policy=dg.BackfillPolicy.single_run())
    def dbt_features(context: dg.AssetExecutionContext, dbt: VenvDbtCliResource, warehouse: WarehouseResource,
                     settings: SettingsResource):
        # dbt's profile reads the warehouse path from the environment of the dbt process it starts.
        current = settings.get()
        os.environ["QUANT_WAREHOUSE"] = str(current.warehouse_path)
        days = context.partition_time_window
        # Restated prices (market.adjustments) not yet rebuilt move the run's start back to their earliest
        # restated day; the events are marked once the build has succeeded.
        restated = pending_restatement(warehouse.get())
        start = days.start.date() if restated is None else min(days.start.date(), restated[0])
        dbt_vars = {"partition_start": start.isoformat(), "partition_end": days.end.date().isoformat()}
        with warehouse.get().exclusive():
            yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context,
                               target_path=current.dbt_target_path).stream()
        if restated is not None:
            mark_propagated(warehouse.get(), restated[1])
            context.log.info(f"features rebuilt from {start} for the restated prices recorded up to {restated[1]}")

    @dg.asset_check(asset=FEATURES_KEY, blocking=True, name="feature_lookahead_audit",
                    description="Rebuilds the features on history cut at several dates; fails if any value on or "
                                "before a cut changes, i.e. if a feature used data after its own date.")
    def feature_lookahead_audit(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
        audit = lookahead_audit(warehouse.get(), project_dir, cache_dir=settings.get().compiled_features_cache)
        return dg.AssetCheckResult(passed=not audit["violations"], metadata=as_dagster_metadata(audit))

    # The venv's own dbt, so the code location works without the venv being on PATH.
    dbt_executable = Path(sys.executable).parent / "dbt"
    return dbt_features, feature_lookahead_audit, VenvDbtCliResource(project_dir=project, dbt_executable=str(dbt_executable))
