"""Restatements: a provider that now answers other prices for days already stored (a split, a dividend adjustment,
a corrected print) restates what is stored, and records it in ``market.adjustments``.

Polygon answers split-adjusted bars, and a daily run fetches only the new days: after a 4:1 split every stored close
before the split would stay unadjusted and the next day would show a -75% return. So each network fetch also asks for
the last ``OVERLAP_SESSIONS`` stored days of every symbol (the overlap) and compares the provider's closes there with
the stored ones. For a symbol whose ratio ``fresh / stored`` leaves 1 by more than ``TOLERANCE`` on some overlap day,
the latest such day is the last restated day and the day after it the adjustment's effective date:

- overlap days up to it take the provider's rows as answered (exact, whatever the cause);
- every earlier stored day takes the ratio of the earliest overlap day (the factor that carries back into history
  the provider was not asked for): open, high, low and close times the factor, volume divided by it. A corrected
  print inside the overlap has a ratio of 1 on that earliest day, so the history before it is left as it was.

Restating by the factor rather than re-fetching the history keeps a daily run one request per symbol and never
deletes: a stored day the provider would no longer answer is adjusted, not lost. The event is recorded with its
symbol, factor, effective date, detection date and the restated range; ``propagated_at`` stays empty until a
features run has rebuilt from the earliest restated day (``pending_restatement`` / ``mark_propagated``), which is
what the ``restatements_propagated`` check on ``market/prices`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from quant_assets.lib.market.providers.schema import PRICE_SCHEMA
from quant_assets.lib.storage.refits import mark_restated_reads, utc_now
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns

OVERLAP_SESSIONS = 5
# The overlap looks this far back for a symbol's last stored days: a symbol silent for longer (delisted, a gap in
# the provider) is not re-fetched from years back by every daily run.
OVERLAP_CALENDAR_DAYS = 14
# Relative change of a close beyond float noise: anything the provider itself changed.
TOLERANCE = 1e-6
ADJUSTMENTS = "market.adjustments"
PRICES = "market.prices"
_SCALED = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Restatement:
    """The events found in one fetch and the stored rows they replace (every restated day of their symbols)."""

    events: pl.DataFrame
    rows: pl.DataFrame


def stored_overlap(warehouse: Warehouse, first: date) -> pl.DataFrame:
    """Each symbol's last ``OVERLAP_SESSIONS`` stored rows before ``first`` (within ``OVERLAP_CALENDAR_DAYS``)."""
    if not warehouse.table_exists(PRICES):
        return pl.DataFrame(schema=PRICE_SCHEMA)
    with warehouse.reader() as con:
        table = con.execute(
            f"SELECT * EXCLUDE (n) FROM (SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY date DESC) n "
            f"FROM {PRICES} WHERE date < ? AND date >= ?) WHERE n <= ? ORDER BY symbol, date",
            [first, first - timedelta(days=OVERLAP_CALENDAR_DAYS), OVERLAP_SESSIONS]).to_arrow_table()
    return _as_prices(pl.from_arrow(table))


def find_restatement(warehouse: Warehouse, overlap: pl.DataFrame, fresh: pl.DataFrame, first: date,
                     detected_on: date) -> Restatement | None:
    """The restatement that ``fresh`` (validated rows, overlap days included) implies for the stored ``overlap``
    rows of a slice starting on ``first``; None when every answered overlap close agrees with the stored one."""
    events = _events(overlap, fresh, first, detected_on)
    if events.height == 0:
        return None
    with warehouse.reader() as con:
        history = _as_prices(pl.from_arrow(con.execute(
            f"SELECT * FROM {PRICES} WHERE symbol IN (SELECT unnest(?)) AND date < ?",
            [events["symbol"].to_list(), first]).to_arrow_table()))
    rows = restated_rows(history, fresh, events)
    counts = rows.filter(pl.col("_changed")).group_by("symbol").agg(
        pl.col("date").min().alias("restated_from"), pl.len().alias("rows_restated"))
    events = events.drop("restated_from", "rows_restated").join(counts, on="symbol", how="inner").join(
        returns_changed_from(history, rows), on="symbol", how="left")
    return Restatement(events.select(_EVENT_COLUMNS), rows.drop("_changed").filter(
        pl.col("symbol").is_in(events["symbol"].implode())))


