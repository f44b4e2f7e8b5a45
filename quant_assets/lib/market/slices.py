"""Fetch, validate and complete one slice of market data: what the ``market`` assets do, without Dagster.

A slice is a range of days (one daily partition, or many in a single-run backfill). It holds only final
bars (``lib/calendar.py``), and a symbol the provider left out of its answer keeps the rows already stored
for it: a provider's gap never deletes history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from quant_assets.lib.market.calendar import last_completed_day
from quant_assets.lib.market.providers import fetch_onchain, fetch_prices
from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA, ValidationReport, validate_onchain, validate_prices
from quant_assets.render.report import markdown_table
from quant_assets.lib.storage.warehouse import Warehouse


@dataclass(frozen=True)
class Slice:
    """Days ``first`` to ``last`` inclusive, judged complete at ``now``."""

    first: date
    last: date
    now: datetime


@dataclass
class LoadResult:
    """The slice to store, where it came from, what was dropped, and which symbols kept their stored rows."""

    table: str
    origin: str
    report: ValidationReport
    frame: pl.DataFrame
    summary: dict[str, object] = field(default_factory=dict)
    kept_symbols: list[str] = field(default_factory=list)
    not_final: int = 0
    kept_rows: int = 0

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.report.rows_dropped:
            found.append(f"{self.table}: dropped {self.report.rows_dropped} invalid rows from {self.origin}: {self.report.dropped}")
        if self.kept_rows:
            found.append(f"{self.table}: kept {self.kept_rows} stored rows whose new version from {self.origin} "
                         "was invalid")
        if self.kept_symbols:
            found.append(f"{self.table}: {self.origin} returned nothing for {', '.join(self.kept_symbols)} in this "
                         "range; their stored rows are kept")
        return found

    def metadata(self) -> dict[str, object]:
        return {"table": self.table, "origin": self.origin, "dagster/row_count": self.frame.height,
                **self.report.as_metadata(), "rows_not_final": self.not_final,
                "symbols_kept_from_storage": self.kept_symbols, "rows_kept_from_storage": self.kept_rows,
                **self.summary}


def load_prices(settings, warehouse: Warehouse, days: Slice) -> LoadResult:
    """The validated, final prices of ``days`` from the configured provider, plus the stored rows of absent symbols.

    Validation happens before anything is written, so a bad answer leaves the table as it was.
    """
    raw, origin = fetch_prices(settings, days.first, days.last)
    clean, report = validate_prices(raw, origin) if raw.height else (raw.select(list(PRICE_SCHEMA)), ValidationReport())
    final = _final_rows(clean, days, pl.col("asset_class"))
    frame, kept = _keep_absent(warehouse, "market.prices", "symbol", final, days)
    frame, restored = _keep_where_dropped(warehouse, "market.prices", frame, report, days)
    return LoadResult("market.prices", origin, report, frame, _price_summary(frame), kept,
                      _in_range(clean, days).height - final.height, restored)


def load_onchain(settings, warehouse: Warehouse, days: Slice) -> LoadResult:
    """The validated on-chain metrics of ``days`` (a crypto day is final once it has ended), stored as naive UTC."""
    raw, origin = fetch_onchain(settings, days.first, days.last)
    if raw.height:
        clean, report = validate_onchain(raw, origin)
    else:
        clean, report = raw.select(list(ONCHAIN_SCHEMA)), ValidationReport()
    # Naive UTC, so that no session time zone can shift it.
    clean = clean.with_columns(pl.col("known_at").dt.replace_time_zone(None))
    final = _final_rows(clean, days, pl.lit("crypto"))
    frame, kept = _keep_absent(warehouse, "market.onchain", "asset", final, days)
    frame, restored = _keep_where_dropped(warehouse, "market.onchain", frame, report, days)
    summary = {"assets": sorted(frame["asset"].unique().to_list()), "metrics": sorted(frame["metric"].unique().to_list()),
               "sources": sorted(frame["source"].unique().to_list())}
    if not raw.height:
        summary["note"] = f"no on-chain rows from {origin}"
    return LoadResult("market.onchain", origin, report, frame, summary, kept,
                      _in_range(clean, days).height - final.height, restored)


def _in_range(frame: pl.DataFrame, days: Slice) -> pl.DataFrame:
    return frame.filter(pl.col("date").is_between(days.first, days.last))


def _final_rows(frame: pl.DataFrame, days: Slice, asset_class: pl.Expr) -> pl.DataFrame:
    """Rows of the slice whose day is complete at ``days.now``: an in-progress bar is never stored as a close."""
    cutoff = pl.when(asset_class == "crypto").then(pl.lit(last_completed_day("crypto", days.now))) \
        .otherwise(pl.lit(last_completed_day("equity", days.now)))
    return _in_range(frame, days).filter(pl.col("date") <= cutoff)


def _keep_absent(warehouse: Warehouse, table: str, key: str, fresh: pl.DataFrame, days: Slice) -> tuple[pl.DataFrame, list[str]]:
    """Add the stored rows of the slice for every ``key`` (symbol, asset) that the fresh answer lacks."""
    if not warehouse.table_exists(table):
        return fresh, []
    with warehouse.reader() as con:
        stored = pl.from_arrow(con.execute(f"SELECT * FROM {table} WHERE date BETWEEN ? AND ?",
                                           [days.first, days.last]).to_arrow_table())
    absent = stored.filter(~pl.col(key).is_in(fresh[key].unique().implode()))
    if absent.height == 0:
        return fresh, []
    absent = absent.select([pl.col(c).cast(fresh.schema[c]) for c in fresh.columns])
    return pl.concat([fresh, absent]), sorted(absent[key].unique().to_list())


def _keep_where_dropped(warehouse: Warehouse, table: str, fresh: pl.DataFrame, report: ValidationReport,
                        days: Slice) -> tuple[pl.DataFrame, int]:
    """Add the stored rows of the slice whose key the answer had but validation dropped (an empty cell, a
    duplicate): an invalid new version of a row never deletes the valid one already stored."""
    keys = [k for k in (pl.concat(report.dropped_keys) if report.dropped_keys else pl.DataFrame()).iter_rows()
            if None not in k]
    if not keys or not warehouse.table_exists(table):
        return fresh, 0
    names = list(report.dropped_keys[0].columns)
    with warehouse.reader() as con:
        stored = pl.from_arrow(con.execute(f"SELECT * FROM {table} WHERE date BETWEEN ? AND ?",
                                           [days.first, days.last]).to_arrow_table())
    wanted = pl.DataFrame(keys, schema={n: stored.schema[n] for n in names}, orient="row").unique()
    restored = stored.join(wanted, on=names, how="semi").join(fresh.select(names), on=names, how="anti")
    if restored.height == 0:
        return fresh, 0
    return pl.concat([fresh, restored.select([pl.col(c).cast(fresh.schema[c]) for c in fresh.columns])]), restored.height


def _price_summary(frame: pl.DataFrame) -> dict[str, object]:
    if frame.height == 0:
        return {"symbols": 0}
    per_symbol = frame.group_by("symbol").agg(pl.len().alias("rows"), pl.col("date").min().alias("first"),
                                               pl.col("date").max().alias("last"))
    return {
        "symbols": frame["symbol"].n_unique(),
        "first_date": str(frame["date"].min()),
        "last_date": str(frame["date"].max()),
        "sources": sorted(frame["source"].unique().to_list()),
        "per_symbol": markdown_table(per_symbol.sort("symbol")),
    }
