"""The LazyDatabase: one DuckDB file, opened only for as long as a read or a write needs it.

DuckDB lets one process hold a file read-write, and while it does no other process can open it at all
(and a reader blocks a writer the same way). So nothing here keeps a connection: writers serialize on a
cross-process file lock and retry while readers hold the file; readers retry with backoff while a writer
holds it. Every write is one transaction followed by ``CHECKPOINT`` so the WAL stays bounded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock

from quant_assets.lib.tables import DDL

# A new warehouse file is written in the storage format of DuckDB 1.4 (the LTS release), which the file keeps
# for its life: the DuckDB CLI, DBeaver's driver and older Python clients can then open what DuckDB 2 wrote.
STORAGE_COMPATIBILITY_VERSION = "v1.4.0"
_BUSY_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "being used by another process")


class WarehouseBusyError(RuntimeError):
    """The warehouse stayed locked by another process for longer than the wait allowed."""


def _is_busy(error: Exception) -> bool:
    return isinstance(error, (duckdb.IOException, duckdb.ConnectionException)) and any(
        marker in str(error) for marker in _BUSY_MARKERS
    )


class Warehouse:
    """Short-lived DuckDB handles on ``path`` under a cross-process lock; no connection at construction."""

    def __init__(self, path: Path | str, *, wait_seconds: float = 300.0) -> None:
        self.path = Path(path)
        self.wait_seconds = wait_seconds
        self.lock = FileLock(str(self.path) + ".lock", timeout=wait_seconds)

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if not read_only and not self.path.exists():
            create_compatible(self.path)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    if _is_busy(error):
                        raise WarehouseBusyError(
                            f"warehouse {self.path} stayed locked by another process for {self.wait_seconds:.0f}s"
                        ) from error
                    raise
            # Jitter keeps competing readers from retrying in lock-step.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write handle inside one transaction; commits and checkpoints on success, rolls back on error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            con = self._connect(read_only=False)
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only handle; waits while a writer holds the file."""
        if not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}; materialize the market assets first")
        con = self._connect(read_only=True)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer lock without a connection, for an outside writer such as dbt."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            yield

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Run a read query and return a pandas DataFrame."""
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    def table_exists(self, table: str) -> bool:
        if not self.path.exists():
            return False
        schema, name = table.split(".")
        with self.reader() as con:
            row = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            ).fetchone()
        return bool(row and row[0])

    def replace(self, table: str, frame: Any, where: Mapping[str, Any] | None = None) -> int:
        """Replace the rows of ``table`` matching ``where`` (all rows if None) by ``frame``, atomically.

        ``frame`` is a pandas or polars DataFrame whose columns are a subset of the table's; returns rows written.
        """
        with self.writer() as con:
            return replace_in(con, table, frame, where)


def create_compatible(path: Path) -> None:
    """Create an empty DuckDB file at ``path`` in the storage format of ``STORAGE_COMPATIBILITY_VERSION``."""
    duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY_VERSION}).close()


def ensure_table(con: duckdb.DuckDBPyConnection, table: str, like: str | None = None) -> None:
    """Create the schema and the table if missing: contract tables from their DDL, others shaped like ``like``."""
    schema = table.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if table in DDL:
        con.execute(DDL[table])
    elif like is not None:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {like} LIMIT 0")


def replace_in(con: duckdb.DuckDBPyConnection, table: str, frame: Any, where: Mapping[str, Any] | None) -> int:
    """Delete-then-insert inside the caller's transaction (so a re-materialization never duplicates)."""
    con.register("incoming_frame", frame)
    try:
        ensure_table(con, table, like="incoming_frame")
        if where:
            clause = " AND ".join(f"{column} = ?" for column in where)
            con.execute(f"DELETE FROM {table} WHERE {clause}", list(where.values()))
        else:
            con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_frame")
    finally:
        con.unregister("incoming_frame")
    return len(frame)