_EVENT_COLUMNS = ("symbol", "effective_date", "factor", "detected_on", "restated_from", "restated_to",
                  "rows_restated", "source", "returns_changed_from")


def _events(overlap: pl.DataFrame, fresh: pl.DataFrame, first: date, detected_on: date) -> pl.DataFrame:
    """Per symbol whose answered overlap disagrees: the carried factor, the reported factor and the last restated day."""
    # Only a source's own rows: a warehouse switched to another provider is not restated by the new one.
    pairs = overlap.select("symbol", "date", "source", pl.col("close").alias("stored")).join(
        fresh.select("symbol", "date", "close", "source"), on=["symbol", "date", "source"], how="inner").sort("symbol", "date")
    pairs = pairs.with_columns((pl.col("close") / pl.col("stored")).alias("ratio"))
    moved = ((pl.col("ratio") - 1).abs() > TOLERANCE)
    found = pairs.group_by("symbol").agg(
        pl.col("ratio").first().alias("carry"),
        pl.col("date").filter(moved).max().alias("restated_to"),
        pl.col("ratio").filter(moved).last().alias("last_ratio"),
        pl.col("source").first(),
    ).filter(pl.col("restated_to").is_not_null())
    carried = (pl.col("carry") - 1).abs() > TOLERANCE
    after = fresh.select("symbol", "date").join(found.select("symbol", "restated_to"), on="symbol") \
        .filter(pl.col("date") > pl.col("restated_to")).group_by("symbol").agg(pl.col("date").min().alias("next_day"))
    return found.join(after, on="symbol", how="left").with_columns(
        pl.when(carried).then(pl.col("carry")).otherwise(1.0).alias("carry"),
        pl.when(carried).then(pl.col("carry")).otherwise(pl.col("last_ratio")).alias("factor"),
        pl.col("next_day").fill_null(first).alias("effective_date"),
        pl.lit(detected_on).alias("detected_on"),
        pl.lit(None, dtype=pl.Date).alias("restated_from"),
        pl.lit(0, dtype=pl.UInt32).alias("rows_restated"),
    ).sort("symbol")


