"""The ``quant`` command. Kept light: it imports duckdb and the standard library, never Dagster or torch."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from quant_assets import paths
from quant_assets.lib.projections.projector import AmountError, parse_amount, projector_columns
from quant_assets.render.report import format_table

EXIT_BAD_INPUT = 2
# Nothing to show yet (no warehouse, no projections) or the warehouse is busy: try again later.
EXIT_NOT_READY = 1
EXIT_INTERRUPTED = 130
# How long a person waits for a running write before being told to try again (QUANT_CLI_WAIT_SECONDS).
DEFAULT_WAIT_SECONDS = 30.0


class NotReadyError(RuntimeError):
    """Nothing to show yet, or the warehouse cannot be read right now; the message says what to do."""


class UsageError(ValueError):
    """The command line itself is wrong (unknown command, missing argument)."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``quant: ...``) with exit status 2, like every other failure."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `quant --help`)")


def project(amount: float, path: Path) -> tuple[list[str], list[tuple]]:
    """Rows of ``projector(amount)`` from the warehouse at ``path``; ``NotReadyError`` when there is nothing to
    project yet or the warehouse stays locked by a writer."""
    import duckdb

    from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError

    if not path.exists():
        raise NotReadyError(f"no warehouse at {path}; run `make demo` or materialize the projections first")
    try:
        # The warehouse's own reader: it takes its place in the writers' line instead of polling DuckDB's lock.
        with Warehouse(path, wait_seconds=_wait_seconds()).reader() as con:
            has_macro = con.execute(
                "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'projector' "
                "AND database_name = current_database()"
            ).fetchone()[0]
            if not has_macro:
                raise NotReadyError("no projections materialized yet; materialize the `allocations` asset first")
            cursor = con.execute("SELECT * FROM projector(?)", [amount])
            return [d[0] for d in cursor.description], cursor.fetchall()
    except WarehouseBusyError as error:
        raise NotReadyError(str(error)) from None
    except duckdb.InvalidInputException as error:
        # The macro's own refusal, e.g. "projector: no advice stored yet; materialize ...".
        raise NotReadyError(_first_line(error).removeprefix("Invalid Input Error: ")) from None
    except duckdb.CatalogException:
        raise NotReadyError("the projections are incomplete (projections.trade_plan is missing); "
                            "materialize the `allocations` asset again") from None
    except duckdb.Error as error:
        raise NotReadyError(f"the warehouse {path} could not be read: {_first_line(error)}") from None


def export_plays(home: Path) -> str:
    """The person's plays as CSV (an empty table with its header when there are none)."""
    from quant_assets.lib.storage.personal import open_personal, plays_csv

    store = open_personal(paths.personal_path(home), paths.warehouse_path(home), _wait_seconds())
    if not store.path.exists():
        return plays_csv(None)
    with store.reader() as con:
        return plays_csv(con)


def import_plays(home: Path, file: Path) -> int:
    """Add every play of the CSV ``file`` (all or none: one bad row refuses the file); returns how many."""
    from datetime import datetime, timezone

    from quant_assets.lib.storage.personal import PlayError, insert_play, open_personal, read_plays_csv

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {file}: {_first_line(error)}") from None
    try:
        plays = read_plays_csv(text, str(file), datetime.now(timezone.utc).date())
    except PlayError as error:
        raise UsageError(str(error)) from None
    with open_personal(paths.personal_path(home), paths.warehouse_path(home), _wait_seconds()).writer() as con:
        for play in plays:
            insert_play(con, play)
    return len(plays)


def backup_home(home: Path, folder: Path | None) -> list[Path]:
    """Copy the warehouse and the person's file into ``folder`` (default a new ``$QUANT_HOME/backups/<time>``)."""
    from datetime import datetime, timezone

    from quant_assets.lib.storage.personal import backup

    target = folder or home / "backups" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    copies = backup([paths.warehouse_path(home), paths.personal_path(home)], target)
    if not copies:
        raise NotReadyError(f"nothing to back up in {home}: no warehouse and no plays yet")
    return copies


def _wait_seconds() -> float:
    text = os.environ.get("QUANT_CLI_WAIT_SECONDS", "")
    try:
        return float(text) if text.strip() else DEFAULT_WAIT_SECONDS
    except ValueError:
        raise UsageError(f"QUANT_CLI_WAIT_SECONDS={text!r} is not a number of seconds") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run ``quant``; every failure is one line on stderr and exit status 2 (bad input) or 1 (not ready)."""
    try:
        return _run(argv)
    except (AmountError, UsageError) as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except NotReadyError as error:
        return _fail(str(error), EXIT_NOT_READY)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of our output went away (``quant project 10000 | head``): nothing left to tell anyone.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except Exception as error:  # noqa: BLE001 - a person sees one line, never a traceback
        return _fail(f"unexpected {type(error).__name__}: {_first_line(error)}", EXIT_NOT_READY)


def _fail(message: str, status: int) -> int:
    print(f"quant: {' '.join(message.split())}", file=sys.stderr)
    return status


def _run(argv: list[str] | None) -> int:
    parser = _OneLineParser(prog="quant", description="Ranked fractional-Kelly (½) trades and P10-P90 value bands; your plays.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    proj = commands.add_parser("project", help="what to do with AMOUNT dollars")
    proj.add_argument("amount", help="dollars to allocate, e.g. 10000")
    proj.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    plays = commands.add_parser("plays", help="your own positions, kept apart from what the pipeline rebuilds")
    action = plays.add_subparsers(dest="action", required=True, parser_class=_OneLineParser)
    action.add_parser("export", help="print them as CSV (symbol, shares, entry_price, entry_date, note)")
    load = action.add_parser("import", help="add the plays of a CSV file (all rows valid, or none added)")
    load.add_argument("file", type=Path)
    saved = commands.add_parser("backup", help="copy the warehouse and your plays, each under its writer lock")
    saved.add_argument("--to", type=Path, help="folder for the copies (default $QUANT_HOME/backups/<time>)")
    args = parser.parse_args(argv)
    if args.command == "plays" and args.action == "export":
        sys.stdout.write(export_plays(paths.home()))
        return 0
    if args.command == "plays":
        print(f"imported {import_plays(paths.home(), args.file)} plays from {args.file}")
        return 0
    if args.command == "backup":
        for copy in backup_home(paths.home(), args.to):
            print(copy)
        return 0
    columns, rows = project(parse_amount(args.amount), paths.warehouse_path(paths.home()))
    if columns != projector_columns():
        raise NotReadyError("the warehouse's projector macro has other columns than this version of quant expects; "
                            "materialize the `allocations` asset again")
    if args.json:
        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str))
    else:
        print(format_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
