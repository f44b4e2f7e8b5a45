"""What a restatement of stored prices leaves stale downstream, and the writes that refresh it.

A restatement (``lib/market/adjustments.py``) that changes a stored day's log return falsifies whatever was computed
from that day: the fits and ensembles of every window whose rows reach it, and the advice of every day on or after
it. When the event is stored, each of those already in the warehouse gets a row here (``mark_restated_reads``, in the
restatement's own transaction); the write that replaces one refreshes its rows (``refresh``), in that write's
transaction: a flag written by the run that did the work. A row refreshes only once its event has propagated into the
features, so a fit that ran on the old features before the features run does not count.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pandas as pd

from quant_assets.lib.storage.warehouse import Warehouse, ensure_table, has_table

REFITS = "market.restatement_refits"
ADJUSTMENTS = "market.adjustments"
FIT, ENSEMBLE, ADVICE = "fit", "ensemble", "advice"
STAGES = (FIT, ENSEMBLE, ADVICE)
# What each stage stored, as (model, partition_date, last date its inputs reached): the fits' and the ensembles'
# rows run to the last day they were predicted for; a day's advice reads prices up to that day.
_STORED = {
    FIT: ("forecasts.predictions", "SELECT model, window_start, max(date) FROM forecasts.predictions GROUP BY ALL"),
    ENSEMBLE: ("forecasts.ensemble", "SELECT '', window_start, max(date) FROM forecasts.ensemble GROUP BY ALL"),
    ADVICE: ("projections.allocations", "SELECT DISTINCT '', as_of, as_of FROM projections.allocations"),
}


def mark_restated_reads(con: duckdb.DuckDBPyConnection, events: str) -> int:
    """Inside the restatement's transaction: mark every stored fit, ensemble and advice day whose inputs reach an
    event's ``returns_changed_from`` (``events``: a relation with symbol, recorded_at, returns_changed_from).
    Returns the rows marked."""
    ensure_table(con, REFITS)
    before = con.execute(f"SELECT count(*) FROM {REFITS}").fetchall()[0][0]
    for stage, (table, stored) in _STORED.items():
        if not has_table(con, table):
            continue
        con.execute(f"""
            INSERT INTO {REFITS} BY NAME
            SELECT ? AS stage, s.model, s.partition_date, e.symbol, e.recorded_at, e.returns_changed_from
            FROM ({stored}) s(model, partition_date, reaches)
            JOIN {events} e ON e.returns_changed_from IS NOT NULL AND s.reaches >= e.returns_changed_from
            ON CONFLICT DO NOTHING""", [stage])
    return con.execute(f"SELECT count(*) FROM {REFITS}").fetchall()[0][0] - before


def refresh(con: duckdb.DuckDBPyConnection, stage: str, partition_date: date, models: list[str] | None = None,
            at: datetime | None = None) -> None:
    """Inside the write that replaced them: refresh the stage's marks of ``partition_date`` (for ``models``, fits
    only) whose events the features have been rebuilt from."""
    if not has_table(con, REFITS):
        return
    model_clause, params = ("AND r.model IN (SELECT unnest(?))", [models]) if models is not None else ("", [])
    con.execute(f"""
        UPDATE {REFITS} r SET refreshed_at = ?
        FROM {ADJUSTMENTS} a
        WHERE r.refreshed_at IS NULL AND r.stage = ? AND r.partition_date = ? {model_clause}
          AND a.symbol = r.symbol AND a.recorded_at = r.recorded_at AND a.propagated_at IS NOT NULL""",
                [at or utc_now(), stage, partition_date, *params])


def pending_refits(warehouse: Warehouse) -> pd.DataFrame:
    """The marks not yet refreshed: stage, model, partition_date, the symbols whose restatement stales them, the
    earliest day whose return changed and the latest event's record time. One row per (stage, model, partition_date)."""
    columns = ["stage", "model", "partition_date", "symbols", "returns_changed_from", "recorded_at"]
    if not warehouse.table_exists(REFITS):
        return pd.DataFrame(columns=columns)
    pending = warehouse.query(f"""
        SELECT stage, model, partition_date, list(DISTINCT symbol ORDER BY symbol) AS symbols,
               min(returns_changed_from) AS returns_changed_from, max(recorded_at) AS recorded_at
        FROM {REFITS} WHERE refreshed_at IS NULL GROUP BY ALL ORDER BY partition_date, stage, model""")[columns]
    for column in ("partition_date", "returns_changed_from"):
        pending[column] = pd.to_datetime(pending[column]).dt.date
    return pending


def runnable_refits(pending: pd.DataFrame) -> list[tuple[str, date]]:
    """Of the ``pending`` marks, the (stage, partition_date) re-materializations that can start now, in order: every
    stale window's fits; a window's ensemble once its own fits and every earlier window's are done and no earlier
    ensemble waits (each window's ensemble learns from the earlier ones); the advice days once no window waits."""
    by_stage = {stage: sorted(set(pending.loc[pending["stage"] == stage, "partition_date"])) for stage in STAGES}
    ready = [(FIT, window) for window in by_stage[FIT]]
    ensembles = by_stage[ENSEMBLE]
    if ensembles and not any(window <= ensembles[0] for window in by_stage[FIT]):
        ready.append((ENSEMBLE, ensembles[0]))
    if not by_stage[FIT] and not ensembles:
        ready.extend((ADVICE, day) for day in by_stage[ADVICE])
    return ready


def utc_now() -> datetime:
    """Naive UTC, as DuckDB's TIMESTAMP stores it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
