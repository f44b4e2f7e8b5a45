"""Fetch, validate and complete one slice of market data: what the ``market`` assets do, without Dagster.

A slice is a range of days (one daily partition, or many in a single-run backfill). It holds only final
bars (``lib/market/calendar.py``), and a partial answer never deletes: a stored row is replaced only by a valid
new version of the same key — (symbol, date) for prices, (asset, metric, date) for on-chain metrics. A day the
provider left out keeps its stored row, and the metadata names those days per symbol (per asset and metric).
A network fetch also re-reads a few stored days before the slice and restates the history it finds the provider
has changed (``lib/market/adjustments.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from quant_assets.lib.market.adjustments import Restatement, find_restatement, stored_overlap
from quant_assets.lib.market.calendar import last_completed_day
from quant_assets.lib.market.providers import ProviderConfig, fetch_onchain, fetch_prices
from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA, ValidationReport, validate_onchain, validate_prices
from quant_assets.lib.storage.warehouse import Warehouse

PRICE_KEY = ("symbol", "date")
ONCHAIN_KEY = ("asset", "metric", "date")
# Runs of kept days named per symbol before the rest are summed up, so a missing symbol over twenty years of
# backfill does not fill the metadata with thousands of dates.
RUNS_NAMED = 10


@dataclass(frozen=True)
class Slice:
    """Days ``first`` to ``last`` inclusive, judged complete at ``now``."""

    first: date
    last: date
    now: datetime


@dataclass
class LoadResult:
    """The slice to store, where it came from, what was dropped, which stored days were kept, what was restated."""

    table: str
    origin: str
    report: ValidationReport
    frame: pl.DataFrame
    summary: dict[str, object] = field(default_factory=dict)
    # Per symbol (on-chain: ``ASSET/metric``), the stored days the answer did not include, as ranges.
    unanswered: dict[str, list[str]] = field(default_factory=dict)
    not_final: int = 0
    kept_rows: int = 0
    restatement: Restatement | None = None

    @property
    def kept_symbols(self) -> list[str]:
        return sorted(self.unanswered)

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.report.rows_dropped:
            found.append(f"{self.table}: dropped {self.report.rows_dropped} invalid rows from {self.origin}: {self.report.dropped}")
        if self.kept_rows:
            found.append(f"{self.table}: kept {self.kept_rows} stored rows whose new version from {self.origin} "
                         "was invalid")
        if self.unanswered:
            named = "; ".join(f"{key} {', '.join(days)}" for key, days in sorted(self.unanswered.items()))
            found.append(f"{self.table}: {self.origin} did not answer these stored days, which are kept: {named}")
        if self.restatement is not None:
            found.extend(f"{self.table}: {self.origin} restated {e['symbol']} before {e['effective_date']} by "
                         f"×{e['factor']:.6g} ({e['rows_restated']} stored rows from {e['restated_from']}); its "
                         "features must be rebuilt" for e in self.restatement.events.iter_rows(named=True))
        return found

    def metadata(self) -> dict[str, object]:
        restated = [] if self.restatement is None else [
            {k: str(v) if isinstance(v, date) else v for k, v in e.items()}
            for e in self.restatement.events.iter_rows(named=True)]
        return {"table": self.table, "origin": self.origin, "dagster/row_count": self.frame.height,
                **self.report.as_metadata(), "rows_not_final": self.not_final,
                "symbols_kept_from_storage": self.kept_symbols, "days_kept_from_storage": self.unanswered,
                "rows_kept_from_storage": self.kept_rows, "restatements": restated, **self.summary}


def load_prices(config: ProviderConfig, warehouse: Warehouse, days: Slice) -> LoadResult:
    """The validated, final prices of ``days`` from the configured provider, plus the stored rows it did not answer
    validly, and (network providers) the restatement of stored history the provider's overlap days reveal.

    Validation happens before anything is written, so a bad answer leaves the table as it was. The restatement is
    returned, not written: the caller stores it (``adjustments.store_restatement``) along with the slice.
    """
    overlap = stored_overlap(warehouse, days.first) if config.uses_network else pl.DataFrame(schema=PRICE_SCHEMA)
    start = min(overlap["date"].min(), days.first) if overlap.height else days.first
    raw, origin = fetch_prices(config, start, days.last)
    clean, report = validate_prices(raw, origin) if raw.height else (raw.select(list(PRICE_SCHEMA)), ValidationReport())
    restatement = find_restatement(warehouse, overlap, clean, days.first, days.last) if overlap.height else None
    final = _final_rows(clean, days, pl.col("asset_class"))
    stored = stored_slice(warehouse, "market.prices", days)
    frame, unanswered, restored = keep_stored(stored, PRICE_KEY, final, report)
    return LoadResult("market.prices", origin, report, frame, _price_summary(frame), unanswered,
                      _in_range(clean, days).height - final.height, restored, restatement)


def load_onchain(config: ProviderConfig, warehouse: Warehouse, days: Slice) -> LoadResult:
    """The validated on-chain metrics of ``days`` (a crypto day is final once it has ended), stored as naive UTC."""
    raw, origin = fetch_onchain(config, days.first, days.last)
    if raw.height:
        clean, report = validate_onchain(raw, origin)
    else:
        clean, report = raw.select(list(ONCHAIN_SCHEMA)), ValidationReport()
    # Naive UTC, so that no session time zone can shift it.
    clean = clean.with_columns(pl.col("known_at").dt.replace_time_zone(None))
    final = _final_rows(clean, days, pl.lit("crypto"))
    stored = stored_slice(warehouse, "market.onchain", days)
    frame, unanswered, restored = keep_stored(stored, ONCHAIN_KEY, final, report)
    summary = {"assets": sorted(frame["asset"].unique().to_list()), "metrics": sorted(frame["metric"].unique().to_list()),
               "sources": sorted(frame["source"].unique().to_list())}
    if not raw.height:
        summary["note"] = f"no on-chain rows from {origin}"
    return LoadResult("market.onchain", origin, report, frame, summary, unanswered,
                      _in_range(clean, days).height - final.height, restored)


def _in_range(frame: pl.DataFrame, days: Slice) -> pl.DataFrame:
    return frame.filter(pl.col("date").is_between(days.first, days.last))


def _final_rows(frame: pl.DataFrame, days: Slice, asset_class: pl.Expr) -> pl.DataFrame:
    """Rows of the slice whose day is complete at ``days.now``: an in-progress bar is never stored as a close."""
    cutoff = pl.when(asset_class == "crypto").then(pl.lit(last_completed_day("crypto", days.now))) \
        .otherwise(pl.lit(last_completed_day("equity", days.now)))
    return _in_range(frame, days).filter(pl.col("date") <= cutoff)


def stored_slice(warehouse: Warehouse, table: str, days: Slice) -> pl.DataFrame | None:
    """The stored rows of ``table`` dated in the slice (None before the table exists)."""
    if not warehouse.table_exists(table):
        return None
    with warehouse.reader() as con:
        return pl.from_arrow(con.execute(f"SELECT * FROM {table} WHERE date BETWEEN ? AND ?",
                                         [days.first, days.last]).to_arrow_table())


def keep_stored(stored: pl.DataFrame | None, keys: tuple[str, ...], fresh: pl.DataFrame,
                report: ValidationReport) -> tuple[pl.DataFrame, dict[str, list[str]], int]:
    """``fresh`` plus every ``stored`` row whose key it lacks (a stored row is replaced only by a valid new version
    of its key); the days the answer left out (named per series), and how many kept rows had a new version that
    validation dropped (an empty cell, a duplicate)."""
    if stored is None:
        return fresh, {}, 0
    keys = list(keys)
    stored = stored.select([pl.col(c).cast(fresh.schema[c]) for c in fresh.columns])
    kept = stored.join(fresh.select(keys), on=keys, how="anti")
    if kept.height == 0:
        return fresh, {}, 0
    dropped = (pl.concat([k.select([pl.col(c).cast(fresh.schema[c]) for c in keys]) for k in report.dropped_keys])
               .drop_nulls().unique() if report.dropped_keys else pl.DataFrame(schema={c: fresh.schema[c] for c in keys}))
    invalid = kept.join(dropped, on=keys, how="semi").height
    unanswered = kept.join(dropped, on=keys, how="anti")
    return pl.concat([fresh, kept]), _day_runs(stored, unanswered, keys[:-1]), invalid


def _day_runs(stored: pl.DataFrame, kept: pl.DataFrame, series: list[str]) -> dict[str, list[str]]:
    """The kept days of each series as runs of consecutive stored days: ``2022-06-15..2022-06-20 (4 days)``."""
    if kept.height == 0:
        return {}
    marked = stored.select(*series, "date").join(kept.select(*series, "date").with_columns(pl.lit(True).alias("_kept")),
                                                on=[*series, "date"], how="left").sort(*series, "date")
    flag = pl.col("_kept").fill_null(False)
    runs = marked.with_columns((flag != flag.shift(1)).fill_null(True).cum_sum().over(series).alias("_run")) \
        .filter(flag).group_by(*series, "_run").agg(pl.col("date").min().alias("first"),
                                                    pl.col("date").max().alias("last"), pl.len().alias("n")) \
        .sort(*series, "first")
    out: dict[str, list[str]] = {}
    for row in runs.iter_rows(named=True):
        label = "/".join(str(row[c]) for c in series)
        out.setdefault(label, []).append(str(row["first"]) if row["n"] == 1
                                         else f"{row['first']}..{row['last']} ({row['n']} days)")
    for label, named in out.items():
        if len(named) > RUNS_NAMED:
            out[label] = [*named[:RUNS_NAMED], f"and {len(named) - RUNS_NAMED} more runs"]
    return out


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
        "per_symbol": per_symbol.sort("symbol"),
    }