def restated_rows(history: pl.DataFrame, fresh: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """The stored rows of the events' symbols up to each ``restated_to``: the provider's row where it answered, else
    the stored row scaled by ``carry`` (prices times it, volume divided). ``_changed`` marks rows that differ."""
    bounds = events.select("symbol", "restated_to", "carry")
    stored = history.join(bounds, on="symbol").filter(pl.col("date") <= pl.col("restated_to"))
    answered = fresh.join(stored.select("symbol", "date"), on=["symbol", "date"], how="semi")
    scaled = stored.join(answered.select("symbol", "date"), on=["symbol", "date"], how="anti").with_columns(
        *(pl.col(c) * pl.col("carry") for c in _SCALED), pl.col("volume") / pl.col("carry"),
        ((pl.col("carry") - 1).abs() > TOLERANCE).alias("_changed"))
    original = stored.select("symbol", "date", pl.col("close").alias("_stored"))
    replaced = answered.join(original, on=["symbol", "date"]).with_columns(
        ((pl.col("close") / pl.col("_stored") - 1).abs() > TOLERANCE).alias("_changed")).drop("_stored")
    columns = [*PRICE_SCHEMA, "_changed"]
    return pl.concat([scaled.select(columns), replaced.select(columns)]).sort("symbol", "date")


def returns_changed_from(history: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Per symbol, the first stored day whose daily log return of close (or of volume) the restated ``rows`` change;
    null when none does. A factor applied to a whole stored history changes no return (every feature is a ratio of
    prices, so nothing computed from it changes); a provider that now answers other closes for some stored days, or
    adjusts only the days before a stored ex-date, does."""
    restated = rows.select("symbol", "date", pl.col("close").alias("new_close"), pl.col("volume").alias("new_volume"))
    both = history.select("symbol", "date", "close", "volume").join(restated, on=["symbol", "date"], how="left") \
        .with_columns(pl.col("new_close").fill_null(pl.col("close")), pl.col("new_volume").fill_null(pl.col("volume"))) \
        .sort("symbol", "date")

    def step(column: str) -> pl.Expr:
        return (pl.col(column) / pl.col(column).shift(1)).log().over("symbol")

    moved = lambda old, new: ((step(new) - step(old)).abs() > TOLERANCE).fill_null(
        step(new).is_null() != step(old).is_null())  # noqa: E731
    changed = both.filter(moved("close", "new_close") | moved("volume", "new_volume"))
    return changed.group_by("symbol").agg(pl.col("date").min().alias("returns_changed_from")).join(
        both.select("symbol").unique(), on="symbol", how="right").select("symbol", "returns_changed_from")


def store_restatement(warehouse: Warehouse, restatement: Restatement, recorded_at: datetime | None = None) -> None:
    """Replace the restated rows and record the events, in one transaction; mark what read a day whose return
    changed (``lib/storage/refits.py``)."""
    events = restatement.events.with_columns(
        pl.lit(recorded_at or utc_now()).alias("recorded_at"), pl.lit(None, dtype=pl.Datetime("us")).alias("propagated_at"))
    with warehouse.writer() as con:
        ensure_columns(con, ADJUSTMENTS, {"returns_changed_from": "DATE"})
        con.register("restated_rows", restatement.rows.to_arrow())
        con.register("adjustment_events", events.to_arrow())
        try:
            con.execute(f"DELETE FROM {PRICES} p USING adjustment_events e "
                        "WHERE p.symbol = e.symbol AND p.date <= e.restated_to")
            con.execute(f"INSERT INTO {PRICES} BY NAME SELECT * FROM restated_rows")
            con.execute(f"INSERT INTO {ADJUSTMENTS} BY NAME SELECT * FROM adjustment_events")
            mark_restated_reads(con, "adjustment_events")
        finally:
            con.unregister("restated_rows")
            con.unregister("adjustment_events")


def pending_restatement(warehouse: Warehouse) -> tuple[date, datetime] | None:
    """The earliest restated day of the events no features run has rebuilt yet, and the latest of their record
    times (what ``mark_propagated`` marks); None when every event has propagated."""
    if not warehouse.table_exists(ADJUSTMENTS):
        return None
    with warehouse.reader() as con:
        row = con.execute(f"SELECT min(restated_from), max(recorded_at) FROM {ADJUSTMENTS} "
                          "WHERE propagated_at IS NULL").fetchone()
    return None if row[0] is None else (row[0], row[1])


def mark_propagated(warehouse: Warehouse, recorded_until: datetime, at: datetime | None = None) -> None:
    """Mark the events recorded up to ``recorded_until`` as rebuilt downstream (a features run read them)."""
    with warehouse.writer() as con:
        con.execute(f"UPDATE {ADJUSTMENTS} SET propagated_at = ? WHERE propagated_at IS NULL AND recorded_at <= ?",
                    [at or utc_now(), recorded_until])


def unpropagated(warehouse: Warehouse) -> pl.DataFrame:
    """The recorded events whose restated days the features have not been rebuilt from yet."""
    if not warehouse.table_exists(ADJUSTMENTS):
        return pl.DataFrame()
    with warehouse.reader() as con:
        return pl.from_arrow(con.execute(
            f"SELECT symbol, effective_date, factor, detected_on, restated_from, recorded_at FROM {ADJUSTMENTS} "
            "WHERE propagated_at IS NULL ORDER BY recorded_at, symbol").to_arrow_table())


def _as_prices(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()])
