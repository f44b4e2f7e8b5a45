"""The one Definitions object of the quant_assets code location."""

import warnings

import dagster as dg

from quant_assets.defs.automation import build_automation_defs
from quant_assets.defs.ensemble.assets import build_ensemble_defs
from quant_assets.defs.features.assets import DBT_PROJECT_DIR, build_feature_defs
from quant_assets.defs.market.assets import SLICE_IO_MANAGER, build_market_defs
from quant_assets.defs.market.restatements import build_restatement_refits
from quant_assets.defs.partitions import daily_partitions
from quant_assets.defs.projections.alerts import book_alerts_sensor
from quant_assets.defs.projections.assets import build_projection_defs
from quant_assets.defs.resources import SettingsResource, WarehouseIOManager, WarehouseResource
from quant_assets.defs.walk_forward.assets import build_walk_forward_defs
from quant_assets.defs.walk_forward.daily import build_daily_prediction_defs
from quant_assets.defs.walk_forward.partitions import window_partitions
from quant_assets.settings import get_settings

# Single-run backfill policies are how years of daily partitions load in one run; Dagster still labels the
# parameter beta and would warn on every import of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

# A daemon-launched run starts each step in a new process. Forked from a server that has already imported the
# model libraries and this code location, a step starts in well under a second instead of re-importing torch,
# LightGBM, XGBoost, MLflow and Dagster (seconds per step, ten fits per window).
WALK_FORWARD_PRELOAD = ["torch", "lightgbm", "xgboost", "arch", "sklearn", "mlflow", "quant_assets.lib.walk_forward.folds",
                        "quant_assets.lib.models.deep", "quant_assets.lib.models.trees", "quant_assets.lib.models.garch",
                        "quant_assets.definitions"]
WALK_FORWARD_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": WALK_FORWARD_PRELOAD}}}, name="preloaded_multiprocess")


def build_definitions(dbt_project_dir=DBT_PROJECT_DIR) -> dg.Definitions:
    """Assemble assets, checks, resources and jobs; reads settings, opens nothing."""
    settings = get_settings()
    dbt_features, lookahead_check, dbt_resource = build_feature_defs(dbt_project_dir)
    windows = window_partitions(settings)
    days = daily_partitions(settings)
    automation_jobs, schedules, automation_checks, sensors = build_automation_defs(days)
    walk_forward_assets, walk_forward_checks = build_walk_forward_defs(windows)
    walk_forward_executor, cluster_resources = WALK_FORWARD_EXECUTOR, {}
    if settings.profile == "cluster":
        walk_forward_assets, walk_forward_checks, walk_forward_executor, cluster_resources = _cluster_walk_forward(settings, windows)
    # Market (job `market`, daily: all days in one run), then features, then walk_forward, then ensemble (in window order: each window's ensemble learns from earlier windows),
    # then projections.
    jobs = [dg.define_asset_job(name, selection=dg.AssetSelection.groups(*groups),
                                executor_def=walk_forward_executor if name == "walk_forward" else None)
            for name, groups in (("features", ("features",)), ("walk_forward", ("walk_forward",)),
                                 ("ensemble", ("ensemble",)), ("projections", ("projections",)))]
    job_named = {job.name: job for job in jobs}
    restatement_refits = build_restatement_refits(job_named["walk_forward"], job_named["ensemble"], job_named["projections"])
    return dg.Definitions(
        assets=[*build_market_defs(days), dbt_features, *walk_forward_assets, build_ensemble_defs(windows),
                *build_daily_prediction_defs(windows, settings), *build_projection_defs(settings)],
        asset_checks=[lookahead_check, *walk_forward_checks, *automation_checks],
        jobs=[*jobs, *automation_jobs],
        schedules=schedules,
        sensors=[*sensors, restatement_refits, book_alerts_sensor],
        resources={
            "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
            SLICE_IO_MANAGER: WarehouseIOManager(database=str(settings.warehouse_path)),
            "settings": SettingsResource(),
            "dbt": dbt_resource,
            **cluster_resources,
        },
    )


def _cluster_walk_forward(settings, windows):
    """The distributed profile's walk-forward (deploy/): fits on Celery workers, outputs on the object store."""
    from quant_assets.defs.walk_forward.cluster import (OBJECT_STORE_IO_MANAGER, ObjectStoreIOManager,
                                                        build_cluster_walk_forward_defs, walk_forward_executor)

    assets, checks = build_cluster_walk_forward_defs(windows)
    io_manager = ObjectStoreIOManager(root=settings.object_store, endpoint_url=settings.s3_endpoint_url)
    return assets, checks, walk_forward_executor(settings), {OBJECT_STORE_IO_MANAGER: io_manager}


defs = build_definitions()
