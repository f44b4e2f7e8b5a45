"""A user's own prices and on-chain metrics from a CSV or Parquet file.

Dates are read as ISO 8601 (``2022-01-03``, or a timestamp such as ``2022-01-03T16:00:00-05:00``) unless the
person names the file's format (``QUANT_DATE_FORMAT``, a ``strptime`` pattern such as ``%m/%d/%Y``). A date in
any other form stops the load with one sentence naming the file, the column, the row and the fix: ``01/03/2022``
is 3 January to some and 1 March to others, and a history re-dated by a guess would pass every later check.

A timestamp with an offset is placed on the calendar day of the market that traded it: New York for equities,
UTC for crypto (``2022-01-03T20:00:00-05:00`` is a 3 January equity bar, not 4 January). A timestamp without an
offset is taken as that market's local time. Rows are numbered from 1 after the header.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA, InputError

PRICE_REQUIRED = ("symbol", "date", "close")
ONCHAIN_REQUIRED = ("asset", "metric", "date", "value")
EXCHANGE_ZONES = {"equity": ZoneInfo("America/New_York"), "crypto": ZoneInfo("UTC")}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%z", "%Z", "%T", "%p")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _read_text_columns(path: Path) -> pl.DataFrame:
    """Every column as text, so that type problems surface per row instead of failing the whole read."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        if _is_parquet(path):
            frame = pl.read_parquet(path)
            # A typed timestamp keeps its offset in ISO form; everything else becomes its plain text.
            return frame.with_columns(
                [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%z") for c, t in frame.schema.items()
                 if isinstance(t, pl.Datetime) and t.time_zone is not None]
            ).with_columns(pl.all().cast(pl.Utf8))
        _refuse_repeated_headers(path)
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError, ValueError, csv.Error) as error:
        if isinstance(error, InputError):
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: could not be parsed as {'Parquet' if _is_parquet(path) else 'CSV'} ({first_line})") from error


def _refuse_repeated_headers(path: Path) -> None:
    """Polars would silently rename a repeated header (``close_duplicated_0``); the person should choose."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    _refuse_case_duplicates(header, path)


def _canonical(name: str) -> str:
    """``Adj Close`` → ``adj_close``: spreadsheet headers in the names the tables use."""
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff")).lower()


def _refuse_case_duplicates(columns: list[str], path: Path) -> None:
    seen: dict[str, str] = {}
    for column in columns:
        name = _canonical(column)
        if name in seen:
            raise InputError(f"{path}: columns {seen[name]!r} and {column!r} name the same field {name!r}; "
                             f"keep one of them")
        seen[name] = column


def _check_columns(frame: pl.DataFrame, required: tuple[str, ...], path: Path) -> pl.DataFrame:
    _refuse_case_duplicates(frame.columns, path)
    frame = frame.rename({c: _canonical(c) for c in frame.columns})
    for column in required:
        if column not in frame.columns:
            raise InputError(f"{path}: missing required column {column} (found: {', '.join(frame.columns)}); "
                             f"{_MISSING_HINTS.get(column, f'add a {column} column')}")
    return frame


def _refuse_empty(frame: pl.DataFrame, path: Path) -> None:
    """An empty file is a failed export, not an instruction to store nothing new."""
    if frame.height == 0:
        raise InputError(f"{path}: no rows after the header; export the file again with its data")


_MISSING_HINTS = {
    "symbol": "add a symbol column naming each row's ticker, also in a one-ticker export",
    "close": "add a close column, or rename the column holding the closing price to close",
    "date": "add a date column in ISO 8601 form (YYYY-MM-DD)",
}


def _exchange_day(text: str, zone: ZoneInfo, date_format: str | None) -> date | None:
    """The calendar day ``text`` names on the exchange's clock, or None when it is not in the expected format."""
    try:
        if date_format is not None:
            moment = datetime.strptime(text, date_format)
        elif _ISO.fullmatch(text):
            moment = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
        else:
            return None
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.date()


