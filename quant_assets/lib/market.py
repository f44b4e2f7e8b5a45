"""Fetch, validate and store market data: what the ``market`` assets do, without Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from quant_assets.lib.providers import fetch_onchain, fetch_prices
from quant_assets.lib.providers.schema import ValidationReport, validate_onchain, validate_prices
from quant_assets.lib.report import markdown_table
from quant_assets.lib.warehouse import Warehouse


@dataclass
class LoadResult:
    """What a load stored, from where, and what it dropped."""

    table: str
    origin: str
    report: ValidationReport
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        if not self.report.rows_dropped:
            return []
        return [f"{self.table}: dropped {self.report.rows_dropped} invalid rows from {self.origin}: {self.report.dropped}"]

    def metadata(self) -> dict[str, object]:
        return {"table": self.table, "origin": self.origin, "dagster/row_count": self.report.rows_kept,
                **self.report.as_metadata(), **self.summary}


def load_prices(settings, warehouse: Warehouse) -> LoadResult:
    """Replace ``market.prices`` with the validated prices of the configured provider.

    Validation happens before the write transaction, so a failure leaves the table as it was.
    """
    raw, origin = fetch_prices(settings)
    clean, report = validate_prices(raw, origin)
    warehouse.replace("market.prices", clean.to_arrow())
    return LoadResult("market.prices", origin, report, _price_summary(clean))


def load_onchain(settings, warehouse: Warehouse) -> LoadResult:
    """Replace ``market.onchain`` with the validated metrics; an empty source empties the table visibly."""
    raw, origin = fetch_onchain(settings)
    if raw.height == 0:
        warehouse.replace("market.onchain", raw.to_arrow())
        return LoadResult("market.onchain", origin, ValidationReport(), {"note": f"no on-chain source: {origin}"})
    clean, report = validate_onchain(raw, origin)
    # Stored as naive UTC so no session time zone can shift it.
    warehouse.replace("market.onchain", clean.with_columns(pl.col("known_at").dt.replace_time_zone(None)).to_arrow())
    summary = {
        "assets": sorted(clean["asset"].unique().to_list()),
        "metrics": sorted(clean["metric"].unique().to_list()),
        "sources": sorted(clean["source"].unique().to_list()),
    }
    return LoadResult("market.onchain", origin, report, summary)


def _price_summary(clean: pl.DataFrame) -> dict[str, object]:
    per_symbol = clean.group_by("symbol").agg(pl.len().alias("rows"), pl.col("date").min().alias("first"),
                                               pl.col("date").max().alias("last"))
    return {
        "symbols": clean["symbol"].n_unique(),
        "first_date": str(clean["date"].min()),
        "last_date": str(clean["date"].max()),
        "sources": sorted(clean["source"].unique().to_list()),
        "per_symbol": markdown_table(per_symbol.sort("symbol")),
    }
