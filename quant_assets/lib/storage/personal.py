"""The person's own data: what only they write (their plays), in a DuckDB file of its own beside the warehouse.

The pipeline can rebuild the warehouse from its providers; it cannot rebuild a person's positions. So they live in
``personal.duckdb`` (schema ``portfolio``: the same ``portfolio.plays`` table as before), which no asset opens, and
deleting the warehouse to start over keeps them. A warehouse from before this split still holds its
``portfolio.plays``; ``open_personal`` copies those rows over once, while the personal file does not exist yet.
Plays go out and back in as CSV (``plays_csv``, ``read_plays_csv``) and both files are copied whole by ``backup``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError, ensure_table, has_table

log = logging.getLogger(__name__)

PLAYS = "portfolio.plays"
CSV_COLUMNS = ("play_id", "symbol", "shares", "entry_price", "entry_date", "note")
MAX_SHARES = 1e9
MAX_PRICE = 1e9
MAX_NOTE = 500
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class PlayError(ValueError):
    """A play (or a row of a plays file) is not valid; the message names the field and, for a file, the row."""


def open_personal(path: Path, warehouse_path: Path, wait_seconds: float = 30.0) -> Warehouse:
    """The personal store at ``path``; on first use, the plays an older warehouse held are copied into it."""
    store = Warehouse(path, wait_seconds=wait_seconds)
    if not path.exists() and warehouse_path.exists():
        _copy_plays_from(Warehouse(warehouse_path, wait_seconds=wait_seconds), store)
    return store


def _copy_plays_from(warehouse: Warehouse, store: Warehouse) -> None:
    try:
        with warehouse.reader() as con:
            if not has_table(con, PLAYS):
                return
            rows = con.execute(f"SELECT * FROM {PLAYS} ORDER BY play_id").fetchall()
    except WarehouseBusyError:
        # Copied on a later opening: nothing is lost meanwhile, the rows stay where they were.
        log.warning("the warehouse is busy; the plays it holds from an earlier version are copied next time")
        return
    with store.writer() as con:
        ensure_table(con, PLAYS)
        con.executemany(f"INSERT INTO {PLAYS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    log.info("copied %d plays from the warehouse into %s, where they live from now on", len(rows), store.path)


def validate_play(symbol: str, shares: float, entry_price: float, entry_date: date, note: str | None,
                  today: date) -> dict[str, object]:
    """A play's fields, cleaned (symbol upper-case, note stripped), or ``PlayError`` naming the first wrong one."""
    symbol = (symbol or "").strip().upper()
    if not symbol:
        raise PlayError("symbol is empty")
    if not math.isfinite(shares) or shares <= 0:
        raise PlayError(f"shares must be a positive number, got {shares}")
    if shares > MAX_SHARES:
        raise PlayError(f"shares {shares:,.0f} is above the {MAX_SHARES:,.0f} limit")
    if not math.isfinite(entry_price) or entry_price <= 0:
        raise PlayError(f"entry_price must be a positive number of dollars, got {entry_price}")
    if entry_price > MAX_PRICE:
        raise PlayError(f"entry_price {entry_price:,.0f} is above the {MAX_PRICE:.0e} dollar limit")
    if entry_date > today:
        raise PlayError(f"entry_date {entry_date} is in the future (today is {today})")
    if note is not None and len(note) > MAX_NOTE:
        raise PlayError(f"note is {len(note)} characters long; keep it under {MAX_NOTE}")
    return {"symbol": symbol, "shares": float(shares), "entry_price": float(entry_price), "entry_date": entry_date,
            "note": (note or "").strip()}


def insert_play(con, play: dict[str, object]) -> int:
    """Store a new play inside the caller's write transaction; returns its id."""
    ensure_table(con, PLAYS)
    play_id = con.execute(f"SELECT coalesce(max(play_id), 0) + 1 FROM {PLAYS}").fetchone()[0]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute(f"INSERT INTO {PLAYS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [play_id, play["symbol"], play["shares"], play["entry_price"], play["entry_date"], play["note"], now, now])
    return int(play_id)


def list_plays(con) -> list[dict]:
    """Every stored play (the columns of ``portfolio.plays``) in entry order."""
    if not has_table(con, PLAYS):
        return []
    cursor = con.execute(f"SELECT * FROM {PLAYS} ORDER BY entry_date, play_id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def update_play(con, play_id: int, play: dict[str, object]) -> bool:
    """Replace a play's fields inside the caller's write transaction; False when there is no such play."""
    if not has_table(con, PLAYS):
        return False
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    changed = con.execute(f"""UPDATE {PLAYS} SET symbol = ?, shares = ?, entry_price = ?, entry_date = ?, note = ?,
                              updated_at = ? WHERE play_id = ? RETURNING play_id""",
                          [play["symbol"], play["shares"], play["entry_price"], play["entry_date"], play["note"], now,
                           play_id]).fetchall()
    return bool(changed)


def delete_play(con, play_id: int) -> bool:
    """Remove a play inside the caller's write transaction; False when there is no such play."""
    if not has_table(con, PLAYS):
        return False
    return bool(con.execute(f"DELETE FROM {PLAYS} WHERE play_id = ? RETURNING play_id", [play_id]).fetchall())


def plays_csv(con) -> str:
    """Every play as CSV (``CSV_COLUMNS``, ISO dates), in entry order: what ``read_plays_csv`` reads back (only the
    header without a connection, before the first play)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    if con is not None and has_table(con, PLAYS):
        writer.writerows(con.execute(f"SELECT {', '.join(CSV_COLUMNS)} FROM {PLAYS} ORDER BY entry_date, play_id")
                         .fetchall())
    return out.getvalue()


def read_plays_csv(text: str, source: str, today: date) -> list[dict[str, object]]:
    """The plays of a CSV with ``symbol, shares, entry_price, entry_date[, note]`` (a ``play_id`` column is ignored:
    imported plays get new ids), every row valid, or ``PlayError`` naming the file, the row and the field."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    columns = {name.strip().lower() for name in reader.fieldnames or []}
    missing = [name for name in ("symbol", "shares", "entry_price", "entry_date") if name not in columns]
    if missing:
        raise PlayError(f"{source}: no {', '.join(missing)} column (expected {', '.join(CSV_COLUMNS[1:])})")
    plays = []
    for number, raw in enumerate(reader, start=2):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()}
        try:
            plays.append(validate_play(row["symbol"], _number(row, "shares"), _number(row, "entry_price"),
                                       _iso_date(row["entry_date"]), row.get("note") or None, today))
        except PlayError as error:
            raise PlayError(f"{source} line {number}: {error}") from None
    if not plays:
        raise PlayError(f"{source}: no plays in the file")
    return plays


def _number(row: dict[str, str], field: str) -> float:
    try:
        return float(row[field])
    except ValueError:
        raise PlayError(f"{field} {row[field]!r} is not a number") from None


def _iso_date(text: str) -> date:
    # ISO only: 03/01/2022 is 3 January to some and 1 March to others.
    try:
        if ISO_DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise PlayError(f"entry_date {text!r} is not a date written YYYY-MM-DD")


def backup(files: list[Path], folder: Path) -> list[Path]:
    """Copy each DuckDB file (and a WAL a killed writer left) into ``folder`` while holding its writer lock, so no
    write is half in a copy; files that do not exist are skipped. Returns the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        if not path.exists():
            continue
        with Warehouse(path).exclusive():
            for part in (path, path.with_name(path.name + ".wal")):
                if part.exists():
                    copies.append(Path(shutil.copy2(part, folder / part.name)))
    return copies
