"""The bad-input battery: user files and provider answers a person meets, each loaded through the `market/prices`
asset after a good load. Every case asserts its outcome (refused with one sentence naming what and where; dropped
and counted with an example naming the row; or loaded) and that nothing stored before is lost."""

import functools
import math
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from quant_assets.defs.market.assets import provider_config
from quant_assets.lib.market.slices import Slice, load_prices
from quant_assets.lib.market.providers import coinbase, polygon
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import failure_messages, materialize
from quant_assets_tests.support.loopback import LoopbackServer, Reply, Request, json_reply

PRICES = "key:market/prices"
FIRST, LAST = date(2021, 1, 4), date(2021, 1, 15)  # two weeks: each day is a partition, recorded by Dagster
EQUITIES, COIN = ("ACME", "BETA"), "BTC"
HEADER = "symbol,date,open,high,low,close,volume,asset_class"


def close_on(symbol: str, day: date) -> float:
    i = (day - FIRST).days
    return round(20.0 * (1 + len(symbol) + ord(symbol[0]) % 7) * math.exp(0.002 * i + 0.03 * math.sin(i / 4)), 4)


def good_rows() -> list[dict]:
    rows = []
    for symbol in (*EQUITIES, COIN):
        for i in range((LAST - FIRST).days + 1):
            day = FIRST + timedelta(days=i)
            if symbol != COIN and day.weekday() >= 5:
                continue
            c = close_on(symbol, day)
            rows.append({"symbol": symbol, "date": day.isoformat(), "open": c, "high": round(c * 1.01, 4),
                         "low": round(c * 0.99, 4), "close": c, "volume": 1000.0,
                         "asset_class": "crypto" if symbol == COIN else "equity"})
    return rows


def csv_text(rows: list[dict], header: str = HEADER, columns: tuple[str, ...] | None = None) -> str:
    columns = columns or tuple(HEADER.split(","))
    return "\n".join([header, *(",".join(str(r[c]) for c in columns) for r in rows)]) + "\n"


def edited(edit) -> str:
    """The good file after ``edit(rows)`` changed its rows in place (rows numbered from 1 after the header)."""
    rows = good_rows()
    edit(rows)
    return csv_text(rows)


def row_of(rows, symbol, day) -> dict:
    return next(r for r in rows if r["symbol"] == symbol and r["date"] == day)


def blank(which, day, *columns):
    return lambda rows: row_of(rows, which, day).update({c: "" for c in columns})


def setting(which, day, **values):
    return lambda rows: row_of(rows, which, day).update(values)


def both(*edits):
    return lambda rows: [e(rows) for e in edits]


def row_number(symbol, day) -> int:
    return next(i for i, r in enumerate(good_rows(), start=1) if r["symbol"] == symbol and r["date"] == day)


@dataclass
class Case:
    """``body`` (a file's text, or a loopback handler factory for a provider); the expected outcome: ``refused``
    (a regex the one sentence matches), ``dropped`` ({reason: count} and an example), or loaded; ``changed`` is
    the (symbol, date) keys whose stored rows the input legitimately replaces (``gone`` of them removed);
    ``kept_from_storage`` the stored rows kept because their new version was dropped (default: one per drop)."""

    body: object
    refused: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    example: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    warning: str | None = None
    changed: set = field(default_factory=set)
    gone: int = 0
    kept_from_storage: int | None = None


D, E = "2021-01-12", "2021-01-13"  # a Tuesday and a Wednesday inside the good data
ROW_D = row_number("ACME", D)


def us_dates(rows):
    for r in rows:
        if r["date"] != "ISO":  # a marked row keeps its date for a later edit
            r["date"] = date.fromisoformat(r["date"]).strftime("%m/%d/%Y")


def offsets(rows):
    # Late in New York's day for equities (the next day in UTC), and just before midnight UTC for crypto.
    for r in rows:
        r["date"] += "T20:00:00-05:00" if r["asset_class"] == "equity" else "T23:30:00Z"


def spreadsheet(rows) -> str:
    columns = tuple(HEADER.split(","))
    return csv_text(rows, header="Symbol,Date,Open,High,Low,Close,Volume,Asset Class", columns=columns)


