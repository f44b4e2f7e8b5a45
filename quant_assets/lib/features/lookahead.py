"""Lookahead (truncation) audit for point-in-time features.

A feature is point-in-time when its value at date d is the same whether or not the future exists. The
audit rebuilds the features from history truncated at a few cut dates (price rows dated <= cut, on-chain
rows public by the end of the cut day) and compares every value dated <= cut with the full build. Any
difference means a feature peeked past its own date.

The builder for the ``dbt_features`` project is ``dbt_runner.DbtFeatureBuilder``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.lib.features.dbt_runner import DbtFeatureBuilder, as_pandas

KEY_COLUMNS: tuple[str, str] = ("symbol", "date")
# Pseudo-column naming a row that exists in the full build but not in the truncated one (or vice versa).
ROW_PRESENCE = "<row>"

FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame], Mapping[str, pd.DataFrame]]


@dataclass(frozen=True)
class Violation:
    """One feature value that changed when history was truncated at ``cut``."""

    cut: date
    table: str
    column: str
    symbol: str
    date: date
    full_value: object
    truncated_value: object

    def __str__(self) -> str:
        return (
            f"{self.table}.{self.column} for {self.symbol} on {self.date} is {self.full_value!r} in the full "
            f"build but {self.truncated_value!r} with history cut at {self.cut}"
        )


def default_cut_dates(dates: Sequence[date] | pd.Series | pd.Index, n: int = 3) -> list[date]:
    """Return ``n`` distinct cut dates spread evenly over the interior of ``dates`` (at the i/(n+1) quantiles).

    Interior cuts leave history before them (so long windows are filled) and future after them (so a
    feature that peeks forward has something to peek at).
    """
    if n < 1:
        raise ValueError(f"default_cut_dates needs n >= 1, got {n}.")
    unique = list(np.unique(pd.to_datetime(pd.Index(dates)).date))
    if len(unique) < n + 2:
        raise ValueError(f"default_cut_dates needs at least {n + 2} distinct dates to place {n} interior cuts, got {len(unique)}.")
    positions = sorted({int(round(i * (len(unique) - 1) / (n + 1))) for i in range(1, n + 1)})
    return [unique[p] for p in positions]


def truncate_history(
    market_prices: pd.DataFrame, market_onchain: pd.DataFrame, cut: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return what was known at the end of ``cut``: price rows dated <= cut, on-chain rows with known_at <= end of cut.

    A naive ``known_at`` is read as UTC; the end of the day is the instant before the next UTC midnight.
    """
    prices = as_pandas(market_prices, "market_prices")
    onchain = as_pandas(market_onchain, "market_onchain")
    _require_columns(prices, ("symbol", "date", "asset_class", "close"), "market_prices")
    _require_columns(onchain, ("asset", "metric", "date", "value", "known_at"), "market_onchain")
    kept_prices = prices[pd.to_datetime(prices["date"]).dt.date <= cut]
    known_at = pd.to_datetime(onchain["known_at"])
    if known_at.dt.tz is None:
        known_at = known_at.dt.tz_localize("UTC")
    next_midnight = pd.Timestamp(datetime.combine(cut + timedelta(days=1), time(0), tzinfo=timezone.utc))
    kept_onchain = onchain[known_at < next_midnight]
    return kept_prices.reset_index(drop=True), kept_onchain.reset_index(drop=True)


