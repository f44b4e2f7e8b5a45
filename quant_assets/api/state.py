"""What one API process holds: the warehouse (a path, never a connection), the live provider, and the last
answer of each read, so that a request arriving while the pipeline holds the file still gets one."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from quant_assets import paths
from quant_assets.api.config import ApiConfig
from quant_assets.api import pages
from quant_assets.lib.market.live import LastClose, LivePrices
from quant_assets.lib.storage import personal
from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError


class WarehouseUnavailable(RuntimeError):
    """The pipeline holds the warehouse and no earlier answer to this question is kept."""


@dataclass
class Read:
    """A value read from the warehouse and how fresh it is."""

    value: Any
    read_at: datetime
    from_cache: bool
    note: str = ""

    def freshness(self, stamp: float | None) -> dict[str, object]:
        return {
            "read_at": self.read_at.isoformat(),
            "warehouse_modified_at": datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None,
            "served_from_cache": self.from_cache,
            "note": self.note,
        }


class _Answers:
    """The last answer per question with the warehouse stamp it was read at: at most ``size`` of them (the least
    recently asked go first) and none older than ``max_age`` seconds."""

    def __init__(self, size: int, max_age: float) -> None:
        self.size, self.max_age = size, max_age
        self._kept: OrderedDict[tuple, tuple[float | None, Read, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: tuple) -> tuple[float | None, Read] | None:
        with self._lock:
            entry = self._kept.get(key)
            if entry is None:
                return None
            if time.monotonic() - entry[2] > self.max_age:
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return entry[0], entry[1]

    def put(self, key: tuple, stamp: float | None, read: Read) -> None:
        with self._lock:
            self._kept[key] = (stamp, read, time.monotonic())
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


class ApiState:
    """Reads through short-lived handles, keyed by the warehouse's modification time."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.reads = Warehouse(config.warehouse_path, wait_seconds=config.read_wait_seconds)
        self.personal = personal.open_personal(config.personal_path or paths.personal_path(config.warehouse_path.parent),
                                               config.warehouse_path, config.write_wait_seconds)
        self.answers = _Answers(config.answers_kept, config.answers_max_age_seconds)
        self.live = LivePrices(
            self.last_closes, polygon_key=config.polygon_key, enabled=config.live_enabled,
            polygon_url=config.polygon_url, coinbase_url=config.coinbase_url,
            ttl_seconds=config.live_ttl_seconds, timeout_seconds=config.live_timeout_seconds,
            deadline_seconds=config.live_deadline_seconds,
        )

    def plays(self) -> list[dict]:
        """The person's plays, read from their own file (which the pipeline never holds)."""
        if not self.personal.path.exists():
            return []
        with self.personal.reader() as con:
            return personal.list_plays(con)

    def stamp(self) -> float | None:
        """The latest modification time of the warehouse file and its WAL (None when there is no warehouse)."""
        path = self.config.warehouse_path
        times = [p.stat().st_mtime for p in (path, path.with_name(path.name + ".wal")) if p.exists()]
        return max(times) if path.exists() else None

    def read(self, key: tuple, load: Callable[[Any], Any]) -> Read:
        """``load(connection)`` through a short-lived read handle, or its earlier result when the warehouse has not
        changed since, or — while a writer holds the file — its last result, marked as such."""
        stamp = self.stamp()
        kept = self.answers.get(key)
        if kept and kept[0] == stamp:
            return kept[1]
        if stamp is None:
            raise pages.NotFound("no warehouse in QUANT_HOME yet; run `make demo` first")
        try:
            with self.reads.reader() as con:
                value = load(con)
        except WarehouseBusyError:
            if kept:
                held = kept[1]
                return Read(held.value, held.read_at, True, "the pipeline is writing; this is the last answer read "
                            f"at {held.read_at:%Y-%m-%d %H:%M:%S} UTC")
            raise WarehouseUnavailable("the pipeline is writing to the warehouse; try again in a few seconds") from None
        result = Read(value, datetime.now(timezone.utc), False)
        self.answers.put(key, stamp, result)
        return result

    def last_closes(self, symbols: Iterable[str]) -> dict[str, LastClose]:
        known = self.read(("known",), pages.known_symbols).value
        return {s: known[s] for s in symbols if s in known}

    def close(self) -> None:
        self.live.close()