FILE_CASES = {
    "empty close cell": Case(edited(blank("ACME", D, "close")),
                             dropped={"missing, non-positive or non-finite close": 1}, example=f"row {ROW_D} (ACME, {D})"),
    "empty OHLCV cells": Case(edited(blank("BETA", D, "open", "high", "low", "close", "volume")),
                              dropped={"missing, non-positive or non-finite close": 1}, example=f"(BETA, {D})"),
    "NaN close": Case(edited(setting("ACME", D, close="NaN")), dropped={"missing, non-positive or non-finite close": 1},
                      example=f"row {ROW_D} (ACME, {D})"),
    "inf close": Case(edited(setting("ACME", D, close="inf")), dropped={"missing, non-positive or non-finite close": 1}),
    "-inf low": Case(edited(setting("ACME", D, low="-inf")), dropped={"non-positive or non-finite low": 1}),
    "zero close": Case(edited(setting("ACME", D, close="0")), dropped={"missing, non-positive or non-finite close": 1}),
    "negative open": Case(edited(setting("BETA", E, open="-5")), dropped={"non-positive or non-finite open": 1},
                          example=f"(BETA, {E})"),
    "negative volume": Case(edited(setting("BETA", E, volume="-1")), dropped={"negative or NaN volume": 1}),
    "duplicate rows disagree": Case(edited(lambda rows: rows.append({**row_of(rows, "ACME", D), "close": 1.0})),
                                    dropped={"duplicate (symbol, date)": 2}, example=f"(ACME, {D})", kept_from_storage=1),
    "future date": Case(edited(lambda rows: rows.append({**rows[0], "date": "2999-01-04"})),
                        dropped={"future date": 1}, example="(ACME, 2999-01-04)", kept_from_storage=0),
    # A row without its symbol or date cannot be matched to a stored row: that day was not answered, so its stored
    # row stays (a partial answer never deletes), and the metadata names the file's row so that the person can
    # repair it.
    "missing symbol cell": Case(edited(setting("ACME", D, symbol="")), dropped={"missing symbol": 1},
                                example=f"missing symbol: row {ROW_D} ({D})", kept_from_storage=0),
    "empty date cell": Case(edited(setting("ACME", D, date="")), dropped={"missing date": 1},
                            example=f"missing date: row {ROW_D} (ACME)", kept_from_storage=0),
    "unknown asset class": Case(edited(setting("ACME", D, asset_class="bond")), dropped={"unknown asset_class": 1}),
    "US dates": Case(edited(us_dates), refused=r"prices.csv: column date, row 1: '01/04/2021' is not an ISO 8601 date "
                                                r".*set QUANT_DATE_FORMAT"),
    "a day above 12 first": Case(edited(setting("ACME", D, date="13/01/2021")),
                                 refused=rf"column date, row {ROW_D}: '13/01/2021' is not an ISO 8601 date"),
    "US dates with their format named": Case(edited(us_dates), env={"QUANT_DATE_FORMAT": "%m/%d/%Y"}),
    "ambiguous dates read as day-first when named": Case(
        edited(lambda rows: [r.update(date=date.fromisoformat(r["date"]).strftime("%d/%m/%Y")) for r in rows]),
        env={"QUANT_DATE_FORMAT": "%d/%m/%Y"}),
    "a date not in the named format": Case(edited(both(setting("ACME", D, date="ISO"), us_dates, lambda rows: row_of(rows, "ACME", "ISO").update(date=D))),
                                           env={"QUANT_DATE_FORMAT": "%m/%d/%Y"},
                                           refused=rf"column date, row {ROW_D}: '{D}' does not match QUANT_DATE_FORMAT"),
    "a named format without a year": Case(edited(us_dates), env={"QUANT_DATE_FORMAT": "%m/%d"},
                                          refused=r"QUANT_DATE_FORMAT='%m/%d' has no year"),
    "offsets on the exchange-local day": Case(edited(offsets)),
    "case-duplicate columns": Case(csv_text(good_rows()).replace("volume,asset_class", "Close,asset_class", 1),
                                   refused=r"columns 'close' and 'Close' name the same field 'close'; keep one"),
    "repeated header": Case(csv_text(good_rows()).replace("volume,asset_class", "close,asset_class", 1),
                            refused=r"columns 'close' and 'close' name the same field"),
    "missing symbol column": Case(csv_text(good_rows(), header=HEADER.replace("symbol", "ticker")),
                                  refused=r"missing required column symbol .*add a symbol column"),
    "missing close column": Case(csv_text(good_rows(), header=HEADER.replace("close", "last")),
                                 refused=r"missing required column close .*rename the column holding the closing price"),
    "missing date column": Case(csv_text(good_rows(), header=HEADER.replace("date", "day")),
                                refused=r"missing required column date .*in ISO 8601 form"),
    "an unterminated quote": Case(HEADER + '\nACME,2021-01-04,"unterminated\n', refused=r"prices.csv: could not be parsed as CSV"),
    "capitalised spreadsheet headers": Case(spreadsheet(good_rows())),
    "a word where a price belongs": Case(edited(setting("ACME", D, close="n/a")),
                                         refused=rf"column close, row {ROW_D}: 'n/a' is not a number"),
    "header only": Case(HEADER + "\n", refused=r"prices.csv: no rows after the header"),
    "every row invalid": Case(edited(lambda rows: [r.update(close="-1") for r in rows]),
                              refused=r"no valid price rows \(\d+ missing, non-positive or non-finite close; first: "
                                      r"missing, non-positive or non-finite close: row 1 \(ACME, 2021-01-04\)\)"),
    "split-sized jump": Case(edited(lambda rows: [r.update(close=round(r["close"] / 4, 4), open=round(r["open"] / 4, 4),
                                                           high=round(r["high"] / 4, 4), low=round(r["low"] / 4, 4))
                                                  for r in rows if r["symbol"] == "ACME" and r["date"] >= E]),
                             warning=rf"ACME {E}: close moved ×0\.2\d* in one day \(an unadjusted split\?\)",
                             changed={("ACME", d) for d in map(str, pl.date_range(date.fromisoformat(E), LAST, eager=True))}),
}


