"""The DuckDB table macros ``rebalance(cash)`` and ``rebalance_at(cash, as_of)`` on a connection to the warehouse.

Unlike ``projector(amount)``, a rebalance cannot be a macro of SQL alone: its target is a conic program (the
cost-aware fractional-Kelly problem, solved with cvxpy and Clarabel) and its input is the person's plays, which live
in their own file, never in the warehouse. So the macros are installed on a caller's connection, as TEMP macros over
a Python function registered on it: the caller passes the plays it read (``quant_assets.book_commands.book_connection``
does this, from ``personal.duckdb``) and the trading terms, and the function reads the day's sizing scenarios through
a cursor of that connection. A plain DuckDB CLI session has no such function: use ``quant rebalance`` there.
"""

from __future__ import annotations

import duckdb

from quant_assets.lib.projections.rebalance_terms import TradingTerms
from quant_assets.lib.projections.rebalance_book import LINE_COLUMNS, load_day_advice, rebalance

_TYPES = {"symbol": "VARCHAR", "asset_class": "VARCHAR", "covered": "BOOLEAN", "side": "VARCHAR", "note": "VARCHAR"}
LINE_TYPE = duckdb.list_type(duckdb.struct_type({c: _TYPES.get(c, "DOUBLE") for c in LINE_COLUMNS}))
# After the symbols, a CASH line holds the cash left in ``dollars`` and the cost paid in ``cost``.
CASH_LINE = "CASH"


def _lines(con, plays: list[dict], terms: TradingTerms, cash: float, as_of) -> list[dict]:
    lines, summary = rebalance(load_day_advice(con, as_of), plays, cash, terms)
    rows = [{k: (None if v != v else v) for k, v in row.items()} for row in lines.to_dict("records")]
    cash_row = dict.fromkeys(LINE_COLUMNS) | {
        "symbol": CASH_LINE, "covered": True, "side": "HOLD", "shares": 0.0, "dollars": summary["cash_left"],
        "cost": summary["total_cost"], "shares_held": 0.0, "shares_after": 0.0,
        "note": f"cash left after the trades; cost paid ${summary['total_cost']:,.2f}, expected growth gained "
                f"${summary['expected_growth_gained']:,.2f} at {summary['horizon']} (advice of {summary['as_of']})"}
    return rows + [cash_row]


def install_rebalance_macros(con, plays: list[dict], terms: TradingTerms) -> None:
    """Register ``rebalance_lines`` on ``con`` and create the TEMP macros ``rebalance(cash)`` (the latest day's
    advice) and ``rebalance_at(cash, as_of)`` over it, for the book ``plays`` (their ``symbol`` and ``shares``)."""
    reader = con.cursor()
    con.create_function("rebalance_lines", lambda cash, as_of: _lines(reader, plays, terms, cash, as_of),
                        ["DOUBLE", "DATE"], LINE_TYPE, null_handling="special")
    con.execute("CREATE OR REPLACE TEMP MACRO rebalance_at(cash, as_of) AS TABLE "
                "SELECT unnest(rebalance_lines(CAST(cash AS DOUBLE), CAST(as_of AS DATE)), recursive := true)")
    con.execute("CREATE OR REPLACE TEMP MACRO rebalance(cash) AS TABLE "
                "SELECT unnest(rebalance_lines(CAST(cash AS DOUBLE), NULL::DATE), recursive := true)")
