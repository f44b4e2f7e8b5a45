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
from quant_assets.lib.projections.rebalance_terms import NoAdvice, RebalanceError, parse_cash
from quant_assets.render.report import format_table

EXIT_BAD_INPUT = 2
# Nothing to show yet (no warehouse, no projections) or the warehouse is busy: try again later.
EXIT_NOT_READY = 1
EXIT_INTERRUPTED = 130
# How long a person waits for a running write before being told to try again (QUANT_CLI_WAIT_SECONDS).
DEFAULT_WAIT_SECONDS = 30.0
# The trading terms a command line may override (defaults: QUANT_REBALANCE_*, see quant_assets/settings.py).
TERM_OPTIONS = ("cost_bp", "min_fee", "min_trade", "tolerance", "turnover_cap", "fractional_shares")


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


def _rebalance_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, name) for name in TERM_OPTIONS}


def _print_rebalance(lines, summary: dict, as_json: bool) -> None:
    if as_json:
        records = [{k: (None if v != v else v) for k, v in row.items()} for row in lines.to_dict("records")]
        print(json.dumps({"summary": summary, "lines": records}, indent=2, default=str))
        return
    shown = ["symbol", "shares_held", "last_price", "current_weight", "target_weight", "drift", "side", "shares",
             "dollars", "cost", "weight_after", "note"]
    print(f"Rebalance toward the advice of {summary['as_of']} ({summary['horizon']} sizing), "
          f"cash added ${summary['cash_added']:,.2f}")
    print(format_table(shown, [tuple(None if v != v else v for v in row) for row in lines[shown].itertuples(index=False)]))
    terms = summary["terms"]
    print(f"costs: {terms['cost_bp']:g} bp, minimum fee ${terms['min_fee']:,.2f}, minimum trade ${terms['min_trade']:,.2f}; "
          f"tolerance ±{terms['tolerance']:.1%}; turnover cap {terms['turnover_cap']:g}"
          f"{' (binds)' if summary['turnover_cap_binds'] else ''}")
    print(f"cost paid ${summary['total_cost']:,.2f}; expected growth gained ${summary['expected_growth_gained']:,.2f} "
          f"(certainty equivalent at {summary['horizon']}); cash left ${summary['cash_left']:,.2f}")
    if summary["uncovered_symbols"]:
        print(f"kept as held, not covered by the advice: {', '.join(summary['uncovered_symbols'])}")


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
    except (AmountError, UsageError, RebalanceError) as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except (NotReadyError, NoAdvice) as error:
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
    _add_book_commands(commands)
    reasons = commands.add_parser("why", help="what a position's weight rests on: members, skill, P(gain), limit")
    reasons.add_argument("symbol", help="a symbol of the day's advice, e.g. AAPL")
    reasons.add_argument("--as-of", type=_iso_day, help="an earlier day's advice (YYYY-MM-DD)")
    reasons.add_argument("--json", action="store_true", help="print JSON instead of lines")
    args = parser.parse_args(argv)
    if args.command in ("rebalance", "alerts", "export"):
        return _run_book_command(args)
    if args.command == "why":
        return _run_why(args)
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


def _add_book_commands(commands) -> None:
    rebalance = commands.add_parser("rebalance", help="the trades that move your plays toward the day's target")
    export = commands.add_parser("export", help="the trades as CSV, the advice ledger and scorecard as Parquet")
    for command in (rebalance, export):
        command.add_argument("--cash", default="0", help="dollars added to the book (negative: withdrawn); default 0")
        command.add_argument("--cost-bp", type=float, help="cost per trade in basis points")
        command.add_argument("--min-fee", type=float, help="the smallest fee of one order, dollars")
        command.add_argument("--min-trade", type=float, help="the smallest order, dollars")
        command.add_argument("--tolerance", type=float, help="no-trade band in weight, e.g. 0.02")
        command.add_argument("--turnover-cap", type=float, help="the largest sum of |weight changes|, 0 to 2")
        command.add_argument("--fractional-shares", action=argparse.BooleanOptionalAction, default=None,
                             help="equities in fractions of a share (crypto always is)")
    rebalance.add_argument("--as-of", type=_iso_day, help="rebalance toward an earlier day's advice (YYYY-MM-DD)")
    rebalance.add_argument("--json", action="store_true", help="print JSON instead of a table")
    export.add_argument("--to", type=Path, help="folder for the files (default $QUANT_HOME/exports/<time>)")
    alerts = commands.add_parser("alerts", help="held positions outside their P10-P90 band; drift beyond tolerance")
    alerts.add_argument("--tolerance", type=float, help="the drift allowed, in weight (default QUANT_REBALANCE_TOLERANCE)")
    alerts.add_argument("--json", action="store_true", help="print JSON instead of lines")


