"""Daily on-chain metrics from the Coin Metrics community API v4, in long point-in-time format."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Unpack

import httpx
import polars as pl

from quant_assets.lib.market.providers.http import DEFAULT_TIMEOUT, ProviderError, Retry, check_range, follow_pages
from quant_assets.lib.market.providers.http import is_number, keyed_frame, session, shape_error
from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA
from quant_assets.lib.vocabulary import COINMETRICS_URL

PROVIDER = "coinmetrics"
DEFAULT_METRICS: tuple[str, ...] = ("AdrActCnt", "TxCnt", "HashRate", "CapMVRVCur")
# Coin Metrics sends nanosecond ISO times such as 2020-01-01T00:00:00.000000000Z.
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")
_MAX_PAGES = 10_000


def _parse_time(text: str) -> datetime:
    match = _TIME.match(text)
    if match is None:
        raise ValueError(text)
    day, hour, minute, second, fraction = match.groups()
    micros = int((fraction or "0").ljust(9, "0")[:6])
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).replace(
        hour=int(hour), minute=int(minute), second=int(second), microsecond=micros
    )


def fetch_coinmetrics(
    assets: Sequence[str],
    metrics: Sequence[str] | None = DEFAULT_METRICS,
    start: date | str | None = None,
    end: date | str | None = None,
    base_url: str = COINMETRICS_URL,
    client: httpx.Client | None = None,
    **retry: Unpack[Retry],
) -> pl.DataFrame:
    """Daily ``metrics`` (``None``: ``DEFAULT_METRICS``) for ``assets`` (e.g. ``'btc'``) from ``start``
    to ``end`` inclusive, as an on-chain frame.

    One row per asset, metric and day: ``asset`` upper-case, ``value`` the metric as a float, and
    ``known_at`` the end of that UTC day (the interval's time plus one day), since a daily value is
    public only once its day has closed. Missing or null metrics give no row. Follows
    ``next_page_url`` pagination. Raises :class:`ProviderError` on API failure, wrong shapes, or a
    value that is not numeric (naming asset, metric and time). ``client`` is used as given and left open.
    """
    if start is None or end is None:
        raise ValueError("fetch_coinmetrics needs both start and end dates")
    first, last = check_range(start, end)
    wanted_assets = [a.lower() for a in dict.fromkeys(assets)]
    wanted_metrics = list(dict.fromkeys(DEFAULT_METRICS if metrics is None else metrics))
    if not wanted_assets or not wanted_metrics:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA)
    label = ",".join(a.upper() for a in wanted_assets)
    base = base_url.rstrip("/")
    url = f"{base}/timeseries/asset-metrics"
    params: dict[str, Any] | None = {
        "assets": ",".join(wanted_assets),
        "metrics": ",".join(wanted_metrics),
        "start_time": first.isoformat(),
        "end_time": last.isoformat(),
        "frequency": "1d",
        "page_size": 10000,
    }
    rows: list[tuple] = []
    with session(client, retry.pop("timeout", DEFAULT_TIMEOUT)) as http:
        # A next_page_url already carries every query parameter, including the page token.
        for body in follow_pages(http, url, params, next_field="next_page_url", next_params=None,
                                 max_pages=_MAX_PAGES, provider=PROVIDER, symbol=label, **retry):
            rows.extend(_parse_page(body, wanted_metrics, label, url))
    return keyed_frame(rows, ONCHAIN_SCHEMA, ["asset", "metric", "date"], first, last)

def _parse_page(body: Any, metrics: list[str], label: str, url: str) -> list[tuple]:
    """Long rows of one asset-metrics page, each value checked to be a finite number."""
    if not isinstance(body, dict):
        raise shape_error(PROVIDER, label, url, f"expected a JSON object, got {type(body).__name__}")
    data = body.get("data")
    if data is None:
        if "error" in body:
            raise shape_error(PROVIDER, label, url, f"error object instead of data: {str(body['error'])[:200]}")
        return []
    if not isinstance(data, list):
        raise shape_error(PROVIDER, label, url, f"'data' is {type(data).__name__}, not a list")
    rows = []
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise shape_error(PROVIDER, label, url, f"data[{i}] is {type(record).__name__}, not an object")
        asset, stamp = record.get("asset"), record.get("time")
        if not isinstance(asset, str) or not asset:
            raise shape_error(PROVIDER, label, url, f"data[{i}].asset is {asset!r}, not a string")
        try:
            at = _parse_time(stamp) if isinstance(stamp, str) else None
        except ValueError:
            at = None
        if at is None:
            raise shape_error(PROVIDER, label, url, f"data[{i}].time is {stamp!r}, not an ISO UTC timestamp")
        for metric in metrics:
            raw = record.get(metric)
            if raw is None:
                continue
            value = _number(raw)
            if value is None:
                raise ProviderError(
                    f"{PROVIDER} returned a non-numeric value {raw!r:.60} for asset {asset.upper()}, "
                    f"metric {metric}, time {stamp}"
                )
            rows.append((asset.upper(), metric, at.date(), value, at + timedelta(days=1), PROVIDER))
    return rows


def _number(raw: object) -> float | None:
    """A finite float from a JSON string or number, else ``None``."""
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            return None
    elif is_number(raw):
        value = float(raw)
    else:
        return None
    return value if math.isfinite(value) else None
