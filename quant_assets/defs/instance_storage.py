"""The Dagster instance's event log: Dagster's SQLite storage, with batches of asset events written in bulk.

A single-run backfill of twenty years of days records one ASSET_MATERIALIZATION per day and asset. Dagster
hands the materializations of one output to ``store_event_batch`` (when ``DAGSTER_EVENT_BATCH_SIZE`` > 0),
but the SQLite storage stores them one by one: a new engine, a schema check and two transactions per event,
about 20 ms of CPU each. Here a batch is one transaction per shard (run shard and index shard), one compiled
INSERT for all its rows, the indexed tags in one statement, and the asset-key row updated once per asset and
event type instead of once per event. The rows written are those ``store_event`` would write, in the same
order with the same ids; any batch holding an event this does not handle goes through ``store_event``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool


def _is_keyed_asset_event(event: EventLogEntry) -> bool:
    return (event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
            and event.get_dagster_event().asset_key is not None)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` (same files, same rows) whose ``store_event_batch`` writes in bulk."""

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        runs = {event.run_id for event in events}
        if len(events) < 2 or len(runs) != 1 or not all(_is_keyed_asset_event(e) for e in events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        # The index transaction commits inside the run shard's, so a failure anywhere rolls both back and
        # Dagster's fallback (storing the batch event by event) starts from a clean state.
        with self._db_lock, self._shard_transaction(runs.pop()) as run_conn:
            run_conn.execute(SqlEventLogStorageTable.insert(), rows)
            with self._shard_transaction(INDEX_SHARD_NAME) as index_conn:
                ids = index_conn.execute(
                    SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id,
                                                               sort_by_parameter_order=True),
                    rows).scalars().all()
                self._store_asset_event_tags(index_conn, events, ids)
                for position in _last_per_asset_and_type(events):
                    self._store_asset_event(index_conn, events[position], ids[position])

    @contextmanager
    def _shard_transaction(self, shard: str) -> Iterator[Connection]:
        """What ``_connect`` yields (a connection in a begun transaction), for a caller holding ``_db_lock``."""
        engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        try:
            with engine.connect() as conn, conn.begin():
                yield conn
        finally:
            engine.dispose()


def _last_per_asset_and_type(events: Sequence[EventLogEntry]) -> list[int]:
    """Positions, in order, of the last event of each (asset key, event type): the asset-key row takes each
    column from the last event that sets it, and the columns an event sets depend only on its type."""
    last = {(e.get_dagster_event().asset_key, e.dagster_event_type): i for i, e in enumerate(events)}
    return sorted(last.values())
