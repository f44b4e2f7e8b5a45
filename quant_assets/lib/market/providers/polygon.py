"""Daily equity bars from Polygon.io's aggregates endpoint (split- and dividend-adjusted)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Unpack
from urllib.parse import quote

import httpx
import polars as pl

from quant_assets.lib.market.providers.http import DEFAULT_TIMEOUT, ProviderError, Retry, check_range, follow_pages
from quant_assets.lib.market.providers.http import is_number, keyed_frame, scrub, secret_value, session, shape_error
from quant_assets.lib.market.providers.schema import PRICE_SCHEMA
from quant_assets.lib.vocabulary import POLYGON_URL

PROVIDER = "polygon"
_OK_STATUSES = frozenset({"OK", "DELAYED"})
_BAR_FIELDS = ("o", "h", "l", "c", "v")
# Polygon sends at most 50,000 bars a page; a daily range needs one or two. Far more pages means a
# server looping on its cursor.
_MAX_PAGES = 1000


def fetch_polygon_prices(
    symbols: Sequence[str],
    start: date | str,
    end: date | str,
    api_key: Any,
    base_url: str = POLYGON_URL,
    client: httpx.Client | None = None,
    **retry: Unpack[Retry],
) -> pl.DataFrame:
    """Adjusted daily bars for ``symbols`` from ``start`` to ``end`` (inclusive) as a prices frame.

    Follows ``next_url`` pagination (re-attaching the key, which Polygon leaves out of it). A symbol
    with no bars in the range yields no rows, not an error. ``api_key`` may be a ``str`` or a pydantic
    ``SecretStr``; it never appears in errors or logs. Raises :class:`ProviderError` naming the symbol
    when the API fails or answers with the wrong shape. ``client`` is used as given and left open.
    """
    first, last = check_range(start, end)
    key = secret_value(api_key)
    base = base_url.rstrip("/")
    rows: list[tuple] = []
    try:
        with session(client, retry.pop("timeout", DEFAULT_TIMEOUT)) as http:
            for symbol in dict.fromkeys(symbols):
                url = f"{base}/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/day/{first}/{last}"
                params = {"adjusted": "true", "sort": "asc", "limit": 50000, "apiKey": key}
                # Polygon leaves the key out of its next_url: each next page is asked with it again.
                for body in follow_pages(http, url, params, next_field="next_url", next_params={"apiKey": key},
                                         max_pages=_MAX_PAGES, provider=PROVIDER, symbol=symbol, **retry):
                    rows.extend(_parse_page(body, symbol, url))
    except ProviderError as error:
        # An answer may echo the key (an error body, a bar of garbage): no message carries it on.
        raise ProviderError(scrub(str(error), [key])) from None
    return keyed_frame(rows, PRICE_SCHEMA, ["symbol", "date"], first, last)

def _parse_page(body: Any, symbol: str, url: str) -> list[tuple]:
    """Rows of one aggregates page, validated field by field."""
    if not isinstance(body, dict):
        raise shape_error(PROVIDER, symbol, url, f"expected a JSON object, got {type(body).__name__}")
    status = body.get("status")
    if status is not None and status not in _OK_STATUSES:
        detail = body.get("error") or body.get("message") or ""
        # The caller scrubs the key from this message (Polygon's error bodies may quote the request).
        raise ProviderError(
            f"{PROVIDER} answered status {status!r} for {symbol}"
            f"{f' ({str(detail)[:200]})' if isinstance(detail, str) and detail else ''}"
        )
    results = body.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise shape_error(PROVIDER, symbol, url, f"'results' is {type(results).__name__}, not a list")
    rows = []
    for i, bar in enumerate(results):
        if not isinstance(bar, dict):
            raise shape_error(PROVIDER, symbol, url, f"results[{i}] is {type(bar).__name__}, not an object")
        for field in (*_BAR_FIELDS, "t"):
            if not is_number(bar.get(field)):
                raise shape_error(
                    PROVIDER, symbol, url,
                    f"results[{i}].{field} is {bar.get(field)!r}, not a number",
                )
        try:
            day = datetime.fromtimestamp(bar["t"] / 1000, tz=UTC).date()
        except (OverflowError, OSError, ValueError):
            what = f"results[{i}].t = {bar['t']!r} is not a valid epoch-ms timestamp"
            raise shape_error(PROVIDER, symbol, url, what) from None
        rows.append((symbol, day, "equity", *(float(bar[f]) for f in ("o", "h", "l", "c", "v")), PROVIDER))
    return rows