def loaded_once(tmp_path_factory, env: dict[str, str], patches=()) -> Path:
    """The warehouse after one good load with ``env`` (and ``patches``), made once per module: each case starts
    from a copy of it rather than materializing the good data again."""
    home = tmp_path_factory.mktemp("good") / "quant"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("QUANT_TODAY", "QUANT_PRICES_FILE", "QUANT_ONCHAIN_FILE", "QUANT_PROVIDER", "POLYGON_API_KEY"):
            mp.delenv(name, raising=False)
        for name, value in {"QUANT_HOME": str(home), "QUANT_HISTORY_START": str(FIRST), **env}.items():
            mp.setenv(name, value)
        for module, name, value in patches:
            mp.setattr(module, name, value)
        assert materialize(PRICES).success
    return home / "warehouse.duckdb"


@pytest.fixture(scope="module")
def good_file_load(tmp_path_factory):
    path = tmp_path_factory.mktemp("good_file") / "prices.csv"
    path.write_text(csv_text(good_rows()))
    return loaded_once(tmp_path_factory, {"QUANT_PRICES_FILE": str(path), "QUANT_UNIVERSE": "ACME,BETA,BTC",
                                          "QUANT_TODAY": str(LAST)})


@pytest.fixture
def file_home(quant_home, tmp_path, monkeypatch, good_file_load):
    quant_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(good_file_load, quant_home / "warehouse.duckdb")
    path = tmp_path / "prices.csv"  # the same name: the stored rows' source stays file:prices.csv
    monkeypatch.setenv("QUANT_PRICES_FILE", str(path))
    monkeypatch.setenv("QUANT_HISTORY_START", str(FIRST))
    # Fixed, so that a file the settings cannot read does not stretch the partitions to the wall clock's today.
    monkeypatch.setenv("QUANT_TODAY", str(LAST))
    return path


def stored() -> pl.DataFrame:
    with Warehouse(Settings().warehouse_path).reader() as con:
        return pl.from_arrow(con.execute("SELECT * EXCLUDE (source) FROM market.prices ORDER BY symbol, date")
                             .to_arrow_table())


def metadata_of(result) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["market", "prices"]][:1]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def assert_outcome(case: Case, result, before: pl.DataFrame) -> None:
    if case.refused:
        assert not result.success
        messages = failure_messages(result)
        # The sentence is one line of the failure (what the UI shows), naming what was wrong and where.
        assert any(re.search(case.refused, line) for line in messages.splitlines()), messages
    else:
        assert result.success, failure_messages(result)
        meta = metadata_of(result)
        assert meta["dropped_by_reason"] == case.dropped
        kept = sum(case.dropped.values()) if case.kept_from_storage is None else case.kept_from_storage
        assert meta["rows_kept_from_storage"] == kept
        if case.example:
            assert any(case.example in e for e in meta["dropped_examples"]), meta["dropped_examples"]
        if case.warning:
            assert any(re.search(case.warning, w) for w in meta["warnings"]), meta["warnings"]
        else:
            assert meta["warnings"] == []
    after = stored()
    keys = pl.col("symbol") + pl.lit("|") + pl.col("date").cast(pl.Utf8)
    changed = {f"{s}|{d}" for s, d in case.changed}
    # Nothing stored before is lost or altered, except the rows the input legitimately replaces.
    assert after.filter(~keys.is_in(list(changed))).equals(before.filter(~keys.is_in(list(changed))))
    assert after.height == before.height - case.gone


