"""The provider frame schemas and the validation every frame passes before it reaches the warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import polars as pl

PRICE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "date": pl.Date,
    "asset_class": pl.Utf8,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "source": pl.Utf8,
}
ONCHAIN_SCHEMA: dict[str, pl.DataType] = {
    "asset": pl.Utf8,
    "metric": pl.Utf8,
    "date": pl.Date,
    "value": pl.Float64,
    "known_at": pl.Datetime("us", "UTC"),
    "source": pl.Utf8,
}
ASSET_CLASSES = ("equity", "crypto")
EXAMPLES_KEPT = 5
# A one-day close ratio at or beyond this factor (either way) looks like a split the source did not adjust.
SPLIT_FACTOR = 1.9


class InputError(ValueError):
    """Input that cannot be stored at all; the message is one sentence naming what and where."""


@dataclass
class ValidationReport:
    """What validation dropped and why, with a few examples a person can look up."""

    rows_in: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The keys of the dropped rows, so that a stored row is not replaced by nothing when its new version is invalid.
    dropped_keys: list[pl.DataFrame] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_kept

    def as_metadata(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped_by_reason": dict(self.dropped),
            "dropped_examples": list(self.examples),
            "warnings": list(self.warnings),
        }


def _drop(frame: pl.DataFrame, bad: pl.Expr, reason: str, keys: tuple[str, ...], report: ValidationReport) -> pl.DataFrame:
    flagged = frame.with_columns(bad.fill_null(True).alias("_bad"))
    dropped = flagged.filter(pl.col("_bad"))
    if dropped.height:
        report.dropped[reason] = report.dropped.get(reason, 0) + dropped.height
        report.dropped_keys.append(dropped.select(keys))
        room = EXAMPLES_KEPT - len(report.examples)
        if room > 0:
            # Described in Python from a few rows: formatting strings inside polars panicked on large frames.
            rows = dropped.head(room).select("_row", *keys).iter_rows(named=True)
            report.examples.extend(f"{reason}: {_row_label(row, keys)}" for row in rows)
    return flagged.filter(~pl.col("_bad")).drop("_bad")


def _row_label(row: dict[str, object], keys: tuple[str, ...]) -> str:
    """``row 12 (ACME, 2021-01-04)``; a key that is missing is left out rather than shown as None."""
    known = [str(row[k]) for k in keys if row[k] is not None and str(row[k]).strip()]
    return f"row {row['_row']}" + (f" ({', '.join(known)})" if known else "")


def _suspected_splits(frame: pl.DataFrame) -> list[str]:
    """Day-to-day closes that moved by a split-like factor (×2 or more either way): kept, since markets do
    move that much, but named so that an unadjusted split in a source does not pass unseen."""
    ratio = (pl.col("close") / pl.col("close").shift(1).over("symbol", order_by="date"))
    jumps = frame.sort("symbol", "date").with_columns(ratio.alias("_ratio")).filter(
        (pl.col("_ratio") >= SPLIT_FACTOR) | (pl.col("_ratio") <= 1 / SPLIT_FACTOR))
    return [f"{r['symbol']} {r['date']}: close moved ×{r['_ratio']:.3g} in one day (an unadjusted split?)"
            for r in jumps.head(EXAMPLES_KEPT).iter_rows(named=True)]


def validate_prices(frame: pl.DataFrame, origin: str, today: date | None = None) -> tuple[pl.DataFrame, ValidationReport]:
    """Drop invalid price rows (counted, with examples); raise ``InputError`` if nothing valid is left.

    Invalid: unknown asset_class, missing or future dates, non-finite or non-positive prices, and duplicate
    (symbol, date) pairs — all copies of a duplicated pair go, since nothing says which one is right.
    """
    today = today or datetime.now(timezone.utc).date()
    report = ValidationReport(rows_in=frame.height)
    work = frame.with_row_index("_row", offset=1)
    describe = ("symbol", "date")
    work = _drop(work, pl.col("symbol").is_null() | (pl.col("symbol").str.strip_chars() == ""), "missing symbol", describe, report)
    work = _drop(work, pl.col("date").is_null(), "missing date", describe, report)
    work = _drop(work, pl.col("date") > today, "future date", describe, report)
    work = _drop(work, ~pl.col("asset_class").is_in(ASSET_CLASSES), "unknown asset_class", describe, report)
    for column in ("open", "high", "low", "close"):
        value = pl.col(column)
        bad = value.is_nan() | value.is_infinite() | (value <= 0)
        if column == "close":
            bad = bad | value.is_null()
        else:
            bad = bad.fill_null(False)
        work = _drop(work, bad, f"missing, non-positive or non-finite {column}" if column == "close"
                     else f"non-positive or non-finite {column}", describe, report)
    work = _drop(
        work, pl.col("volume").is_nan().fill_null(False) | (pl.col("volume") < 0).fill_null(False),
        "negative or NaN volume", describe, report,
    )
    duplicated = pl.len().over(["symbol", "date"]) > 1
    work = _drop(work, duplicated, "duplicate (symbol, date)", describe, report)
    clean = work.drop("_row").sort(["symbol", "date"]).select(list(PRICE_SCHEMA))
    report.rows_kept = clean.height
    report.warnings.extend(_suspected_splits(clean))
    if clean.height == 0:
        raise InputError(f"{origin}: no valid price rows ({_summary(report)})")
    return clean, report


def validate_onchain(frame: pl.DataFrame, origin: str, today: date | None = None) -> tuple[pl.DataFrame, ValidationReport]:
    """Drop invalid on-chain rows; ``known_at`` may not precede the end of the value's own day."""
    today = today or datetime.now(timezone.utc).date()
    report = ValidationReport(rows_in=frame.height)
    work = frame.with_row_index("_row", offset=1)
    describe = ("asset", "metric", "date")
    work = _drop(work, pl.col("asset").is_null() | pl.col("metric").is_null(), "missing asset or metric", describe, report)
    work = _drop(work, pl.col("date").is_null(), "missing date", describe, report)
    work = _drop(work, pl.col("date") > today, "future date", describe, report)
    work = _drop(work, pl.col("value").is_null() | pl.col("value").is_nan() | pl.col("value").is_infinite(),
                 "non-finite value", describe, report)
    work = _drop(work, pl.col("known_at").is_null(), "unparseable known_at", describe, report)
    day_end = pl.col("date").cast(pl.Datetime("us", "UTC")) + pl.duration(days=1)
    work = _drop(work, pl.col("known_at") < day_end, "known_at before the day closed", describe, report)
    work = _drop(work, pl.len().over(["asset", "metric", "date"]) > 1, "duplicate (asset, metric, date)", describe, report)
    clean = work.drop("_row").sort(["asset", "metric", "date"]).select(list(ONCHAIN_SCHEMA))
    report.rows_kept = clean.height
    if clean.height == 0:
        raise InputError(f"{origin}: no valid on-chain rows ({_summary(report)})")
    return clean, report


def _summary(report: ValidationReport) -> str:
    if not report.dropped:
        return "it is empty"
    first = report.examples[0] if report.examples else ""
    reasons = ", ".join(f"{n} {reason}" for reason, n in report.dropped.items())
    return f"{reasons}; first: {first}"
