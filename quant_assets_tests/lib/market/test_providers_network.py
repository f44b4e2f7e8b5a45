"""The network providers against a real HTTP server on 127.0.0.1 speaking each API's documented format."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.lib.market.providers.coinbase import fetch_coinbase_candles, product_symbol
from quant_assets.lib.market.providers.coinmetrics import DEFAULT_METRICS, fetch_coinmetrics
from quant_assets.lib.market.providers.http import MAX_RETRY_AFTER, ProviderError
from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA
from quant_assets.lib.market.providers.polygon import fetch_polygon_prices
from quant_assets_tests.support.loopback import LoopbackServer, Reply, Request, json_reply

KEY = "sk-TEST-9f3c2b7e1d"


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def sleeps():
    return []


def scripted(*replies: Reply, then: Reply):
    """A handler sending ``replies`` in order, then ``then`` for every later request."""
    queue = list(replies)
    return lambda request: queue.pop(0) if queue else then


def ms(day: date) -> int:
    """Polygon's daily-bar timestamp: midnight US/Eastern of ``day`` in epoch milliseconds."""
    return int(datetime(day.year, day.month, day.day, 5, tzinfo=UTC).timestamp() * 1000)


def unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def price(day: date) -> float:
    """A distinct, date-determined close so every column mapping is checkable."""
    return 100.0 + (day - date(2020, 1, 1)).days


def polygon_bar(day: date) -> dict:
    c = price(day)
    return {"o": c - 1, "h": c + 5, "l": c - 6, "c": c, "v": 1000 + c, "t": ms(day), "n": 7, "vw": c}


def expected_prices(symbol: str, days: list[date], asset_class: str, source: str) -> pl.DataFrame:
    closes = [price(d) for d in days]
    volumes = [1000 + c for c in closes] if source == "polygon" else [10 + c for c in closes]
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(days), "date": days, "asset_class": [asset_class] * len(days),
            "open": [c - 1 for c in closes], "high": [c + 5 for c in closes], "low": [c - 6 for c in closes],
            "close": closes, "volume": volumes, "source": [source] * len(days),
        },
        schema=PRICE_SCHEMA,
    )