@pytest.mark.parametrize("name", FILE_CASES)
def test_a_bad_user_file_after_a_good_one(file_home, monkeypatch, name):
    case = FILE_CASES[name]
    before = stored()
    assert before.height == len(good_rows())
    file_home.write_text(case.body)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    assert_outcome(case, materialize(PRICES, raise_on_error=False), before)


def test_the_large_file_with_four_empty_rows_drops_and_counts_them(quant_home, tmp_path, monkeypatch):
    """7 symbols x 3,700 days; the last symbol has four rows of empty cells (a source with no trade that day).
    Validated and loaded as the asset does it, without recording 3,700 daily materializations."""
    days = [date(2012, 1, 1) + timedelta(days=i) for i in range(3700)]
    symbols = [f"SYM{i}" for i in range(7)]
    lines = [HEADER]
    for symbol in symbols:
        for i, day in enumerate(days):
            c = round(50 + 10 * math.sin(i / 30) + symbols.index(symbol), 4)
            lines.append(f"{symbol},{day},{c},{c},{c},{c},100,crypto")
    good = tmp_path / "large.csv"
    good.write_text("\n".join(lines) + "\n")
    empty = {len(lines) - 1 - k for k in (3, 50, 51, 900)}  # row numbers of the last symbol, from 1 after the header
    for row in empty:
        lines[row] = ",".join([lines[row].split(",")[0], lines[row].split(",")[1], "", "", "", "", "", "crypto"])
    bad = tmp_path / "large_bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("QUANT_HISTORY_START", str(days[0]))
    warehouse = Warehouse(Settings().warehouse_path)
    everything = Slice(days[0], days[-1], datetime(2030, 1, 1, tzinfo=UTC))

    def load(path):
        monkeypatch.setenv("QUANT_PRICES_FILE", str(path))
        result = load_prices(provider_config(Settings()), warehouse, everything)
        warehouse.replace("market.prices", result.frame)  # the whole range is the slice here
        return result

    load(good)
    before = stored()
    result = load(bad)
    assert result.report.dropped == {"missing, non-positive or non-finite close": 4}
    assert sorted(int(e.split("row ")[1].split(" ")[0]) for e in result.report.examples) == sorted(empty)
    assert all("SYM6" in e for e in result.report.examples) and result.kept_rows == 4
    assert stored().equals(before) and before.height == 7 * 3700


# --- provider answers -------------------------------------------------------------------------------------------

def bars(symbol: str, first: str, last: str, scale: float = 1.0) -> list[dict]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    out = []
    for i in range((end - start).days + 1):
        day = start + timedelta(days=i)
        if day.weekday() < 5 and FIRST <= day <= LAST:
            c = close_on(symbol, day) * (scale if day >= date.fromisoformat(E) else 1.0)
            out.append({"o": c, "h": c * 1.01, "l": c * 0.99, "c": c, "v": 1000.0,
                        "t": int(datetime(day.year, day.month, day.day, 5, tzinfo=UTC).timestamp() * 1000)})
    return out


def good_polygon(request: Request) -> Reply:
    parts = request.path.split("/")
    return json_reply({"ticker": parts[4], "status": "OK", "results": bars(parts[4], parts[8], parts[9])})


def coinbase_answer(request: Request) -> Reply:
    start, end = date.fromisoformat(request.query["start"][:10]), date.fromisoformat(request.query["end"][:10])
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return json_reply([[int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()), close_on(COIN, d) * 0.99,
                        close_on(COIN, d) * 1.01, close_on(COIN, d), close_on(COIN, d), 1000.0]
                       for d in reversed(days) if FIRST <= d <= LAST])


def once_then_good(first: Reply):
    """The first Polygon request gets ``first``; every later one the good answer."""
    sent = []

    def handler(request: Request) -> Reply:
        if not sent:
            sent.append(request)
            return first
        return good_polygon(request)
    return handler


def for_symbol(symbol: str, reply):
    return lambda request: reply(request) if f"/{symbol}/" in request.path else good_polygon(request)


HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
PROVIDER_CASES = {
    "truncated JSON": Case(lambda: lambda request: Reply(200, json_reply({"status": "OK", "results": bars("ACME", str(FIRST), str(LAST))}).body[:300]),
                           refused=r"polygon returned a body for ACME .* that is not valid JSON .*may be truncated"),
    "an HTML error page with 200": Case(lambda: lambda request: Reply(200, HTML_PAGE, {"Content-Type": "text/html"}),
                                        refused=r"polygon returned a body for ACME .* not valid JSON"),
    "an HTML 502 page for ever": Case(lambda: lambda request: Reply(502, HTML_PAGE, {"Content-Type": "text/html"}),
                                      refused=r"polygon request for ACME .* still failing after 6 attempts \(last: HTTP 502"),
    "429 with Retry-After, then the answer": Case(lambda: once_then_good(json_reply({"status": "ERROR"}, 429, {"Retry-After": "7"}))),
    "503 for ever": Case(lambda: lambda request: Reply(503), refused=r"still failing after 6 attempts \(last: HTTP 503"),
    "a 500, then the answer": Case(lambda: once_then_good(Reply(500))),
    "a timeout, then the answer": Case(lambda: once_then_good(Reply(200, b"{}", delay=1.5))),
    "timeouts for ever": Case(lambda: lambda request: Reply(200, b"{}", delay=1.5),
                              refused=r"still failing after 6 attempts \(last: ReadTimeout"),
    "403 with an explanation": Case(lambda: lambda request: json_reply({"status": "ERROR", "error": "NOT_AUTHORIZED"}, 403),
                                    refused=r"polygon request for ACME .* failed with HTTP 403 Forbidden \(NOT_AUTHORIZED\); not retried"),
    "one symbol missing from the answer": Case(lambda: for_symbol("BETA", lambda r: json_reply({"ticker": "BETA", "status": "OK", "resultsCount": 0})),
                                               warning=None),
    "a non-positive price in the answer": Case(lambda: for_symbol("BETA", lambda r: json_reply(
        {"status": "OK", "results": [{**b, "c": -1.0} if i == 5 else b for i, b in
                                     enumerate(bars("BETA", r.path.split("/")[8], r.path.split("/")[9]))]})),
        dropped={"missing, non-positive or non-finite close": 1}, example="(BETA, 2021-01-11)"),
    "a split-sized jump in the answer": Case(
        lambda: for_symbol("ACME", lambda r: json_reply({"status": "OK", "results": bars("ACME", r.path.split("/")[8], r.path.split("/")[9], 0.25)})),
        warning=rf"ACME {E}: close moved ×0\.2\d* in one day",
        changed={("ACME", d) for d in map(str, pl.date_range(date.fromisoformat(E), LAST, eager=True)) if date.fromisoformat(d).weekday() < 5}),
}


PROVIDER_ENV = {"QUANT_PROVIDER": "polygon", "POLYGON_API_KEY": "pk-battery", "QUANT_UNIVERSE": "ACME,BETA,BTC",
                "QUANT_TODAY": str(LAST)}


def loopback_patches(stocks_url: str, coins_url: str, sleeps: list[float]):
    return ((polygon, "fetch_polygon_prices", functools.partial(
                polygon.fetch_polygon_prices, base_url=stocks_url, sleep=sleeps.append, timeout=0.5)),
            (coinbase, "fetch_coinbase_candles", functools.partial(
                coinbase.fetch_coinbase_candles, base_url=coins_url, sleep=sleeps.append)))


@pytest.fixture(scope="module")
def good_provider_load(tmp_path_factory):
    with LoopbackServer(good_polygon) as stocks, LoopbackServer(coinbase_answer) as coins:
        return loaded_once(tmp_path_factory, PROVIDER_ENV, loopback_patches(stocks.url, coins.url, []))


@pytest.fixture
def provider_home(quant_home, monkeypatch, good_provider_load):
    quant_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(good_provider_load, quant_home / "warehouse.duckdb")
    for name, value in {**PROVIDER_ENV, "QUANT_HISTORY_START": str(FIRST)}.items():
        monkeypatch.setenv(name, value)
    sleeps: list[float] = []
    with LoopbackServer(good_polygon) as stocks, LoopbackServer(coinbase_answer) as coins:
        for module, name, value in loopback_patches(stocks.url, coins.url, sleeps):
            monkeypatch.setattr(module, name, value)
        yield stocks, sleeps


@pytest.mark.parametrize("name", PROVIDER_CASES)
def test_a_bad_provider_answer_after_a_good_one(provider_home, name):
    stocks, sleeps = provider_home
    case = PROVIDER_CASES[name]
    before = stored()
    assert before.height == sum(1 for r in good_rows())
    stocks.handler = case.body()
    result = materialize(PRICES, raise_on_error=False)
    if name == "one symbol missing from the answer":
        assert metadata_of(result)["symbols_kept_from_storage"] == ["BETA"]
    if name.startswith("429"):
        assert sleeps == [7.0]  # the server's Retry-After, honoured
    assert_outcome(case, result, before)
