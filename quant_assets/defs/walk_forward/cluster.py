"""The walk-forward group in the distributed profile (``QUANT_PROFILE=cluster``, see ``deploy/``).

The same assets as on one machine, but the fits run on Celery workers that never open the DuckDB file: the window's
inputs are exported to the object store (``walk_forward_inputs``), each fit reads them and writes its outputs there
through ``ObjectStoreIOManager`` (Parquet, one folder per asset partition), and ``walk_forward_outputs`` imports
them into the warehouse tables, so the ensemble, the projections and the API read what they read on one machine.
Steps that open the warehouse go to the Celery queue ``warehouse``, served by a worker on the warehouse's host.
"""

from datetime import date

import dagster as dg

from quant_assets.defs.features.assets import FEATURES_KEY, LABELS_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.defs.walk_forward.assets import PLAN_KEY, build_walk_forward_defs
from quant_assets.lib.storage import object_store
from quant_assets.lib.walk_forward import remote
from quant_assets.lib.models import BASELINE, MODEL_NAMES, model_entry
from quant_assets.settings import Settings

OBJECT_STORE_IO_MANAGER = "object_store_io_manager"
INPUTS_KEY = dg.AssetKey(["walk_forward_inputs"])
OUTPUTS_KEY = dg.AssetKey(["walk_forward_outputs"])
WAREHOUSE_QUEUE = "warehouse"
ON_WAREHOUSE_HOST = {"dagster-celery/queue": WAREHOUSE_QUEUE}


class _FramesIOManager(dg.UPathIOManager):
    """A dict of Arrow tables per asset partition, as ``<root>/<asset key>/<partition>/<table>.parquet``."""

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        object_store.write_frames(path.fs, path.path, obj)

    def load_from_path(self, context: dg.InputContext, path):
        return object_store.read_frames(path.fs, path.path)


class ObjectStoreIOManager(dg.ConfigurableIOManagerFactory):
    """Parquet partitions on an S3-API object store (s3fs); credentials from the usual AWS variables."""

    root: str
    endpoint_url: str | None = None

    def create_io_manager(self, context) -> _FramesIOManager:
        from upath import UPath

        options = {"client_kwargs": {"endpoint_url": self.endpoint_url}} if self.endpoint_url else {}
        return _FramesIOManager(base_path=UPath(self.root, **options))


def walk_forward_executor(settings: Settings) -> dg.ExecutorDefinition:
    """dagster-celery on the profile's broker (results on the same Redis): a worker listens on ``dagster`` (the fits)
    and, on the warehouse's host, on ``warehouse``. Or, with QUANT_CLUSTER_EXECUTOR=k8s, dagster-k8s's executor,
    one Kubernetes Job per step (its run config: deploy/k8s/walk_forward_run_config.yaml)."""
    if settings.cluster_executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    from dagster_celery import celery_executor

    return celery_executor.configured({"broker": settings.celery_broker, "backend": settings.celery_broker},
                                      name="celery_walk_forward")


def build_cluster_walk_forward_defs(partitions: dg.PartitionsDefinition) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The plan and its audit on the warehouse queue, the window's inputs, the fits on any worker, and the import."""
    assets, checks = build_walk_forward_defs(partitions, warehouse_op_tags=ON_WAREHOUSE_HOST, fit_asset=_cluster_fit_asset)

    @dg.asset(key=INPUTS_KEY, group_name="walk_forward", partitions_def=partitions, deps=[PLAN_KEY, FEATURES_KEY, LABELS_KEY],
              kinds={"duckdb", "parquet", "s3"}, io_manager_key=OBJECT_STORE_IO_MANAGER, op_tags=ON_WAREHOUSE_HOST,
              description="The window's plans and the feature and label rows its fits read, exported for the workers.")
    def walk_forward_inputs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output:
        frames = remote.export_fold_inputs(warehouse.get(), _window_start(context))
        return dg.Output(frames, metadata={f"rows {table}": frame.num_rows for table, frame in frames.items()})

    fits = [dg.AssetKey(f"fit_{name}") for name in (*MODEL_NAMES, BASELINE)]

    @dg.asset(key=OUTPUTS_KEY, group_name="walk_forward", partitions_def=partitions, deps=fits, kinds={"duckdb", "parquet"},
              op_tags=ON_WAREHOUSE_HOST,
              description="The fits' predictions, fit records and scores imported from the object store into the warehouse.")
    def walk_forward_outputs(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                             settings: SettingsResource) -> dg.MaterializeResult:
        chosen = settings.get()
        key = context.partition_key
        folders = {name: _folder(chosen, dg.AssetKey(f"fit_{name}"), key) for name in (*MODEL_NAMES, BASELINE)}
        fs = object_store.filesystem(chosen.s3_endpoint_url)
        present = {name: folder for name, folder in folders.items() if fs.exists(folder)}
        counts = object_store.import_fold_outputs(warehouse.get(), fs, present, _window_start(context))
        return dg.MaterializeResult(metadata={"models": sorted(present), "dagster/row_count": counts["forecasts.predictions"],
                                              **{f"rows {table}": n for table, n in counts.items()}})

    return [*assets, walk_forward_inputs, walk_forward_outputs], checks


def _folder(settings: Settings, asset_key: dg.AssetKey, partition_key: str) -> str:
    """Where ``ObjectStoreIOManager`` keeps one partition of an asset."""
    return "/".join([settings.object_store.rstrip("/"), *asset_key.path, partition_key])


def _window_start(context) -> date:
    return date.fromisoformat(context.partition_key)


def _cluster_fit_asset(model_name: str, partitions: dg.PartitionsDefinition):
    _, _, family, kind = model_entry(model_name)

    @dg.asset(name=f"fit_{model_name}", group_name="walk_forward", partitions_def=partitions,
              ins={"window_inputs": dg.AssetIn(INPUTS_KEY)}, deps=[PLAN_KEY, FEATURES_KEY, LABELS_KEY],
              kinds={kind, "parquet", "mlflow"}, io_manager_key=OBJECT_STORE_IO_MANAGER, tags={"family": family},
              description=f"Out-of-sample distributional forecasts of {model_name} for the window, on a Celery worker.")
    def fit(context: dg.AssetExecutionContext, settings: SettingsResource, window_inputs) -> dg.Output:
        chosen = settings.get()
        outputs, summary = remote.fit_fold(window_inputs, model_name, _window_start(context), seed=chosen.seed,
                                                 models_home=chosen.models_home, tracking=chosen.tracking_store,
                                                 dagster_run_id=context.run_id)
        return dg.Output(outputs, metadata=as_dagster_metadata(summary))

    # Unlike one machine's fits, the check is a step of its own here: it audits what the worker uploaded, read back
    # from the object store. A check that takes a partitioned asset as an input is handed every partition, so it
    # reads its window's folders.
    @dg.asset_check(asset=fit, name="training_cutoff", blocking=True,
                    description="Fails if the fit trained on a label that ended inside the window or its embargo.")
    def training_cutoff(context: dg.AssetCheckExecutionContext, settings: SettingsResource) -> dg.AssetCheckResult:
        chosen = settings.get()
        fs = object_store.filesystem(chosen.s3_endpoint_url)
        inputs, outputs = (object_store.read_frames(fs, _folder(chosen, key, context.partition_key))
                           for key in (INPUTS_KEY, dg.AssetKey(f"fit_{model_name}")))
        violations = remote.audit_fold(inputs, outputs, _window_start(context), model_name)
        return dg.AssetCheckResult(passed=not violations, metadata={"violations": dg.MetadataValue.json(violations)})

    return fit, [training_cutoff]