def coinbase_candles(first: date, last: date) -> list[list[float]]:
    """``[time, low, high, open, close, volume]`` for each day, newest first, as Coinbase sends them."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [[unix(d), price(d) - 6, price(d) + 5, price(d) - 1, price(d), 10 + price(d)] for d in reversed(days)]


D1, D2 = date(2024, 1, 2), date(2024, 1, 3)

# Each provider called for one symbol over D1..D2, with the body of a good two-row answer.
CASES = {
    "polygon": dict(
        symbol="AAPL",
        call=lambda url, **kw: fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=url, **kw),
        good={"ticker": "AAPL", "status": "OK", "resultsCount": 2, "results": [polygon_bar(D1), polygon_bar(D2)]},
    ),
    "coinbase": dict(
        symbol="BTC-USD",
        call=lambda url, **kw: fetch_coinbase_candles(["BTC-USD"], D1, D2, base_url=url, **kw),
        good=coinbase_candles(D1, D2),
    ),
    "coinmetrics": dict(
        symbol="BTC",
        call=lambda url, **kw: fetch_coinmetrics(["btc"], ["TxCnt"], D1, D2, base_url=url, **kw),
        good={"data": [{"asset": "btc", "time": f"{d}T00:00:00.000000000Z", "TxCnt": "5"} for d in (D1, D2)]},
    ),
}


def assert_clear(err: pytest.ExceptionInfo, provider: str, *fragments: str) -> None:
    message = str(err.value)
    assert provider in message and CASES[provider]["symbol"] in message
    for fragment in fragments:
        assert fragment in message
    assert KEY not in message and KEY not in repr(err.value)
    assert "\n" not in message


# --- behaviour shared by all three providers -------------------------------------------------------

@pytest.mark.parametrize("provider", CASES)
def test_429_with_retry_after_then_success(server, sleeps, provider):
    case = CASES[provider]
    limited = json_reply({"message": "slow down"}, 429, {"Retry-After": "3"})
    server.handler = scripted(limited, then=json_reply(case["good"]))
    frame = case["call"](server.url, sleep=sleeps.append)
    assert frame.height == 2 and len(server.requests) == 2
    assert sleeps == [3.0]


@pytest.mark.parametrize("provider", CASES)
def test_retry_after_is_capped(server, sleeps, provider):
    case = CASES[provider]
    server.handler = scripted(Reply(429, headers={"Retry-After": "86400"}), then=json_reply(case["good"]))
    assert case["call"](server.url, sleep=sleeps.append).height == 2
    assert sleeps == [MAX_RETRY_AFTER]


@pytest.mark.parametrize("provider", CASES)
def test_5xx_then_success_backs_off_exponentially(server, sleeps, provider):
    case = CASES[provider]
    server.handler = scripted(Reply(500), Reply(503), then=json_reply(case["good"]))
    assert case["call"](server.url, sleep=sleeps.append).height == 2
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("provider", CASES)
def test_persistent_500_raises_naming_provider_and_symbol(server, sleeps, provider):
    server.handler = lambda request: Reply(500, b"oops")
    with pytest.raises(ProviderError) as err:
        CASES[provider]["call"](server.url, sleep=sleeps.append)
    assert_clear(err, provider, "6 attempts", "HTTP 500")
    assert len(server.requests) == 6
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("provider", CASES)
def test_timeout_is_retried(server, sleeps, provider):
    case = CASES[provider]
    slow = json_reply(case["good"])
    slow.delay = 2.0
    server.handler = scripted(slow, then=json_reply(case["good"]))
    assert case["call"](server.url, sleep=sleeps.append, timeout=0.5).height == 2
    assert sleeps == [0.5] and len(server.requests) == 2


@pytest.mark.parametrize("provider", CASES)
def test_truncated_json_raises(server, sleeps, provider):
    case = CASES[provider]
    body = json_reply(case["good"]).body
    server.handler = lambda request: Reply(200, body[: len(body) // 2], {"Content-Type": "application/json"})
    with pytest.raises(ProviderError) as err:
        case["call"](server.url, sleep=sleeps.append)
    assert_clear(err, provider, "not valid JSON")
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("provider", CASES)
def test_404_is_not_retried(server, sleeps, provider):
    server.handler = lambda request: json_reply({"message": "NotFound"}, 404)
    with pytest.raises(ProviderError) as err:
        CASES[provider]["call"](server.url, sleep=sleeps.append)
    assert_clear(err, provider, "HTTP 404", "NotFound")
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("provider", "body", "fragment"),
    [
        ("polygon", {"status": "OK", "results": {"o": 1}}, "'results' is dict"),
        ("polygon", {"status": "OK", "results": [{**polygon_bar(D1), "c": "101.5"}]}, "results[0].c"),
        ("polygon", {"status": "OK", "results": [{**polygon_bar(D1), "t": None}]}, "results[0].t"),
        ("polygon", [1, 2], "expected a JSON object"),
        ("coinbase", {"message": "hello"}, "expected a JSON list"),
        ("coinbase", [[unix(D1), 1.0, 2.0, 1.5, 1.7]], "candle 0"),
        ("coinbase", [[unix(D1), 1.0, "2.0", 1.5, 1.7, 9.0]], "field high"),
        ("coinmetrics", {"data": {"asset": "btc"}}, "'data' is dict"),
        ("coinmetrics", {"data": [{"asset": "btc", "time": "yesterday", "TxCnt": "1"}]}, "data[0].time"),
        ("coinmetrics", {"data": [{"time": "2024-01-02T00:00:00.000000000Z"}]}, "data[0].asset"),
    ],
)
def test_wrong_shapes_and_types_raise(server, sleeps, provider, body, fragment):
    server.handler = lambda request: json_reply(body)
    with pytest.raises(ProviderError) as err:
        CASES[provider]["call"](server.url, sleep=sleeps.append)
    assert_clear(err, provider, fragment)


@pytest.mark.parametrize(
    ("provider", "body", "schema"),
    [
        ("polygon", {"ticker": "AAPL", "status": "OK", "resultsCount": 0, "queryCount": 0}, PRICE_SCHEMA),
        ("polygon", {"ticker": "AAPL", "status": "DELAYED", "resultsCount": 0, "results": []}, PRICE_SCHEMA),
        ("coinbase", [], PRICE_SCHEMA),
        ("coinmetrics", {"data": []}, ONCHAIN_SCHEMA),
        ("coinmetrics", {"data": [{"asset": "btc", "time": f"{D1}T00:00:00.000000000Z", "TxCnt": None}]}, ONCHAIN_SCHEMA),
    ],
)
def test_empty_answers_give_zero_rows_with_the_schema(server, sleeps, provider, body, schema):
    server.handler = lambda request: json_reply(body)
    frame = CASES[provider]["call"](server.url, sleep=sleeps.append)
    assert frame.height == 0 and frame.schema == pl.Schema(schema)


# --- Polygon -------------------------------------------------------------------------------------

def test_polygon_follows_next_url_with_the_key_and_builds_rows(server, sleeps):
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(6)]

    def handler(request: Request) -> Reply:
        if request.query.get("apiKey") != KEY:
            return json_reply({"status": "ERROR", "error": "Unknown API Key"}, 401)
        symbol = request.path.split("/")[4]
        if symbol == "MSFT":
            bars = [polygon_bar(d) for d in days[:2]]
            return json_reply({"ticker": "MSFT", "status": "OK", "resultsCount": 2, "results": bars})
        if "cursor" not in request.query:
            # Like Polygon's own next_url: the cursor, and no key.
            next_url = f"{server.url}{request.path}?cursor=page2"
            return json_reply({"ticker": "AAPL", "status": "OK", "resultsCount": 4,
                               "results": [polygon_bar(d) for d in days[:4]], "next_url": next_url})
        bars = [polygon_bar(d) for d in days[4:]]
        return json_reply({"ticker": "AAPL", "status": "DELAYED", "resultsCount": 2, "results": bars})

    server.handler = handler
    frame = fetch_polygon_prices(["MSFT", "AAPL"], days[0], days[-1], KEY, base_url=server.url, sleep=sleeps.append)
    expected = pl.concat([
        expected_prices("AAPL", days, "equity", "polygon"),
        expected_prices("MSFT", days[:2], "equity", "polygon"),
    ])
    assert_frame_equal(frame, expected)
    assert [r.path for r in server.requests] == [
        "/v2/aggs/ticker/MSFT/range/1/day/2024-01-02/2024-01-07",
        "/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-07",
        "/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-07",
    ]
    assert server.requests[1].query == {"adjusted": "true", "sort": "asc", "limit": "50000", "apiKey": KEY}
    assert server.requests[2].query == {"cursor": "page2", "apiKey": KEY}
    assert sleeps == []


def test_polygon_empty_symbol_does_not_hide_others(server, sleeps):
    def handler(request: Request) -> Reply:
        if "/ZZZZ/" in request.path:
            return json_reply({"ticker": "ZZZZ", "status": "OK", "resultsCount": 0})
        return json_reply({"ticker": "AAPL", "status": "OK", "resultsCount": 1, "results": [polygon_bar(D1)]})

    server.handler = handler
    frame = fetch_polygon_prices(["ZZZZ", "AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_frame_equal(frame, expected_prices("AAPL", [D1], "equity", "polygon"))


def test_polygon_never_leaks_the_key_into_messages_or_logs(server, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    server.handler = lambda request: json_reply({"status": "ERROR", "error": f"Unknown API Key {KEY}"}, 401)
    with pytest.raises(ProviderError) as err:
        fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "polygon", "HTTP 401", "Unknown API Key ***")

    # A 200 answer whose own error status quotes the request, key and all.
    server.handler = lambda request: json_reply({"status": "NOT_AUTHORIZED", "message": f"apiKey {KEY} lacks this plan"})
    with pytest.raises(ProviderError) as err:
        fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "polygon", "NOT_AUTHORIZED", "apiKey *** lacks this plan")

    server.handler = lambda request: Reply(503)
    with pytest.raises(ProviderError) as err:
        fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "polygon", "6 attempts")
    assert err.value.__cause__ is None
    assert "HTTP Request: GET" in caplog.text and "retry 5/5" in caplog.text  # the logs were really captured
    assert KEY not in caplog.text


def test_polygon_refuses_a_next_url_to_another_host(server, sleeps):
    server.handler = lambda request: json_reply(
        {"status": "OK", "results": [polygon_bar(D1)], "next_url": "https://evil.example/v2/aggs?cursor=x"}
    )
    with pytest.raises(ProviderError) as err:
        fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "polygon", "another host")
    assert len(server.requests) == 1


def test_polygon_error_status_in_a_200_body_raises(server, sleeps):
    server.handler = lambda request: json_reply({"status": "NOT_AUTHORIZED", "message": "plan too small"})
    with pytest.raises(ProviderError) as err:
        fetch_polygon_prices(["AAPL"], D1, D2, KEY, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "polygon", "NOT_AUTHORIZED", "plan too small")


# --- Coinbase ------------------------------------------------------------------------------------

def coinbase_handler(empty_chunk_start: date | None = None):
    """Candles for the requested window plus one day before it (the API may send such), newest first."""
    def handler(request: Request) -> Reply:
        first = date.fromisoformat(request.query["start"][:10])
        last = date.fromisoformat(request.query["end"][:10])
        if first == empty_chunk_start:
            return json_reply([])
        return json_reply(coinbase_candles(first - timedelta(days=1), last))
    return handler


def test_coinbase_pages_in_300_day_chunks_and_dedupes(server, sleeps):
    first, last = date(2022, 1, 1), date(2023, 9, 30)
    server.handler = coinbase_handler()
    frame = fetch_coinbase_candles(["BTC-USD", "ETH-USD"], first, last, base_url=server.url, sleep=sleeps.append)

    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert len(days) == 638
    expected = pl.concat([expected_prices(s, days, "crypto", "coinbase") for s in ("BTC", "ETH")])
    assert_frame_equal(frame, expected)

    btc = [r for r in server.requests if r.path == "/products/BTC-USD/candles"]
    windows = [(date.fromisoformat(r.query["start"][:10]), date.fromisoformat(r.query["end"][:10])) for r in btc]
    assert windows == [
        (date(2022, 1, 1), date(2022, 10, 27)),
        (date(2022, 10, 28), date(2023, 8, 23)),
        (date(2023, 8, 24), date(2023, 9, 30)),
    ]
    assert all((b - a).days + 1 <= 300 for a, b in windows)
    assert all(r.query["granularity"] == "86400" and r.query["start"].endswith("T00:00:00Z") for r in btc)
    assert len(server.requests) == 6


def test_coinbase_empty_chunk_gives_no_rows_for_that_window_only(server, sleeps):
    first, last = date(2022, 1, 1), date(2023, 9, 30)
    server.handler = coinbase_handler(empty_chunk_start=date(2022, 10, 28))
    frame = fetch_coinbase_candles(["BTC-USD"], first, last, base_url=server.url, sleep=sleeps.append)
    # The third chunk's extra day-before candle (2023-08-23) still lands, as Coinbase would send it.
    assert frame.height == 638 - 300 + 1
    assert frame["date"].is_sorted() and frame["date"].n_unique() == frame.height


def test_coinbase_product_symbols():
    assert product_symbol("btc-usd") == "BTC"
    with pytest.raises(ValueError, match="BASE-QUOTE"):
        product_symbol("BTCUSD")
    with pytest.raises(ValueError, match="more than one product"):
        fetch_coinbase_candles(["BTC-USD", "BTC-EUR"], D1, D2, base_url="http://127.0.0.1:9")


# --- Coin Metrics --------------------------------------------------------------------------------

def test_coinmetrics_follows_pages_and_returns_long_point_in_time_rows(server, sleeps):
    def stamp(day: date) -> str:
        return f"{day}T00:00:00.000000000Z"

    def handler(request: Request) -> Reply:
        if "next_page_token" not in request.query:
            return json_reply({
                "data": [{"asset": "btc", "time": stamp(d), "AdrActCnt": f"{900 + i}", "TxCnt": f"{300.5 + i}"}
                         for i, d in enumerate((D1, D2))],
                "next_page_url": f"{server.url}{request.raw_target}&next_page_token=0.MjAyNA",
            })
        return json_reply({"data": [
            {"asset": "eth", "time": stamp(D1), "AdrActCnt": "500", "TxCnt": None},
            {"asset": "eth", "time": stamp(D2), "TxCnt": "1.5e3"},
        ]})

    server.handler = handler
    frame = fetch_coinmetrics(["BTC", "eth"], ["AdrActCnt", "TxCnt"], D1, D2, base_url=server.url, sleep=sleeps.append)
    close = {D1: datetime(2024, 1, 3, tzinfo=UTC), D2: datetime(2024, 1, 4, tzinfo=UTC)}
    rows = [
        ("BTC", "AdrActCnt", D1, 900.0), ("BTC", "AdrActCnt", D2, 901.0),
        ("BTC", "TxCnt", D1, 300.5), ("BTC", "TxCnt", D2, 301.5),
        ("ETH", "AdrActCnt", D1, 500.0), ("ETH", "TxCnt", D2, 1500.0),
    ]
    expected = pl.DataFrame(
        [(a, m, d, v, close[d], "coinmetrics") for a, m, d, v in rows], schema=ONCHAIN_SCHEMA, orient="row"
    )
    assert_frame_equal(frame, expected)
    first_query = {
        "assets": "btc,eth", "metrics": "AdrActCnt,TxCnt", "start_time": "2024-01-02",
        "end_time": "2024-01-03", "frequency": "1d", "page_size": "10000",
    }
    assert [r.query for r in server.requests] == [first_query, {**first_query, "next_page_token": "0.MjAyNA"}]


def test_coinmetrics_non_numeric_value_names_asset_metric_and_time(server, sleeps):
    server.handler = lambda request: json_reply(
        {"data": [{"asset": "btc", "time": "2024-01-02T00:00:00.000000000Z", "TxCnt": "n/a"}]}
    )
    with pytest.raises(ProviderError) as err:
        fetch_coinmetrics(["btc"], ["TxCnt"], D1, D2, base_url=server.url, sleep=sleeps.append)
    assert_clear(err, "coinmetrics", "'n/a'", "TxCnt", "2024-01-02T00:00:00.000000000Z")


def test_coinmetrics_requests_the_default_metrics(server, sleeps):
    server.handler = lambda request: json_reply({"data": []})
    fetch_coinmetrics(["btc"], start=D1, end=D2, base_url=server.url, sleep=sleeps.append)
    assert server.requests[0].query["metrics"] == ",".join(DEFAULT_METRICS) == "AdrActCnt,TxCnt,HashRate,CapMVRVCur"
