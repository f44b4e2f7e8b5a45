"""The LazyDatabase: one DuckDB file, opened only for as long as a read or a write needs it.

DuckDB lets one process hold a file read-write, and while it does no other process can open it at all
(and a reader blocks a writer the same way). So nothing here keeps a connection, and every handle is
opened under a cross-process lock with writer priority:

- ``<file>.queue/`` is a first-come, first-served line. Everyone who wants the file adds a ticket (a file
  named by the time it asked, held under an ``flock`` for as long as its owner lives) and waits for the
  tickets ahead of it: a reader only for earlier writers, a writer for everyone earlier. So no writer
  waits behind an endless stream of readers, no reader behind an endless stream of writers, and a
  process killed while waiting or holding the file drops out of the line by itself (its ``flock`` dies
  with it and the next waiter removes the ticket).
- ``<file>.lock`` is a shared/exclusive ``flock`` held for the life of a handle: readers shared, writers
  exclusive, so DuckDB's own file lock is never the thing anyone waits on.

Every write is one transaction followed by ``CHECKPOINT`` so the WAL stays bounded; a writer killed
mid-transaction leaves the file as of its last commit (DuckDB replays or discards the WAL on open), and
the kernel releases its locks with the process.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from quant_assets.lib.storage.tables import DDL

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


class _Backoff:
    """Jittered exponential sleeps up to a deadline (jitter keeps competing processes out of lock-step)."""

    def __init__(self, seconds: float, first: float = 0.002, longest: float = 0.02) -> None:
        self.deadline = time.monotonic() + seconds
        self.delay, self.longest = first, longest

    def wait(self) -> bool:
        """Sleep once; False when the deadline has passed."""
        if time.monotonic() > self.deadline:
            return False
        time.sleep(self.delay * (0.5 + random.random()))
        self.delay = min(self.delay * 2, self.longest)
        return True


class _LockFile:
    """One ``flock``-able file; ``acquire`` polls without blocking so a wait can time out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self, mode: int) -> bool:
        if self.fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self, mode: int, backoff: _Backoff, busy: str) -> None:
        while not self.try_acquire(mode):
            if not backoff.wait():
                self.release()
                raise WarehouseBusyError(busy)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


class _Ticket:
    """A place in the warehouse's line: ``<time_ns>-<pid>-<thread>-<r|w>`` in the queue folder, flocked by its owner."""

    def __init__(self, folder: Path, exclusive: bool) -> None:
        self.folder = folder
        self.exclusive = exclusive
        self.name = f"{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}-{'w' if exclusive else 'r'}"
        self.fd: int | None = None

    def __enter__(self) -> _Ticket:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Locked under a private name, then renamed into the line: a ticket in the line is never unlocked
        # while its owner lives, so an unlocked one is a dead owner's.
        draft = self.folder / f".{self.name}"
        self.fd = os.open(draft, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.rename(draft, self.folder / self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.unlink(self.folder / self.name)
        except FileNotFoundError:
            pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _blockers(self) -> list[str]:
        ahead = sorted(n for n in os.listdir(self.folder) if not n.startswith(".") and n < self.name)
        return ahead if self.exclusive else [n for n in ahead if n.endswith("-w")]

    def _remove_if_dead(self, name: str) -> None:
        try:
            fd = os.open(self.folder / name, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # alive
        finally:
            os.close(fd)
        try:
            os.unlink(self.folder / name)
        except FileNotFoundError:
            pass

    def wait_turn(self, backoff: _Backoff, busy: str) -> None:
        while blockers := self._blockers():
            self._remove_if_dead(blockers[0])
            if not backoff.wait():
                raise WarehouseBusyError(busy)


_held = threading.local()  # lock files this thread already holds, so a nested writer/reader does not wait on itself


class Warehouse:
    """Short-lived DuckDB handles on ``path`` under a cross-process lock; no connection at construction."""

    def __init__(self, path: Path | str, *, wait_seconds: float = 300.0) -> None:
        self.path = Path(path)
        self.wait_seconds = wait_seconds

    def _busy(self, who: str) -> str:
        return (f"warehouse {self.path} stayed locked by another process for {self.wait_seconds:.0f}s "
                f"({who}); try again when the running materialization has finished")

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """The cross-process lock: exclusive with writer priority, or shared behind any announced writer."""
        key = str(self.path.resolve())
        held = getattr(_held, "modes", None)
        if held is None:
            held = _held.modes = {}
        if key in held and (held[key] or not exclusive):
            yield  # this thread already holds a lock at least as strong
            return
        if key in held:
            raise RuntimeError(f"a write to {self.path} was started inside a read of it in the same thread")
        backoff = _Backoff(self.wait_seconds)
        main = _LockFile(Path(str(self.path) + ".lock"))
        with _Ticket(Path(str(self.path) + ".queue"), exclusive) as ticket:
            ticket.wait_turn(backoff, self._busy("waiting in line for the file"))
            try:
                main.acquire(fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, backoff,
                             self._busy("held outside the line"))
                held[key] = exclusive
                try:
                    yield
                finally:
                    del held[key]
            finally:
                main.release()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if not read_only and not self.path.exists():
            create_compatible(self.path)
        # Under our lock DuckDB's own is free, unless a process outside it (the duckdb CLI) has the file open.
        backoff = _Backoff(self.wait_seconds, first=0.005, longest=0.25)
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if not _is_busy(error):
                    raise
                if not backoff.wait():
                    raise WarehouseBusyError(self._busy("held open outside quant_assets")) from error

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write handle inside one transaction; commits and checkpoints on success, rolls back on error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(exclusive=True):
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
        """A read-only handle; waits while a writer holds or has asked for the file."""
        if not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}; materialize the market assets first")
        with self._locked(exclusive=False):
            con = self._connect(read_only=True)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer lock without a connection, for an outside writer such as dbt."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(exclusive=True):
            yield

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Run a read query and return a pandas DataFrame."""
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    def table_exists(self, table: str) -> bool:
        if not self.path.exists():
            return False
        with self.reader() as con:
            return has_table(con, table)

    def replace(self, table: str, frame: Any, where: Mapping[str, Any] | None = None) -> int:
        """Replace the rows of ``table`` matching ``where`` (all rows if None) by ``frame``, atomically.

        ``frame`` is a pandas or polars DataFrame whose columns are a subset of the table's; returns rows written.
        """
        with self.writer() as con:
            return replace_in(con, table, frame, where)


def create_compatible(path: Path) -> None:
    """Create an empty DuckDB file at ``path`` in the storage format of ``STORAGE_COMPATIBILITY_VERSION``."""
    duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY_VERSION}).close()


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``schema.name`` exists, asked of the catalog: inside a transaction a failed query would abort it."""
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchone()[0])


def ensure_table(con: duckdb.DuckDBPyConnection, table: str, like: str | None = None) -> None:
    """Create the schema and the table if missing: contract tables from their DDL, others shaped like ``like``."""
    schema = table.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if table in DDL:
        con.execute(DDL[table])
    elif like is not None:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {like} LIMIT 0")


def ensure_columns(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    """Create ``table`` from its DDL if missing and add any of ``columns`` (name -> SQL type) it lacks, so a
    warehouse written before a column joined the contract keeps its rows and accepts the new ones."""
    ensure_table(con, table)
    for name, sql_type in columns.items():
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql_type}")


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