def audit_lookahead(
    build_features: FeatureBuilder,
    market_prices: pd.DataFrame,
    market_onchain: pd.DataFrame,
    cut_dates: Sequence[date],
    feature_tables: Mapping[str, pd.DataFrame] | None = None,
    *,
    tolerance: float = 1e-9,
    max_per_column: int = 3,
) -> list[Violation]:
    """Rebuild the features on history truncated at each cut date and list the values that differ.

    ``build_features(prices, onchain)`` returns feature tables by name, each keyed by ``symbol, date``.
    ``feature_tables`` is the full build to compare against (built from the full history when omitted).
    Every column of every table is compared on the rows dated <= cut: numbers within ``tolerance``
    (relative to max(1, |value|)), nulls must match, other types must be equal. At most
    ``max_per_column`` violations are kept per cut, table and column (the earliest dates first).
    An empty list means no feature value depends on data after its own date, at these cuts.
    """
    full = feature_tables if feature_tables is not None else build_features(market_prices, market_onchain)
    violations: list[Violation] = []
    for cut in sorted(cut_dates):
        cut = pd.Timestamp(cut).date()
        truncated = build_features(*truncate_history(market_prices, market_onchain, cut))
        for table in sorted(full):
            if table not in truncated:
                raise ValueError(f"The truncated build at {cut} did not produce feature table {table!r}.")
            violations.extend(_compare(full[table], truncated[table], table, cut, tolerance, max_per_column))
    return violations


def _compare(
    full: pd.DataFrame, truncated: pd.DataFrame, table: str, cut: date, tolerance: float, limit: int
) -> list[Violation]:
    for name, frame in (("full", full), ("truncated", truncated)):
        _require_columns(frame, KEY_COLUMNS, f"the {name} build of {table}")
    full = _with_plain_dates(full)
    truncated = _with_plain_dates(truncated)
    full = full[full["date"] <= cut]
    merged = full.merge(truncated, on=list(KEY_COLUMNS), how="outer", suffixes=("", "__cut"), indicator="presence__")
    merged = merged.sort_values(["date", "symbol"], kind="stable")
    found: list[Violation] = []

    lonely = merged[merged["presence__"] != "both"].head(limit)
    for symbol, day, presence in zip(lonely["symbol"], lonely["date"], lonely["presence__"]):
        in_full = presence == "left_only"
        found.append(Violation(cut, table, ROW_PRESENCE, symbol, day, in_full, not in_full))

    both = merged[merged["presence__"] == "both"]
    for column in (c for c in full.columns if c not in KEY_COLUMNS):
        left = both[column]
        right = both[f"{column}__cut"] if f"{column}__cut" in both else pd.Series(np.nan, index=both.index)
        differs = _differs(left, right, tolerance)
        for idx in differs[differs].index[:limit]:
            found.append(
                Violation(cut, table, column, both.at[idx, "symbol"], both.at[idx, "date"], _plain(left[idx]), _plain(right[idx]))
            )
    return found


def _differs(left: pd.Series, right: pd.Series, tolerance: float) -> pd.Series:
    left_null, right_null = left.isna(), right.isna()
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
        a = left.to_numpy(dtype=float, na_value=np.nan)
        b = right.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            far = np.abs(a - b) > tolerance * np.maximum(1.0, np.abs(a))
        values_differ = pd.Series(far, index=left.index) & ~left_null & ~right_null
    else:
        values_differ = (left.astype(object) != right.astype(object)) & ~left_null & ~right_null
    return values_differ | (left_null != right_null)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _with_plain_dates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}.")


def lookahead_audit(warehouse, project_dir: Path, n_cuts: int = 3, cache_dir: Path | None = None) -> dict[str, object]:
    """Audit the stored ``features.features`` of ``warehouse`` against rebuilds on truncated market history
    (the project compiled once per version of its files when ``cache_dir`` is given).

    Returns the cut dates, the number of values compared and the violations as sentences (empty = passed).
    """
    with warehouse.reader() as con:
        prices = con.execute("SELECT * FROM market.prices").df()
        onchain = con.execute("SELECT * FROM market.onchain").df()
        stored = con.execute("SELECT * FROM features.features").df()
    cuts = default_cut_dates(prices["date"], n=n_cuts)
    builder = DbtFeatureBuilder(project_dir, tables=["features"], cache_dir=cache_dir, threads=os.cpu_count() or 1)
    violations = audit_lookahead(builder, prices, onchain, cuts, {"features": stored})
    return {"cut_dates": [str(c) for c in cuts], "violations": [str(v) for v in violations[:20]],
            "violation_count": len(violations), "feature_columns": len(stored.columns) - 3}
