"""The live-price provider against loopback fakes of Polygon and Coinbase: answers, cache, one request per
symbol in flight, rate limits, every failure falling back to the last close without showing the key, a quote's
source and age taken from its own timestamp, and one deadline for all symbols however many hang."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from quant_assets.lib.market.live import LastClose, LivePrices
from quant_assets_tests.support.loopback import LoopbackServer, Reply, json_reply

KEY = "pk_live_SECRET_0123456789"
CLOSES = {"AAPL": LastClose("AAPL", "equity", 125.0, date(2022, 12, 28), "skfolio"),
          "BTC": LastClose("BTC", "crypto", 16700.0, date(2022, 12, 28), "synthetic")}


def _now_ns(ago: timedelta = timedelta(0)) -> int:
    return int((datetime.now(timezone.utc) - ago).timestamp() * 1e9)


def polygon_ok(request):
    return json_reply({"status": "OK", "ticker": {"ticker": request.path.rsplit("/", 1)[-1],
                       "lastTrade": {"p": 131.5, "t": _now_ns()}, "updated": _now_ns()}})


def coinbase_ok(request):
    return json_reply({"price": "16812.25", "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")})


def provider(polygon_url, coinbase_url, **kwargs):
    # A deadline beyond the slowest failure below, so that each failure is seen for what it is, not as late.
    options = {"polygon_key": KEY, "polygon_url": polygon_url, "coinbase_url": coinbase_url, "timeout_seconds": 0.5,
               "max_retry_wait": 0.2, "deadline_seconds": 3.0, **kwargs}
    closes = options.pop("closes", CLOSES)
    return LivePrices(lambda symbols: {s: closes[s] for s in symbols if s in closes}, **options)


def test_live_quotes_carry_source_time_and_flags_and_send_the_key_only_to_polygon():
    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        quotes = provider(polygon.url, coinbase.url).quotes(["AAPL", "BTC", "UNKNOWN"])
    assert set(quotes) == {"AAPL", "BTC"}
    assert (quotes["AAPL"].source, quotes["AAPL"].price, quotes["AAPL"].delayed, quotes["AAPL"].stale) == ("polygon", 131.5, False, False)
    assert (quotes["BTC"].source, quotes["BTC"].price) == ("coinbase", 16812.25)
    assert polygon.requests[0].path == "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL"
    assert polygon.requests[0].query["apiKey"] == KEY and coinbase.requests[0].path == "/products/BTC-USD/ticker"
    assert "apiKey" not in coinbase.requests[0].raw_target


def test_cache_and_one_request_in_flight_per_symbol():
    def slow(request):
        reply = coinbase_ok(request)
        reply.delay = 0.3
        return reply

    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(slow) as coinbase:
        live = provider(polygon.url, coinbase.url)
        results = []
        threads = [threading.Thread(target=lambda: results.append(live.quotes(["BTC"])["BTC"])) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        live.quotes(["BTC"])
    assert len(coinbase.requests) == 1
    assert {q.source for q in results} == {"coinbase"} and len(results) == 8


FAILURES = {
    "server error": lambda request: Reply(503, b"busy"),
    "garbage body": lambda request: Reply(200, b"<html>not json", {"Content-Type": "text/html"}),
    "wrong shape": lambda request: json_reply({"status": "OK", "ticker": {"lastTrade": {"p": "x"}}, "price": None}),
    "timeout": lambda request: Reply(200, b"{}", delay=1.5),
    "not found": lambda request: json_reply({"error": f"unknown ticker, your key {KEY}"}, status=404),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_every_failure_falls_back_to_the_last_close_and_hides_the_key(failure, caplog):
    caplog.set_level(logging.DEBUG)
    with LoopbackServer(FAILURES[failure]) as polygon, LoopbackServer(FAILURES[failure]) as coinbase:
        live = provider(polygon.url, coinbase.url)
        quotes = live.quotes(["AAPL", "BTC"])
        state = live.state()
    for symbol in ("AAPL", "BTC"):
        quote = quotes[symbol]
        assert (quote.source, quote.price, quote.stale) == ("last_close", CLOSES[symbol].close, True)
        assert "last close of 2022-12-28" in quote.note and "failed" in quote.note
    assert "synthetic" in quotes["BTC"].note
    shown = json.dumps({s: q.as_dict() for s, q in quotes.items()}) + json.dumps(state) + caplog.text
    assert KEY not in shown


def test_429_retry_after_cools_the_source_down_and_falls_back():
    with LoopbackServer(lambda request: Reply(429, b"", {"Retry-After": "30"})) as polygon, \
            LoopbackServer(coinbase_ok) as coinbase:
        live = provider(polygon.url, coinbase.url, ttl_seconds=0.0, fallback_ttl_seconds=0.0)
        first = live.quotes(["AAPL"])["AAPL"]
        second = live.quotes(["AAPL"])["AAPL"]
        crypto = live.quotes(["BTC"])["BTC"]
    assert first.source == second.source == "last_close"
    assert "rate limiting" in first.note and "HTTP 429" in second.note
    assert len(polygon.requests) == 1  # the second ask waited out the Retry-After instead of calling again
    assert crypto.source == "coinbase"  # the cool-down is per source
    assert "polygon" in live.state()["cooling_down"]


def test_without_a_key_or_when_off_the_last_close_says_why():
    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        keyless = provider(polygon.url, coinbase.url, polygon_key=None).quotes(["AAPL", "BTC"])
        off = provider(polygon.url, coinbase.url, enabled=False).quotes(["AAPL"])
        assert len(polygon.requests) == 0
    assert keyless["AAPL"].source == "last_close" and "no POLYGON_API_KEY" in keyless["AAPL"].note
    assert keyless["BTC"].source == "coinbase"
    assert off["AAPL"].source == "last_close" and "sample or a prices file" in off["AAPL"].note


def test_per_source_rate_limit_refuses_beyond_its_pace_within_the_deadline():
    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        live = provider(polygon.url, coinbase.url, requests_per_second=1.0, deadline_seconds=0.3, ttl_seconds=0.0)
        quotes = live.quotes(["AAPL", "BTC"])
        again = live.quotes(["AAPL"])
    assert quotes["AAPL"].source == "polygon"
    assert again["AAPL"].source == "last_close" and "rate limit" in again["AAPL"].note
    assert len(polygon.requests) == 1


def _snapshot(**ticker):
    return lambda request: json_reply({"status": "OK", "ticker": {"ticker": "AAPL", **ticker}})


def _one_quote(polygon_handler=polygon_ok, coinbase_handler=coinbase_ok, symbol="AAPL", **kwargs):
    with LoopbackServer(polygon_handler) as polygon, LoopbackServer(coinbase_handler) as coinbase:
        live = provider(polygon.url, coinbase.url, **kwargs)
        try:
            return live.quotes([symbol])[symbol]
        finally:
            live.close()


def test_a_previous_close_is_a_last_close_never_a_live_price():
    # Before the open (or on a plan without trades) the snapshot holds only yesterday's close, stamped with "now".
    quote = _one_quote(_snapshot(prevDay={"c": 131.0}, day={"c": 0}, min={}, updated=_now_ns()))
    assert (quote.source, quote.price, quote.stale) == ("last_close", CLOSES["AAPL"].close, True)
    assert "no trade since the previous session's close" in quote.note


def test_source_and_age_come_from_the_price_own_timestamp():
    twenty_minutes, four_days = timedelta(minutes=20), timedelta(days=4)
    trade = _one_quote(_snapshot(lastTrade={"p": 131.5, "t": _now_ns(twenty_minutes)}, updated=_now_ns()))
    assert (trade.source, trade.delayed, trade.stale) == ("polygon", True, False)
    assert trade.age_seconds() == pytest.approx(twenty_minutes.total_seconds(), abs=30)
    # The newest of the prices with a time of their own wins: here the minute bar (ms) over an older trade.
    newest = _one_quote(_snapshot(lastTrade={"p": 131.5, "t": _now_ns(four_days)},
                                  min={"c": 132.0, "t": _now_ns(timedelta(seconds=30)) // 1_000_000}))
    assert (newest.price, newest.source, newest.delayed) == (132.0, "polygon", False)
    # A trade without its own time is not dated by the ticker's "updated".
    undated = _one_quote(_snapshot(lastTrade={"p": 131.5}, prevDay={"c": 130.0}, updated=_now_ns()))
    assert undated.source == "last_close"


def test_old_data_is_served_with_its_age_or_not_at_all():
    old = _one_quote(_snapshot(lastTrade={"p": 131.5, "t": _now_ns(timedelta(days=4))}))
    assert (old.source, old.stale) == ("polygon", True) and old.age_seconds() > 4 * 86_400 - 60
    before_the_close = datetime(2022, 12, 27, 20, 0, tzinfo=timezone.utc)
    older = _one_quote(_snapshot(lastTrade={"p": 99.0, "t": int(before_the_close.timestamp() * 1e9)}))
    assert (older.source, older.price) == ("last_close", CLOSES["AAPL"].close) and "is no newer" in older.note
    stale_coin = _one_quote(coinbase_handler=lambda request: json_reply({"price": "9.5", "time": "2022-11-01T00:00:00Z"}),
                            symbol="BTC")
    assert (stale_coin.source, stale_coin.price) == ("last_close", CLOSES["BTC"].close)


def test_a_coinbase_time_without_an_offset_is_utc():
    stamp = datetime.now(timezone.utc) - timedelta(seconds=30)
    quote = _one_quote(coinbase_handler=lambda request: json_reply(
        {"price": "16812.25", "time": stamp.replace(tzinfo=None).isoformat()}), symbol="BTC")
    assert (quote.source, quote.timestamp) == ("coinbase", stamp)
    assert quote.age_seconds() == pytest.approx(30, abs=10) and not quote.delayed


GARBAGE = {
    "a timestamp in the future": _snapshot(lastTrade={"p": 131.5, "t": _now_ns(timedelta(days=-1))}),
    "a timestamp in the wrong unit": _snapshot(lastTrade={"p": 131.5, "t": _now_ns() * 1000}),
    "a timestamp beyond any calendar": _snapshot(lastTrade={"p": 131.5, "t": 1e30}),
    "a negative price": _snapshot(lastTrade={"p": -5, "t": _now_ns()}),
    "an infinite price": lambda request: Reply(200, b'{"ticker": {"lastTrade": {"p": 1e999, "t": 1}}}'),
    "a list for a ticker": lambda request: json_reply({"ticker": [1, 2]}),
}


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_falls_back_and_says_the_source_failed(garbage):
    quote = _one_quote(GARBAGE[garbage])
    assert (quote.source, quote.price) == ("last_close", CLOSES["AAPL"].close) and "polygon failed" in quote.note


def test_garbage_times_from_coinbase_fall_back():
    for time_text in ("later", "", "2026-13-40T00:00:00"):
        quote = _one_quote(coinbase_handler=lambda request: json_reply({"price": "1", "time": time_text}), symbol="BTC")
        assert quote.source == "last_close" and "coinbase failed" in quote.note


SIX = ("AAPL", "MSFT", "JNJ", "KO", "PEP", "XOM")


def test_six_hanging_symbols_are_fetched_together_under_one_deadline():
    closes = {s: LastClose(s, "equity", 100.0, date(2022, 12, 28), "skfolio") for s in SIX}
    with LoopbackServer(lambda request: Reply(200, b"{}", delay=6.0)) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        # The production settings: 2 s per request, one retry (a symbol alone would take over 4 s), 1.5 s per page.
        live = provider(polygon.url, coinbase.url, closes=closes, timeout_seconds=2.0, deadline_seconds=1.5)
        started = time.perf_counter()
        quotes = live.quotes(SIX)
        elapsed = time.perf_counter() - started
        asked = {r.path.rsplit("/", 1)[-1] for r in polygon.requests}
        live.close()
    print(f"\n6 hanging symbols answered in {elapsed:.2f} s (deadline 1.5 s; serially this was 24.6 s)")
    assert elapsed < 4.0
    assert asked == set(SIX)  # every symbol's request was out before the deadline: fetched together, not in turn
    for quote in quotes.values():
        assert quote.source == "last_close" and "polygon gave no answer within 1.5s" in quote.note


def test_a_symbol_that_stops_answering_is_served_its_last_quote_with_its_age():
    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        live = provider(polygon.url, coinbase.url, ttl_seconds=0.0, deadline_seconds=0.5)
        first = live.quotes(["AAPL"])["AAPL"]
        polygon.handler = lambda request: Reply(200, b"{}", delay=3.0)
        time.sleep(0.2)
        late = live.quotes(["AAPL"])["AAPL"]
        live.close()
    assert (late.source, late.price, late.timestamp) == ("polygon", first.price, first.timestamp)
    assert late.age_seconds() >= 0.2 and "gave no answer within 0.5s: its last price" in late.note
