"""The sensor that re-materializes what a restatement of stored prices left stale: each stale window's fits, then
its ensemble in window order, then the advice days, once the features have been rebuilt from the restated days
(``lib/storage/refits.py`` keeps the marks; the ``restatements_propagated`` check fails until they are all refreshed)."""

from __future__ import annotations

import dagster as dg

from quant_assets.defs.ensemble.assets import ENSEMBLE_KEY
from quant_assets.defs.resources import WarehouseResource
from quant_assets.lib.market.adjustments import unpropagated
from quant_assets.lib.storage.refits import ADVICE, ENSEMBLE, FIT, pending_refits, runnable_refits

ADVICE_KEYS = (dg.AssetKey("projections"), dg.AssetKey("allocations"))


def build_restatement_refits(fit_job, ensemble_job, advice_job) -> dg.SensorDefinition:
    """The sensor, over the pipeline's own jobs (a window's fits, its ensemble, a day's advice): one job per
    partitioning, so each request runs on the executor its stage runs on (the cluster's for the fits)."""

    @dg.sensor(name="restatement_refits", jobs=[fit_job, ensemble_job, advice_job], minimum_interval_seconds=300,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Re-materializes the windows and advice days that read prices a restatement changed, once "
                           "the features have been rebuilt from them.")
    def restatement_refits(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        if unpropagated(warehouse.get()).height:
            return dg.SkipReason("a restatement waits for the features run first")
        pending = pending_refits(warehouse.get())
        ready = runnable_refits(pending)
        if not ready:
            return dg.SkipReason("nothing read restated prices" if pending.empty else "the refits requested are running")
        window_keys = sorted(dg.AssetSelection.groups("walk_forward").resolve(context.repository_def.asset_graph))
        selection = {FIT: (fit_job.name, window_keys), ENSEMBLE: (ensemble_job.name, [ENSEMBLE_KEY]),
                     ADVICE: (advice_job.name, list(ADVICE_KEYS))}
        # The key names the latest event a run answers: the same marks are never requested twice (a failed refit
        # waits for a person, as the check says); a later restatement of the same partition gets a new run.
        latest = pending.groupby(["stage", "partition_date"])["recorded_at"].max()
        return [dg.RunRequest(run_key=f"restatement-{stage}-{partition}-{latest[(stage, partition)].isoformat()}",
                              job_name=selection[stage][0], asset_selection=selection[stage][1],
                              partition_key=str(partition), tags={"quant/refit": f"{stage} {partition}"})
                for stage, partition in ready]

    return restatement_refits