def _parse_dates(frame: pl.DataFrame, path: Path, date_format: str | None, zones: pl.Series) -> pl.Series:
    """The ``date`` column as exchange-local days; empty cells give null (dropped and counted later);
    a value in another format stops the load."""
    if date_format is not None and not any(d in date_format for d in ("%Y", "%y")):
        raise InputError(f"QUANT_DATE_FORMAT={date_format!r} has no year (%Y or %y); name the whole date, e.g. %m/%d/%Y")
    texts = frame["date"].str.strip_chars()
    days: dict[tuple[str, str], date | None] = {}
    out: list[date | None] = []
    for row, (text, zone_name) in enumerate(zip(texts, zones), start=1):
        if text is None or text == "":
            out.append(None)
            continue
        key = (text, zone_name)
        if key not in days:
            days[key] = _exchange_day(text, _zone(zone_name), date_format)
        if days[key] is None:
            raise InputError(_bad_date(path, row, text, date_format))
        out.append(days[key])
    return pl.Series("date", out, dtype=pl.Date)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _bad_date(path: Path, row: int, text: str, date_format: str | None) -> str:
    if date_format is not None:
        return (f"{path}: column date, row {row}: {text!r} does not match QUANT_DATE_FORMAT={date_format!r}; "
                f"correct the value or set QUANT_DATE_FORMAT to the format the file uses")
    return (f"{path}: column date, row {row}: {text!r} is not an ISO 8601 date (YYYY-MM-DD) and is never guessed "
            f"(01/03/2022 is 3 January or 1 March); set QUANT_DATE_FORMAT to the file's format, e.g. %m/%d/%Y "
            f"or %d/%m/%Y, or write the dates as YYYY-MM-DD")


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
            raise InputError(f"{path}: column {column}, row {row}: {frame[column][broken[0]]!r} is not a number; "
                             f"leave the cell empty if there was no trade, or correct it")


def read_price_file(path: Path | str, date_format: str | None = None) -> pl.DataFrame:
    """Prices from ``symbol,date,close`` (+ optional ``open,high,low,volume,asset_class``); asset_class defaults to equity.

    Headers are matched without regard to case or spaces (``Date``, ``Close``, ``Adj Close`` → ``adj_close``,
    which is not used: ``close`` is stored as given). ``date_format`` is ``QUANT_DATE_FORMAT``; None means ISO 8601.
    """
    path = Path(path)
    frame = _check_columns(_read_text_columns(path), PRICE_REQUIRED, path)
    _refuse_empty(frame, path)
    asset_class = (pl.col("asset_class").str.strip_chars().str.to_lowercase().fill_null("equity")
                   if "asset_class" in frame.columns else pl.lit("equity"))
    # with_columns broadcasts the default to every row (select would give one row for a literal).
    classes = frame.with_columns(asset_class.alias("asset_class"))["asset_class"]
    zones = classes.replace_strict({"crypto": "UTC"}, default="America/New_York", return_dtype=pl.Utf8)
    parsed = frame.select(
        pl.col("symbol").str.strip_chars().str.to_uppercase().alias("symbol"),
        *(_number(c, frame) for c in ("open", "high", "low", "close", "volume")),
        pl.lit(f"file:{path.name}").alias("source"),
    ).with_columns(_parse_dates(frame, path, date_format, zones), classes)
    _numbers_or_fail(frame, parsed, ("open", "high", "low", "close", "volume"), path)
    return parsed.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()])


def read_onchain_file(path: Path | str, date_format: str | None = None) -> pl.DataFrame:
    """On-chain metrics from ``asset,metric,date,value[,known_at]``; known_at defaults to the end of the value's (UTC) day."""
    path = Path(path)
    frame = _check_columns(_read_text_columns(path), ONCHAIN_REQUIRED, path)
    _refuse_empty(frame, path)
    parsed = frame.select(
        pl.col("asset").str.strip_chars().str.to_uppercase().alias("asset"),
        pl.col("metric").str.strip_chars().alias("metric"),
        _number("value", frame),
        (pl.col("known_at").str.strip_chars().str.to_datetime(strict=False, time_zone="UTC")
         if "known_at" in frame.columns else pl.lit(None, dtype=pl.Datetime("us", "UTC"))).alias("known_at"),
        pl.lit(f"file:{path.name}").alias("source"),
    ).with_columns(_parse_dates(frame, path, date_format, pl.Series(["UTC"] * frame.height, dtype=pl.Utf8)))
    _numbers_or_fail(frame, parsed, ("value",), path)
    if "known_at" not in frame.columns:
        parsed = parsed.with_columns(
            (pl.col("date").cast(pl.Datetime("us", "UTC")) + timedelta(days=1)).alias("known_at")
        )
    return parsed.select([pl.col(c).cast(t) for c, t in ONCHAIN_SCHEMA.items()])
