"""Group ``walk_forward``: the window plan with its blocking bias audit, and one fit asset per model."""

from collections.abc import Callable, Mapping

import dagster as dg

from quant_assets.defs.automation import ON_WINDOW_OPEN
from quant_assets.defs.features.assets import FEATURES_KEY, LABELS_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.walk_forward.folds import audit_fit, audit_plan, fit_and_store, plan_and_store
from quant_assets.lib.models import BASELINE, MODEL_NAMES, model_entry

PLAN_KEY = dg.AssetKey(["walk_forward_plan"])


def build_walk_forward_defs(partitions: dg.PartitionsDefinition, *, warehouse_op_tags: Mapping[str, str] | None = None,
                            fit_asset: Callable | None = None) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The plan asset with its bias audit, and a fit asset (with its own blocking audit) per model and the baseline;
    the checks defined apart from their assets (the distributed profile's).

    The distributed profile (``cluster.py``) tags the steps that open the warehouse (``warehouse_op_tags``: the
    Celery queue served on the warehouse's host) and builds its own fits (``fit_asset(model, partitions)``)."""

    # The audits run in the step of what they audit (as blocking checks of it): a daemon-launched run starts every
    # step in a process of its own, and a step of its own would cost more than the audit (README, bench/backfill.py).
    @dg.asset(key=PLAN_KEY, group_name="walk_forward", partitions_def=partitions, deps=[FEATURES_KEY, LABELS_KEY],
              kinds={"duckdb"}, automation_condition=ON_WINDOW_OPEN, op_tags=warehouse_op_tags,
              check_specs=[dg.AssetCheckSpec("bias_audit", asset=PLAN_KEY, blocking=True,
                                             description="Fails if any training label interval overlaps the window "
                                                         "or its embargo.")],
              description="Train and eval intervals per horizon for one evaluation window.")
    def walk_forward_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                          settings: SettingsResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        chosen = settings.get()
        summary = plan_and_store(warehouse.get(), chosen.window_rules, window.start.date(), window.end.date())
        violations = audit_plan(warehouse.get(), window.start.date(), chosen.wf_embargo_days)
        audit = dg.AssetCheckResult(check_name="bias_audit", passed=not violations, metadata={
            "violations": dg.MetadataValue.json(violations[:20]), "window": str(window.start.date())})
        return dg.MaterializeResult(metadata=as_dagster_metadata(summary), check_results=[audit])

    fits, checks = [], []
    for name in (*MODEL_NAMES, BASELINE):
        fit, fit_checks = (fit_asset or _fit_asset)(name, partitions)
        fits.append(fit)
        checks.extend(fit_checks)
    return [walk_forward_plan, *fits], checks


def _partition_start(context):
    from datetime import date

    return date.fromisoformat(context.partition_key)


def _fit_asset(model_name: str, partitions: dg.PartitionsDefinition) -> tuple[dg.AssetsDefinition, list]:
    _, _, family, kind = model_entry(model_name)
    key = dg.AssetKey(f"fit_{model_name}")

    @dg.asset(key=key, group_name="walk_forward", partitions_def=partitions,
              deps=[PLAN_KEY, FEATURES_KEY, LABELS_KEY], kinds={kind, "duckdb", "mlflow"}, automation_condition=ON_WINDOW_OPEN,
              tags={"family": family}, description=f"Out-of-sample distributional forecasts of {model_name} for the window.",
              check_specs=[dg.AssetCheckSpec("training_cutoff", asset=key, blocking=True,
                                             description="Fails if the fit trained on a label that ended inside the "
                                                         "window or its embargo (read back from the stored fit).")])
    def fit(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
        window_start = _partition_start(context)
        chosen = settings.get()
        summary = fit_and_store(warehouse.get(), model_name, window_start, seed=chosen.seed, models_home=chosen.models_home,
                                tracking=chosen.tracking_store, dagster_run_id=context.run_id)
        violations = audit_fit(warehouse.get(), window_start, model_name)
        audit = dg.AssetCheckResult(check_name="training_cutoff", passed=not violations,
                                    metadata={"violations": dg.MetadataValue.json(violations)})
        return dg.MaterializeResult(metadata=as_dagster_metadata(summary), check_results=[audit])

    return fit, []