def _iso_day(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD") from None


def _run_book_command(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from quant_assets import book_commands

    home = paths.home()
    if args.command == "alerts":
        tolerance = book_commands.trading_terms({"tolerance": args.tolerance}).tolerance
        found = book_commands.book_alerts(home, tolerance, _wait_seconds())
        if args.json:
            print(json.dumps(found, indent=2, default=str))
        else:
            print("\n".join(a["message"] for a in found) if found else "no alerts: every held position is inside its "
                  f"band and within ±{tolerance:.1%} of the advised weight")
        return 0
    terms = book_commands.trading_terms(_rebalance_overrides(args))
    cash = parse_cash(args.cash)
    if args.command == "export":
        folder = args.to or home / "exports" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for written in book_commands.export(home, folder, cash, terms, _wait_seconds()):
            print(written)
        return 0
    lines, summary = book_commands.rebalance_book(home, cash, args.as_of, terms, _wait_seconds())
    _print_rebalance(lines, summary, args.json)
    return 0


def _run_why(args: argparse.Namespace) -> int:
    from quant_assets.lib.projections.why import NoWhy, load_why_inputs, why
    from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError

    path = paths.warehouse_path(paths.home())
    if not path.exists():
        raise NotReadyError(f"no warehouse at {path}; run `make demo` or materialize the projections first")
    try:
        with Warehouse(path, wait_seconds=_wait_seconds()).reader() as con:
            [line] = why(load_why_inputs(con, args.as_of), args.symbol.upper())
    except (NoWhy, WarehouseBusyError) as error:
        raise NotReadyError(str(error)) from None
    if args.json:
        print(json.dumps(line, indent=2, default=str))
    else:
        _print_why(line)
    return 0


def _percent(value: float | None, signed: bool = True, digits: int = 2) -> str:
    return "—" if value is None else f"{value:{'+' if signed else ''}.{digits}%}"


def _print_why(line: dict) -> None:
    shrinkage = "—" if line["shrinkage"] is None else f"{line['shrinkage']:.2f}"
    print(f"{line['symbol']} in the advice of {line['as_of']} ({line['horizon']} sizing, window {line['window_start']})")
    for member in line["members"]:
        print(f"  {member['model']:<10} mean {_percent(member['mean'])}  P10 {_percent(member['p10'])}  "
              f"P90 {_percent(member['p90'])}")
    print(f"members' spread {_percent(line['member_spread'], False)}; skill {_percent(line['skill'])} ({line['skill_measure']})")
    print(f"prior {_percent(line['prior'])}, sizing mean {_percent(line['sizing_mean'])}, shrinkage {shrinkage}, "
          f"expected return {_percent(line['expected_return'])}")
    print(f"chance of a gain: calibrated {_percent(line['prob_gain'], False, 0)}, base rate "
          f"{_percent(line['prob_gain_base_rate'], False, 0)}; shown {_percent(line['confidence'], False, 0)} "
          f"({line['confidence_label'] or 'unlabelled'})")
    print(f"weight {_percent(line['weight'], False, 1)}, limited by {line['weight_limit']}: {line['weight_limit_reason']}")


if __name__ == "__main__":
    sys.exit(main())
