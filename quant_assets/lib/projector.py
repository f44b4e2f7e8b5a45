"""The Projector: a DuckDB table macro turning a dollar amount into ranked half-Kelly trades with value bands.

It reads ``projections.allocations`` and ``projections.bands`` (log returns) as of their latest date, so
``SELECT * FROM projector(10000)`` in DuckDB and ``quant project 10000`` give the same rows.
"""

from __future__ import annotations

import math

HORIZON_LABELS = ("1w", "1m", "3m", "1y")
MAX_AMOUNT = 1e12

_BANDS = ",\n".join(
    f"        max(CASE WHEN b.horizon = '{h}' THEN b.{p} END) AS {p}_{h}"
    for h in HORIZON_LABELS for p in ("p10", "p50", "p90")
)
_POSITION_VALUES = ",\n".join(
    f"        round(dollars * exp({p}_{h}), 2) AS {p}_{h}" for h in HORIZON_LABELS for p in ("p10", "p50", "p90")
)
_CASH_VALUES = ",\n".join(f"        round(cash, 2) AS {p}_{h}" for h in HORIZON_LABELS for p in ("p10", "p50", "p90"))
_TOTAL_VALUES = ",\n".join(
    f"        round(amount * exp(max(CASE WHEN b.horizon = '{h}' THEN b.{p} END)), 2) AS {p}_{h}"
    for h in HORIZON_LABELS for p in ("p10", "p50", "p90")
)

PROJECTOR_MACRO = f"""
CREATE OR REPLACE MACRO projector(amount) AS TABLE
WITH checked AS (
    SELECT CASE
        WHEN amount IS NULL OR NOT isfinite(CAST(amount AS DOUBLE)) OR CAST(amount AS DOUBLE) <= 0
            OR CAST(amount AS DOUBLE) > {MAX_AMOUNT:.0f}
        THEN error('projector: amount must be a positive finite number of dollars up to {MAX_AMOUNT:.0e}')
        ELSE CAST(amount AS DOUBLE) END AS amount
),
latest AS (SELECT max(as_of) AS as_of FROM projections.allocations),
positions AS (
    SELECT a.rank, a.symbol, a.asset_class, a.confidence, a.half_kelly_weight AS weight, a.last_price,
        a.expected_return_1m AS expected_return,
{_BANDS}
    FROM projections.allocations a
    JOIN latest USING (as_of)
    JOIN projections.bands b ON b.as_of = a.as_of AND b.symbol = a.symbol
    WHERE a.half_kelly_weight > 0
    GROUP BY ALL
),
sized AS (
    SELECT p.*, round(checked.amount * p.weight, 2) AS dollars FROM positions p, checked
),
cash AS (
    SELECT checked.amount - coalesce((SELECT sum(dollars) FROM sized), 0) AS cash, checked.amount FROM checked
)
SELECT rank, symbol, asset_class, 'BUY' AS side, round(confidence, 4) AS confidence, round(weight, 4) AS weight,
    dollars, floor(dollars / last_price * 1e6) / 1e6 AS shares, last_price, round(expected_return, 4) AS expected_return,
{_POSITION_VALUES}
FROM sized
UNION ALL
SELECT NULL, 'CASH', 'cash', 'HOLD', NULL, round(cash / amount, 4), round(cash, 2), NULL, NULL, 0.0,
{_CASH_VALUES}
FROM cash
UNION ALL
SELECT NULL, 'TOTAL', NULL, NULL, NULL, 1.0, round(any_value(amount), 2), NULL, NULL, NULL,
{_TOTAL_VALUES}
FROM checked, latest, projections.bands b
WHERE b.as_of = latest.as_of AND b.symbol = 'PORTFOLIO'
ORDER BY rank NULLS LAST, symbol = 'TOTAL'
"""


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
    return ["rank", "symbol", "asset_class", "side", "confidence", "weight", "dollars", "shares", "last_price",
            "expected_return", *(f"{p}_{h}" for h in HORIZON_LABELS for p in ("p10", "p50", "p90"))]


def install_projector(con) -> None:
    """Create (or replace) the ``projector`` macro in the warehouse, inside the caller's write transaction."""
    con.execute(PROJECTOR_MACRO)
