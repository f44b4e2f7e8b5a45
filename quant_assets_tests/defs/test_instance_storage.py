"""The instance's event log (dagster.yaml → BatchedSqliteEventLogStorage): a single-run backfill of market prices
records the same materializations, partitions, asset records and tags as Dagster's default SQLite storage, its
per-day materializations written as one batch, and a batch that fails leaves neither shard half-written."""

import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log import SqliteEventLogStorage

from quant_assets.demo import local as demo
from quant_assets.defs.automation import RANGE_END, RANGE_START
from quant_assets.defs.instance_storage import BatchedSqliteEventLogStorage
from quant_assets.defs.market.assets import PRICES_KEY
from quant_assets.settings import get_settings

HISTORY = {RANGE_START: "2021-01-01", RANGE_END: "2021-03-31"}
MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION
RUN_ID = str(uuid.uuid4())


@pytest.fixture
def instances(quant_home, tmp_path, monkeypatch):
    """The demo's instance (the checked-in template, the demo's environment) and a default-storage instance."""
    # demo._instance sets these in os.environ: set here first, so that they are restored after the test.
    for name, value in {**demo.SINGLE_RUN_EVENTS, "DAGSTER_HOME": str(quant_home / "dagster")}.items():
        monkeypatch.setenv(name, value)
    configured = demo._instance(get_settings())
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    default = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "default"))
    yield configured, default
    configured.dispose()
    default.dispose()


def backfill_prices(instance):
    """The market job's prices over HISTORY in one run of id RUN_ID (the data versions hash the run id, the code
    version of an unversioned asset) into a new warehouse (so that each instance's run loads the same rows)."""
    from quant_assets.definitions import build_definitions

    get_settings().warehouse_path.unlink(missing_ok=True)

    result = build_definitions().resolve_job_def("market").execute_in_process(
        instance=instance, tags=HISTORY, asset_selection=[PRICES_KEY], run_config=demo.QUIET, run_id=RUN_ID)
    assert result.success


def asset_state(instance):
    """What `make ui` and the automation read of the asset: its materializations (each with its storage id,
    partition, metadata and tags, data version included), materialized partitions, latest materialization,
    asset record, indexed tags, and the run's event log."""
    (record,) = instance.get_asset_records([PRICES_KEY])
    entry = record.asset_entry
    latest = instance.get_latest_materialization_event(PRICES_KEY)
    return {
        "materializations": [(r.storage_id, r.partition_key, r.run_id, r.asset_materialization)
                             for r in instance.fetch_materializations(PRICES_KEY, limit=10_000).records],
        "partitions": instance.get_materialized_partitions(PRICES_KEY),
        "latest": (latest.dagster_event.partition, latest.dagster_event.step_materialization_data.materialization),
        "record": (entry.last_materialization_record.storage_id, entry.last_materialization == latest,
                   entry.last_run_id, entry.last_planned_materialization_storage_id,
                   entry.last_planned_materialization_run_id),
        "indexed tags": [sorted(tags.items()) for tags in instance.get_event_tags_for_asset(PRICES_KEY)],
        "run events": [(e.dagster_event_type, e.dagster_event.partition if e.dagster_event else None)
                       for e in instance.all_logs(RUN_ID)],
    }


def test_the_demo_instance_stores_a_backfill_as_the_default_storage_does(instances, monkeypatch):
    configured, default = instances
    assert isinstance(configured.event_log_storage, BatchedSqliteEventLogStorage)
    assert type(default.event_log_storage) is SqliteEventLogStorage
    stored_one_by_one = []
    original = SqliteEventLogStorage.store_event
    monkeypatch.setattr(SqliteEventLogStorage, "store_event",
                        lambda self, event: stored_one_by_one.append(event.dagster_event_type) or original(self, event))

    backfill_prices(configured)
    assert MATERIALIZATION not in stored_one_by_one  # the per-day materializations went as a batch
    backfill_prices(default)
    assert stored_one_by_one.count(MATERIALIZATION) > 1  # the default stores them one by one

    batched, reference = asset_state(configured), asset_state(default)
    days = dg.DailyPartitionsDefinition(start_date=HISTORY[RANGE_START], end_date="2021-04-01").get_partition_keys()
    assert reference["partitions"] == set(days)
    assert [m[1] for m in reference["materializations"]] == days[::-1]
    assert len(reference["indexed tags"]) == len(days)  # each materialization's data version
    for part in reference:
        assert batched[part] == reference[part], part

    # A home written with the default storage reads the same through the checked-in configuration (`make ui`
    # rewrites it on an existing demo home).
    default_home = Path(default.root_directory)
    (default_home / "dagster.yaml").write_text(demo.instance_config(default_home))
    with dg.DagsterInstance.from_config(str(default_home)) as reopened:
        assert isinstance(reopened.event_log_storage, BatchedSqliteEventLogStorage)
        assert asset_state(reopened) == reference


def test_a_batch_that_fails_midway_leaves_neither_shard_written(instances, tmp_path):
    """The index shard's writes fail after the events are inserted in both shards: both transactions roll back,
    so Dagster's fallback (the events stored one by one) gives what the default storage stores."""
    configured, default = instances
    backfill_prices(default)
    events = [e for e in default.all_logs(RUN_ID) if e.dagster_event_type == MATERIALIZATION]
    assert len(events) > 1
    storage = BatchedSqliteEventLogStorage(str(tmp_path / "fresh"))

    def fail(*_):
        raise RuntimeError("disk full")

    storage._store_asset_event = fail
    with pytest.raises(RuntimeError, match="disk full"):
        storage.store_event_batch(events)
    del storage._store_asset_event
    assert storage.get_logs_for_run(RUN_ID) == []
    assert storage.fetch_materializations(PRICES_KEY, limit=10).records == []
    assert storage.get_asset_records([PRICES_KEY]) == []

    for event in events:
        storage.store_event(event)
    expected = default.event_log_storage.fetch_materializations(PRICES_KEY, limit=10_000).records
    got = storage.fetch_materializations(PRICES_KEY, limit=10_000).records
    assert [(r.partition_key, r.event_log_entry) for r in got] == [(r.partition_key, r.event_log_entry) for r in expected]
