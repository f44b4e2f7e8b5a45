"""The Projector: a DuckDB table macro turning a dollar amount into ranked fractional-Kelly trades with value bands.

It reads ``projections.trade_plan``, built per as-of day from ``projections.allocations`` and
``projections.bands`` (log returns): ``projector(amount)`` is the latest day's plan, ``projector_at(amount, as_of)``
any earlier day's. So ``SELECT * FROM projector(10000)`` in DuckDB and ``quant project 10000``
give the same rows.
"""

from __future__ import annotations

import math

from quant_assets.lib.vocabulary import HORIZON_LABELS

MAX_AMOUNT = 1e12
# CASH and TOTAL come after every position line.
_CASH_LINE, _TOTAL_LINE = 1_000_001, 1_000_002

_BAND_NAMES = [f"{p}_{h}" for h in HORIZON_LABELS for p in ("p10", "p50", "p90")]
_GROWTH = ",\n".join(
    f"        exp(max(CASE WHEN b.horizon = '{name[4:]}' THEN b.{name[:3]} END)) AS {name}" for name in _BAND_NAMES
)
_CASH_GROWTH = ",\n".join(f"        1.0 AS {name}" for name in _BAND_NAMES)
_VALUES = ",\n".join(f"    round(dollars * {name}, 2) AS {name}" for name in _BAND_NAMES)
# A position's expected return at the horizon its weights were sized at (advice stored before allocations recorded
# the horizon was sized at 1m, the policy's default then).
_SIZED_EXPECTED_RETURN = "CASE coalesce(a.sizing_horizon, '1m') " + " ".join(
    f"WHEN '{h}' THEN a.expected_return_{h}" for h in HORIZON_LABELS) + " END"

# The plan per dollar of each as-of day, written with that day's allocations, so that the macros are one
# scan of a small table (the joins and the pivot cost more than the 5 ms budget at query time). Lines are the
# positions in rank order, then CASH and TOTAL. Growth columns hold what one dollar becomes at each band
# (exp of the log-return quantile); TOTAL's come from the portfolio's own bands, because quantiles of a sum
# are not the sum of the quantiles.
TRADE_PLAN_SELECT = f"""
WITH day AS (SELECT DISTINCT as_of FROM projections.allocations WHERE as_of = $as_of),
positions AS (
    SELECT a.as_of, a.rank AS line, a.rank, a.symbol, a.asset_class, 'BUY' AS side, a.confidence, a.confidence_source,
        a.half_kelly_weight AS weight, a.last_price, {_SIZED_EXPECTED_RETURN} AS expected_return,
{_GROWTH}
    FROM projections.allocations a
    JOIN day USING (as_of)
    JOIN projections.bands b ON b.as_of = a.as_of AND b.symbol = a.symbol
    WHERE a.half_kelly_weight > 0
    GROUP BY ALL
)
SELECT * FROM positions
UNION ALL
SELECT day.as_of, {_CASH_LINE}, NULL, 'CASH', 'cash', 'HOLD', NULL, NULL,
    1.0 - coalesce((SELECT sum(weight) FROM positions), 0.0), NULL, 0.0,
{_CASH_GROWTH}
FROM day
UNION ALL
SELECT day.as_of, {_TOTAL_LINE}, NULL, 'TOTAL', NULL, NULL, NULL, NULL, 1.0, NULL, NULL,
{_GROWTH}
FROM day JOIN projections.bands b ON b.as_of = day.as_of AND b.symbol = 'PORTFOLIO'
GROUP BY ALL
"""

_BAD_AMOUNT = f"amount must be a positive finite number of dollars up to {MAX_AMOUNT:.0e}"


