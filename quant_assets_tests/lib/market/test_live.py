"""The live-price provider against loopback fakes of Polygon and Coinbase: answers, cache, one request per
symbol in flight, rate limits, and every failure falling back to the last close without showing the key."""

from __future__ import annotations

import json
import logging
import threading
from datetime import date, datetime, timezone

import pytest

from quant_assets.lib.market.live import LastClose, LivePrices
from quant_assets_tests.support.loopback import LoopbackServer, Reply, json_reply

KEY = "pk_live_SECRET_0123456789"
CLOSES = {"AAPL": LastClose("AAPL", "equity", 125.0, date(2022, 12, 28), "skfolio"),
          "BTC": LastClose("BTC", "crypto", 16700.0, date(2022, 12, 28), "synthetic")}


def _now_ns() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1e9)


def polygon_ok(request):
    return json_reply({"status": "OK", "ticker": {"ticker": request.path.rsplit("/", 1)[-1],
                       "lastTrade": {"p": 131.5, "t": _now_ns()}, "updated": _now_ns()}})


def coinbase_ok(request):
    return json_reply({"price": "16812.25", "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")})


def provider(polygon_url, coinbase_url, **kwargs):
    options = {"polygon_key": KEY, "polygon_url": polygon_url, "coinbase_url": coinbase_url, "timeout_seconds": 0.5,
               "max_retry_wait": 0.2, **kwargs}
    return LivePrices(lambda symbols: {s: CLOSES[s] for s in symbols if s in CLOSES}, **options)


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


def test_per_source_rate_limit_refuses_beyond_its_pace():
    with LoopbackServer(polygon_ok) as polygon, LoopbackServer(coinbase_ok) as coinbase:
        live = provider(polygon.url, coinbase.url, requests_per_second=1.0, max_retry_wait=0.05, ttl_seconds=0.0)
        quotes = live.quotes(["AAPL", "BTC"])
        again = live.quotes(["AAPL"])
    assert quotes["AAPL"].source == "polygon"
    assert again["AAPL"].source == "last_close" and "rate limit" in again["AAPL"].note
    assert len(polygon.requests) == 1
