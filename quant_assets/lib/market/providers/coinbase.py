"""Daily crypto candles from the Coinbase Exchange public market-data API (no key needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Unpack
from urllib.parse import quote

import httpx
import polars as pl

from quant_assets.lib.market.providers.http import DEFAULT_TIMEOUT, Retry, check_range, get_json, is_number
from quant_assets.lib.market.providers.http import keyed_frame, session, shape_error
from quant_assets.lib.market.providers.schema import PRICE_SCHEMA
from quant_assets.lib.vocabulary import COINBASE_URL

PROVIDER = "coinbase"
DAY_SECONDS = 86400
# The API refuses requests that would return more than 300 candles.
MAX_CANDLES = 300


def product_symbol(product: str) -> str:
    """The warehouse symbol of a Coinbase product: its base currency (``'BTC-USD'`` → ``'BTC'``)."""
    base, sep, quote_ccy = product.partition("-")
    if not sep or not base or not quote_ccy or "-" in quote_ccy:
        raise ValueError(f"Coinbase product {product!r} is not of the form BASE-QUOTE such as 'BTC-USD'")
    return base.upper()


def day_chunks(first: date, last: date, size: int = MAX_CANDLES) -> Iterator[tuple[date, date]]:
    """Consecutive inclusive ``(start, end)`` date ranges of at most ``size`` days covering ``first..last``."""
    chunk_start = first
    while chunk_start <= last:
        chunk_end = min(chunk_start + timedelta(days=size - 1), last)
        yield chunk_start, chunk_end
        chunk_start = chunk_end + timedelta(days=1)


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def fetch_coinbase_candles(
    products: Sequence[str],
    start: date | str,
    end: date | str,
    base_url: str = COINBASE_URL,
    client: httpx.Client | None = None,
    **retry: Unpack[Retry],
) -> pl.DataFrame:
    """Daily candles for ``products`` (e.g. ``'BTC-USD'``) from ``start`` to ``end`` inclusive, as a prices frame.

    The range is requested in chunks of at most 300 days (the API's per-request limit); candles are
    keyed by their UTC start day, deduplicated and sorted. The symbol is the base currency. Raises
    :class:`ProviderError` naming the product when the API fails or answers with the wrong shape.
    ``client`` is used as given and left open.
    """
    first, last = check_range(start, end)
    symbols = {product: product_symbol(product) for product in dict.fromkeys(products)}
    clashes = sorted({s for s in symbols.values() if list(symbols.values()).count(s) > 1})
    if clashes:
        raise ValueError(f"Coinbase products {list(symbols)} map more than one product to symbol(s) {clashes}")
    base = base_url.rstrip("/")
    rows: list[tuple] = []
    with session(client, retry.pop("timeout", DEFAULT_TIMEOUT)) as http:
        for product, symbol in symbols.items():
            url = f"{base}/products/{quote(product, safe='')}/candles"
            for chunk_start, chunk_end in day_chunks(first, last):
                params = {"granularity": DAY_SECONDS, "start": _iso(chunk_start), "end": _iso(chunk_end)}
                body = get_json(http, url, params, provider=PROVIDER, symbol=product, **retry)
                rows.extend(_parse_candles(body, product, symbol, url))
    return keyed_frame(rows, PRICE_SCHEMA, ["symbol", "date"], first, last)

def _parse_candles(body: Any, product: str, symbol: str, url: str) -> list[tuple]:
    """Rows of one candles response: ``[time, low, high, open, close, volume]`` lists, newest first."""
    if not isinstance(body, list):
        raise shape_error(PROVIDER, product, url, f"expected a JSON list of candles, got {type(body).__name__}")
    rows = []
    for i, candle in enumerate(body):
        if not isinstance(candle, list) or len(candle) != 6:
            raise shape_error(
                PROVIDER, product, url,
                f"candle {i} is {candle!r:.80}, not a [time, low, high, open, close, volume] list",
            )
        names = ("time", "low", "high", "open", "close", "volume")
        for name, value in zip(names, candle, strict=True):
            if not is_number(value):
                raise shape_error(PROVIDER, product, url, f"candle {i} field {name} is {value!r}, not a number")
        epoch, low, high, open_, close, volume = candle
        try:
            day = datetime.fromtimestamp(epoch, tz=UTC).date()
        except (OverflowError, OSError, ValueError):
            raise shape_error(PROVIDER, product, url, f"candle {i} time {epoch!r} is not a valid unix time") from None
        prices = (float(open_), float(high), float(low), float(close), float(volume))
        rows.append((symbol, day, "crypto", *prices, PROVIDER))
    return rows