def _projector_body(name: str, plan_filter: str, missing: str | None) -> str:
    """The macro body over the trade plan rows matching ``plan_filter`` (one as-of day); ``missing`` is the error
    message (an SQL string expression) when no row matches, or None for an empty result then. One filtered scan
    and one aggregate: a scalar subquery (``max(as_of)``) or a window function here costs several times more."""
    return f"""
WITH plan AS (SELECT * FROM projections.trade_plan t WHERE {plan_filter}),
checked AS (
    SELECT CASE
        WHEN amount IS NULL OR NOT isfinite(CAST(amount AS DOUBLE)) OR CAST(amount AS DOUBLE) <= 0
            OR CAST(amount AS DOUBLE) > {MAX_AMOUNT:.0f}
        THEN error('{name}: {_BAD_AMOUNT}')
{f"        WHEN count(*) = 0 THEN error({missing})" if missing else ""}
        ELSE CAST(amount AS DOUBLE) END AS amount,
        -- Positions are rounded down to the cent (after a micro-dollar rounding against float noise) and cash takes
        -- the rest, so the lines add up to the amount exactly and cash is never negative on a fully invested book.
        sum(CASE WHEN rank IS NOT NULL THEN floor(round(CAST(amount AS DOUBLE) * weight, 6) * 100) / 100 END) AS invested
    FROM plan
),
sized AS (
    SELECT t.*, c.amount, CASE t.line
        WHEN {_CASH_LINE} THEN round(c.amount - coalesce(c.invested, 0.0), 2)
        WHEN {_TOTAL_LINE} THEN round(c.amount, 2)
        ELSE floor(round(c.amount * t.weight, 6) * 100) / 100 END AS dollars
    FROM plan t, checked c
)
SELECT rank, symbol, asset_class, side, round(confidence, 4) AS confidence, confidence_source,
    CASE line WHEN {_CASH_LINE} THEN round(dollars / amount, 4) ELSE round(weight, 4) END AS weight,
    dollars, floor(dollars / last_price * 1e6) / 1e6 AS shares, last_price, round(expected_return, 4) AS expected_return,
{_VALUES}
FROM sized
ORDER BY line
"""


# projector_at(amount, as_of) returns no rows for a day without advice (no completed session that day, or its
# partition not materialized): `SELECT DISTINCT as_of FROM projections.trade_plan` lists the days it holds.
PROJECTOR_AT_MACRO = "CREATE OR REPLACE MACRO projector_at(amount, as_of) AS TABLE" + _projector_body(
    "projector_at", "t.as_of = CAST(as_of AS DATE)", None)
PROJECTOR_MACRO = "CREATE OR REPLACE MACRO projector(amount) AS TABLE" + _projector_body(
    "projector", "t.is_latest",
    "'projector: no advice stored yet; materialize the projections partition of a day'")


class AmountError(ValueError):
    """An amount the Projector refuses."""


def parse_amount(text: str) -> float:
    """The dollar amount a user typed, or ``AmountError`` saying why it is refused."""
    cleaned = text.strip().replace(",", "").replace("_", "").lstrip("$")
    try:
        amount = float(cleaned)
    except ValueError:
        raise AmountError(f"amount {text!r} is not a number; give dollars such as 10000") from None
    if not math.isfinite(amount):
        raise AmountError(f"amount {text!r} is not a finite number")
    if amount <= 0:
        raise AmountError(f"amount {text!r} must be greater than zero")
    if amount > MAX_AMOUNT:
        raise AmountError(f"amount {text!r} is above the {MAX_AMOUNT:.0e} dollar limit")
    return amount


def projector_columns() -> list[str]:
    """The macro's column names in order."""
    return ["rank", "symbol", "asset_class", "side", "confidence", "confidence_source", "weight", "dollars", "shares", "last_price",
            "expected_return", *(f"{p}_{h}" for h in HORIZON_LABELS for p in ("p10", "p50", "p90"))]


def install_projector(con, as_of) -> None:
    """Replace day ``as_of`` of ``projections.trade_plan`` from that day's allocations and bands (other days
    kept) and create (or replace) the ``projector`` and ``projector_at`` macros, in the caller's transaction."""
    con.execute("CREATE SCHEMA IF NOT EXISTS projections")
    con.execute(f"CREATE TABLE IF NOT EXISTS projections.trade_plan AS {TRADE_PLAN_SELECT} LIMIT 0", {"as_of": as_of})
    # is_latest marks the newest day's lines, so that projector(amount) is a plain filtered scan.
    con.execute("ALTER TABLE projections.trade_plan ADD COLUMN IF NOT EXISTS is_latest BOOLEAN")
    con.execute("ALTER TABLE projections.trade_plan ADD COLUMN IF NOT EXISTS confidence_source VARCHAR")
    con.execute("DELETE FROM projections.trade_plan WHERE as_of = ?", [as_of])
    con.execute(f"INSERT INTO projections.trade_plan BY NAME {TRADE_PLAN_SELECT}", {"as_of": as_of})
    con.execute("UPDATE projections.trade_plan SET is_latest = (as_of = (SELECT max(as_of) FROM projections.trade_plan))")
    con.execute(PROJECTOR_AT_MACRO)
    con.execute(PROJECTOR_MACRO)
