"""A user's own prices and on-chain metrics from a CSV or Parquet file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from quant_assets.lib.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA, InputError

PRICE_REQUIRED = ("symbol", "date", "close")
ONCHAIN_REQUIRED = ("asset", "metric", "date", "value")


def _read_text_columns(path: Path) -> pl.DataFrame:
    """Every column as text, so that type problems surface per row instead of failing the whole read."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
            return frame.with_columns(pl.all().cast(pl.Utf8))
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: could not be parsed as {'Parquet' if path.suffix.lower() in ('.parquet', '.pq') else 'CSV'} ({first_line})") from error


def _check_columns(frame: pl.DataFrame, required: tuple[str, ...], path: Path) -> pl.DataFrame:
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing required column {', '.join(missing)} (found: {', '.join(frame.columns)})")
    return frame


def _parse_date(column: str) -> pl.Expr:
    text = pl.col(column).str.strip_chars()
    return pl.coalesce(
        text.str.to_date("%Y-%m-%d", strict=False),
        text.str.to_datetime(strict=False, time_zone="UTC").dt.date(),
    )


def _number(column: str, frame: pl.DataFrame) -> pl.Expr:
    if column not in frame.columns:
        return pl.lit(None, dtype=pl.Float64).alias(column)
    return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False).alias(column)


def _numbers_or_fail(frame: pl.DataFrame, parsed: pl.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """A value that is present but not a number is a malformed file, not a bad row: name it and stop."""
    for column in columns:
        if column not in frame.columns:
            continue
        present = frame[column].is_not_null() & (frame[column].str.strip_chars() != "")
        broken = (present & parsed[column].is_null()).arg_true()
        if broken.len():
            row = broken[0] + 1
            raise InputError(f"{path}: column {column}, row {row}: {frame[column][broken[0]]!r} is not a number")


def read_price_file(path: Path | str) -> pl.DataFrame:
    """Prices from ``symbol,date,close`` (+ optional ``open,high,low,volume,asset_class``); asset_class defaults to equity."""
    path = Path(path)
    frame = _check_columns(_read_text_columns(path), PRICE_REQUIRED, path)
    parsed = frame.select(
        pl.col("symbol").str.strip_chars().str.to_uppercase().alias("symbol"),
        _parse_date("date").alias("date"),
        (pl.col("asset_class").str.strip_chars().str.to_lowercase().fill_null("equity")
         if "asset_class" in frame.columns else pl.lit("equity")).alias("asset_class"),
        *(_number(c, frame) for c in ("open", "high", "low", "close", "volume")),
        pl.lit(f"file:{path.name}").alias("source"),
    )
    _numbers_or_fail(frame, parsed, ("open", "high", "low", "close", "volume"), path)
    return parsed.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()])


def read_onchain_file(path: Path | str) -> pl.DataFrame:
    """On-chain metrics from ``asset,metric,date,value[,known_at]``; known_at defaults to the end of the value's day."""
    path = Path(path)
    frame = _check_columns(_read_text_columns(path), ONCHAIN_REQUIRED, path)
    parsed = frame.select(
        pl.col("asset").str.strip_chars().str.to_uppercase().alias("asset"),
        pl.col("metric").str.strip_chars().alias("metric"),
        _parse_date("date").alias("date"),
        _number("value", frame),
        (pl.col("known_at").str.strip_chars().str.to_datetime(strict=False, time_zone="UTC")
         if "known_at" in frame.columns else pl.lit(None, dtype=pl.Datetime("us", "UTC"))).alias("known_at"),
        pl.lit(f"file:{path.name}").alias("source"),
    )
    _numbers_or_fail(frame, parsed, ("value",), path)
    if "known_at" not in frame.columns:
        parsed = parsed.with_columns(
            (pl.col("date").cast(pl.Datetime("us", "UTC")) + timedelta(days=1)).alias("known_at")
        )
    return parsed.select([pl.col(c).cast(t) for c, t in ONCHAIN_SCHEMA.items()])
