"""What ``quant rebalance``, ``quant alerts`` and ``quant export`` read and write: the person's plays from their own
file, the day's advice from the warehouse (both through short-lived read handles), the lib's pure functions between.
Like the rest of the CLI it imports neither Dagster nor torch."""

from __future__ import annotations

import csv
import io
from datetime import date
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quant_assets import paths
from quant_assets.lib.projections.alerts import alerts, load_alert_inputs
from quant_assets.lib.projections.rebalance_terms import NoAdvice, RebalanceError, TradingTerms
from quant_assets.lib.projections.rebalance_book import held_shares, load_day_advice, rebalance
from quant_assets.lib.storage import personal
from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError

TRADE_COLUMNS = ("symbol", "side", "quantity", "limit_price", "note")
# What `quant export` writes beside the trades: the table, and the file it goes to.
LEDGERS = {"projections.trade_plan": "advice_ledger.parquet", "projections.scorecard": "scorecard.parquet"}


def trading_terms(overrides: dict[str, object]) -> TradingTerms:
    """The settings' trading terms (``QUANT_REBALANCE_*``) with ``overrides``; ``RebalanceError`` for a bad one."""
    from pydantic import ValidationError

    from quant_assets.settings import RebalanceSettings

    try:
        return RebalanceSettings().terms(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        raise RebalanceError(f"QUANT_REBALANCE_{str(first['loc'][0]).upper()}: {first['msg']}") from None


def read_plays(home: Path, wait_seconds: float) -> list[dict]:
    """The person's plays (none before the first one is added)."""
    store = personal.open_personal(paths.personal_path(home), paths.warehouse_path(home), wait_seconds)
    if not store.path.exists():
        return []
    with store.reader() as con:
        return personal.list_plays(con)


def _read_warehouse(home: Path, wait_seconds: float, read):
    path = paths.warehouse_path(home)
    if not path.exists():
        raise NoAdvice(f"no warehouse at {path}; run `make demo` or materialize the projections first")
    try:
        with Warehouse(path, wait_seconds=wait_seconds).reader() as con:
            return read(con)
    except WarehouseBusyError as error:
        raise NoAdvice(str(error)) from None


def rebalance_book(home: Path, cash: float, as_of: date | None, terms: TradingTerms, wait_seconds: float):
    """The rebalance lines and summary of the person's plays with ``cash`` added (negative: withdrawn)."""
    plays = read_plays(home, wait_seconds)
    advice = _read_warehouse(home, wait_seconds, lambda con: load_day_advice(con, as_of))
    return rebalance(advice, plays, cash, terms)


def book_alerts(home: Path, tolerance: float, wait_seconds: float) -> list[dict]:
    """The alerts on the person's plays after the latest advice."""
    held = held_shares(read_plays(home, wait_seconds))
    if not held:
        return []
    inputs = _read_warehouse(home, wait_seconds, lambda con: load_alert_inputs(con, sorted(held)))
    return alerts(held, *inputs, tolerance=tolerance)


@contextmanager
def book_connection(home: Path | None = None, wait_seconds: float = 30.0, **overrides) -> Iterator:
    """A read-only connection to the warehouse with ``rebalance(cash)`` and ``rebalance_at(cash, as_of)`` installed
    for the person's plays and trading terms (``overrides``: the names of ``RebalanceSettings``)::

        with book_connection() as con:
            con.sql("SELECT * FROM rebalance(1000)").show()
    """
    from quant_assets.lib.projections.rebalance_macro import install_rebalance_macros

    home = home or paths.home()
    terms, plays = trading_terms(overrides), read_plays(home, wait_seconds)
    path = paths.warehouse_path(home)
    if not path.exists():
        raise NoAdvice(f"no warehouse at {path}; run `make demo` or materialize the projections first")
    with Warehouse(path, wait_seconds=wait_seconds).reader() as con:
        install_rebalance_macros(con, plays, terms)
        yield con


def trades_csv(lines, as_of: date) -> str:
    """The orders in a broker-neutral layout: symbol, side, quantity, limit price (the last close), note."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    for line in lines[lines["side"] != "HOLD"].itertuples():
        note = f"rebalance toward the advice of {as_of}: target {line.target_weight:.2%}, cost ${line.cost:,.2f}"
        writer.writerow([line.symbol, line.side, f"{line.shares:.6g}", f"{line.last_price:.2f}", note])
    return out.getvalue()


def export(home: Path, folder: Path, cash: float, terms: TradingTerms, wait_seconds: float) -> list[Path]:
    """Write ``trades.csv`` (the rebalance with ``cash`` added), the advice ledger and the scorecard as Parquet into
    ``folder``; returns the files written. A ledger the warehouse does not hold yet is skipped."""
    lines, summary = rebalance_book(home, cash, None, terms, wait_seconds)
    folder.mkdir(parents=True, exist_ok=True)
    trades = folder / "trades.csv"
    trades.write_text(trades_csv(lines, summary["as_of"]), encoding="utf-8")
    written = [trades]

    def copy_ledgers(con) -> None:
        for table, name in LEDGERS.items():
            schema, table_name = table.split(".")
            if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                           [schema, table_name]).fetchone()[0]:
                target = folder / name
                con.execute(f"COPY (SELECT * FROM {table} ORDER BY ALL) TO '{target.as_posix()}' (FORMAT parquet)")
                written.append(target)

    _read_warehouse(home, wait_seconds, copy_ledgers)
    return written
