"""The ``quant`` command. Kept light: it imports duckdb and the standard library, never Dagster or torch."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from quant_assets.lib.projector import AmountError, parse_amount, projector_columns

EXIT_BAD_INPUT = 2


def _warehouse_path() -> Path:
    return Path(os.environ.get("QUANT_HOME", "~/.quant")).expanduser() / "warehouse.duckdb"


def _connect_read_only(path: Path):
    import duckdb

    deadline = time.monotonic() + 30
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as error:
            # A writer holds the file: wait briefly, as the warehouse's readers do.
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def project(amount: float) -> tuple[list[str], list[tuple]]:
    """Rows of ``projector(amount)`` from the warehouse, or ``AmountError`` when there is nothing to project."""
    path = _warehouse_path()
    if not path.exists():
        raise AmountError(f"no warehouse at {path}; run `make demo` or materialize the projections first")
    con = _connect_read_only(path)
    try:
        has_macro = con.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'projector' AND database_name = current_database()"
        ).fetchone()[0]
        if not has_macro:
            raise AmountError("no projections materialized yet; materialize the `allocations` asset first")
        cursor = con.execute("SELECT * FROM projector(?)", [amount])
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        con.close()


def _format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table."""
    cells = [columns] + [[_format_value(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quant", description="Ranked half-Kelly trades and P10-P90 value bands.")
    commands = parser.add_subparsers(dest="command", required=True)
    proj = commands.add_parser("project", help="what to do with AMOUNT dollars")
    proj.add_argument("amount", help="dollars to allocate, e.g. 10000")
    proj.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    args = parser.parse_args(argv)
    try:
        amount = parse_amount(args.amount)
        columns, rows = project(amount)
    except AmountError as error:
        print(f"quant: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assert columns == projector_columns()
    if args.json:
        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str))
    else:
        print(format_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
