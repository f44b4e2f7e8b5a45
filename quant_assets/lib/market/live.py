"""The one live-price provider: every page asks it, nothing else fetches a price.

Equities come from Polygon's single-ticker snapshot (``POLYGON_API_KEY``), crypto from the Coinbase Exchange
ticker. A quote's source and age are those of the price's own timestamp: a previous session's close is
``last_close``, never live. Quotes are cached for a time-to-live; the symbols a page asks for are fetched together,
one request per symbol in flight (concurrent callers share its answer), under one deadline for the whole page: a
symbol still out at the deadline is served from its last quote, with that quote's age, while its request finishes
in the background for the next page. Each source is rate limited and backs off for as long as a 429's
``Retry-After`` asks. When a source is off (no key, the sample, a prices file), unreachable, slow, answers garbage
or a price no newer than the warehouse's, the quote falls back to the warehouse's last close and says so:
``source='last_close'``, ``stale=True`` and a ``note`` naming the reason. The key never appears in a quote, a note,
a log line or an error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone

import httpx

from quant_assets.lib.market.providers.http import ProviderError, get_json, is_number, make_client, scrub
from quant_assets.lib.vocabulary import COINBASE_URL, POLYGON_URL

log = logging.getLogger(__name__)

# A quote older than this is "delayed" (Polygon's lower plans are 15 minutes behind).
DELAYED_AFTER_SECONDS = 60.0
# A quote older than this is "stale": the market is closed or the source stopped updating.
STALE_AFTER_SECONDS = 3 * 86_400.0
# A price stamped further ahead than clock skew explains carries a garbage timestamp.
FUTURE_TOLERANCE = timedelta(minutes=5)
FETCH_THREADS = 16


@dataclass(frozen=True)
class Quote:
    """A price with where it came from and how old it is."""

    symbol: str
    price: float
    source: str  # 'polygon', 'coinbase' or 'last_close'
    timestamp: datetime  # when the price was set (UTC); a last close is stamped at the end of its day
    delayed: bool
    stale: bool
    note: str = ""

    def age_seconds(self, now: datetime | None = None) -> float:
        return max(0.0, ((now or datetime.now(timezone.utc)) - self.timestamp).total_seconds())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "timestamp": self.timestamp.isoformat(), "age_seconds": round(self.age_seconds(), 1)}


@dataclass(frozen=True)
class LastClose:
    """The warehouse's latest close for a symbol: the fallback and the reference a live price is shown against."""

    symbol: str
    asset_class: str
    close: float
    date: date
    source: str

    def stamp(self) -> datetime:
        """The end of the close's day (UTC): a live price is newer than the close only when stamped after it."""
        return datetime.combine(self.date, datetime.max.time(), tzinfo=timezone.utc).replace(microsecond=0)


class _RateLimit:
    """At most ``per_second`` requests per second to one source, and none while a Retry-After cool-down runs."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_free = 0.0
        self.cooldown_until = 0.0
        self.lock = threading.Lock()

    def acquire(self, max_wait: float) -> str | None:
        """Reserve a slot, waiting up to ``max_wait``; the reason when none is free in time."""
        with self.lock:
            now = time.monotonic()
            if now < self.cooldown_until:
                return f"the source asked to wait {self.cooldown_until - now:.0f}s more (HTTP 429)"
            wait = max(0.0, self.next_free - now)
            if wait > max_wait:
                return "the per-source rate limit is reached"
            self.next_free = max(now, self.next_free) + self.interval
        if wait:
            time.sleep(wait)
        return None

    def cool_down(self, seconds: float) -> None:
        with self.lock:
            self.cooldown_until = max(self.cooldown_until, time.monotonic() + seconds)


class _WaitTooLong(Exception):
    """A retry would wait longer than a page can: stop and fall back (the cool-down keeps the wait)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class LivePrices:
    """The TTL cache and the fetchers of live quotes, shared by every endpoint of one API process.

    ``last_closes`` returns the warehouse's last close per symbol (the fallback); it is called on every
    cache miss, so it should itself be cheap (the API caches it by the warehouse file's modification time).
    """

    def __init__(
        self,
        last_closes: Callable[[Iterable[str]], dict[str, LastClose]],
        *,
        polygon_key: str | None = None,
        enabled: bool = True,
        polygon_url: str = POLYGON_URL,
        coinbase_url: str = COINBASE_URL,
        ttl_seconds: float = 15.0,
        fallback_ttl_seconds: float = 60.0,
        timeout_seconds: float = 2.0,
        deadline_seconds: float = 1.5,
        retries: int = 1,
        max_retry_wait: float = 0.5,
        requests_per_second: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._last_closes = last_closes
        self._polygon_key = polygon_key or None
        self.enabled = enabled
        self._urls = {"polygon": polygon_url.rstrip("/"), "coinbase": coinbase_url.rstrip("/")}
        self.ttl_seconds = ttl_seconds
        self.fallback_ttl_seconds = fallback_ttl_seconds
        self.deadline_seconds = deadline_seconds
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._clock = clock
        self._client = make_client(timeout_seconds)
        self._limits = {name: _RateLimit(requests_per_second) for name in self._urls}
        # The latest quote per known symbol and until when it is fresh; kept past that as the last price to serve
        # when the next fetch misses the deadline.
        self._cache: dict[str, tuple[float, Quote]] = {}
        self._inflight: dict[str, Future[Quote]] = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="live-prices")
        self.last_error: dict[str, str] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def state(self) -> dict[str, object]:
        """What the health page shows: which sources are on, the cache, and each source's last problem."""
        now = time.monotonic()
        return {
            "enabled": self.enabled,
            "sources": {
                "polygon": "on" if self.enabled and self._polygon_key else
                           ("off: no POLYGON_API_KEY" if self.enabled else "off: the sample or a prices file feeds the warehouse"),
                "coinbase": "on" if self.enabled else "off: the sample or a prices file feeds the warehouse",
            },
            "ttl_seconds": self.ttl_seconds,
            "cached_symbols": len(self._cache),
            "cooling_down": {name: round(limit.cooldown_until - now, 1) for name, limit in self._limits.items()
                             if limit.cooldown_until > now},
            "last_error": dict(self.last_error),
        }

    def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """A quote per known symbol (unknown symbols are left out): from the cache when fresh, else fetched for all
        of them at once within ``deadline_seconds``; a symbol still out then is served from its last quote."""
        wanted = list(dict.fromkeys(symbols))
        found = {s: q for s in wanted if (q := self._cached(s)) is not None}
        missing = [s for s in wanted if s not in found]
        if missing:
            closes = self._last_closes(missing)
            deadline = time.monotonic() + self.deadline_seconds
            pending = {s: self._fetching(s, closes[s], deadline) for s in missing if s in closes}
            wait(pending.values(), timeout=self.deadline_seconds)
            for symbol, future in pending.items():
                found[symbol] = future.result() if future.done() else self._late(closes[symbol])
        return {s: found[s] for s in wanted if s in found}

    def _cached(self, symbol: str) -> Quote | None:
        entry = self._cache.get(symbol)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return None

    def _fetching(self, symbol: str, last: LastClose, deadline: float) -> Future[Quote]:
        """The symbol's request in flight, started when there is none: concurrent pages share one."""
        with self._guard:
            future = self._inflight.get(symbol)
            if future is None:
                future = self._inflight[symbol] = self._pool.submit(self._refresh, symbol, last, deadline)
            return future

    def _refresh(self, symbol: str, last: LastClose, deadline: float) -> Quote:
        try:
            cached = self._cached(symbol)  # a request that finished since the caller looked
            if cached is not None:
                return cached
            quote = self._fetch(symbol, last, deadline)
            ttl = self.ttl_seconds if quote.source != "last_close" else self.fallback_ttl_seconds
            self._cache[symbol] = (time.monotonic() + ttl, quote)
            return quote
        finally:
            with self._guard:
                self._inflight.pop(symbol, None)

    def _late(self, last: LastClose) -> Quote:
        """The last quote of a symbol whose request missed the page's deadline, with its own age."""
        note = f"{_source(last)} gave no answer within {self.deadline_seconds:g}s"
        entry = self._cache.get(last.symbol)
        if entry is None or entry[1].source == "last_close":
            return self._fallback(last, note)
        quote = entry[1]
        note = f"{note}: its last price, of {quote.timestamp:%Y-%m-%d %H:%M:%S} UTC"
        return replace(quote, **self._flags(quote.timestamp), note=note)

    def _flags(self, stamp: datetime) -> dict[str, bool]:
        age = (self._clock() - stamp).total_seconds()
        return {"delayed": age > DELAYED_AFTER_SECONDS, "stale": age > STALE_AFTER_SECONDS}

    def _fallback(self, last: LastClose, note: str) -> Quote:
        synthetic = " (synthetic sample series)" if last.source == "synthetic" else ""
        return Quote(last.symbol, float(last.close), "last_close", last.stamp(), delayed=True, stale=True,
                     note=f"last close of {last.date}{synthetic}: {note}")

    def _fetch(self, symbol: str, last: LastClose, deadline: float) -> Quote:
        if not self.enabled:
            return self._fallback(last, "live prices are off while the sample or a prices file feeds the warehouse")
        source = _source(last)
        if source == "polygon" and not self._polygon_key:
            return self._fallback(last, "no POLYGON_API_KEY is set")
        # A request that waits for its rate-limit slot past the page's deadline would be served late anyway.
        refused = self._limits[source].acquire(max_wait=max(0.0, deadline - time.monotonic()))
        if refused:
            return self._fallback(last, f"{source} skipped: {refused}")
        try:
            priced = self._polygon(symbol) if source == "polygon" else self._coinbase(symbol)
        except _WaitTooLong as wait_asked:
            self._limits[source].cool_down(wait_asked.seconds)
            return self._failed(source, last, f"{source} is rate limiting (asked to wait {wait_asked.seconds:.0f}s)")
        except (ProviderError, httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
            return self._failed(source, last, f"{source} failed: {type(error).__name__}: {error}")
        if priced is None:
            self.last_error.pop(source, None)
            return self._fallback(last, f"{source} has no trade since the previous session's close")
        price, stamp = priced
        if stamp > self._clock() + FUTURE_TOLERANCE:
            return self._failed(source, last, f"{source} failed: its price is stamped {stamp:%Y-%m-%d %H:%M} UTC, ahead of now")
        self.last_error.pop(source, None)
        if stamp <= last.stamp():
            return self._fallback(last, f"{source}'s latest price, of {stamp:%Y-%m-%d %H:%M} UTC, is no newer")
        return Quote(symbol, price, source, stamp, **self._flags(stamp))

    def _failed(self, source: str, last: LastClose, problem: str) -> Quote:
        problem = scrub(problem, [self._polygon_key or ""])[:300]
        self.last_error[source] = problem
        log.warning("live price for %s falls back to the last close: %s", last.symbol, problem)
        return self._fallback(last, problem)

    def _get(self, source: str, url: str, params: dict[str, str] | None, symbol: str):
        def sleep(seconds: float) -> None:
            if seconds > self._max_retry_wait:
                raise _WaitTooLong(seconds)
            time.sleep(seconds)

        return get_json(self._client, url, params, provider=source, symbol=symbol, max_retries=self._retries,
                        backoff=0.1, sleep=sleep)

    def _polygon(self, symbol: str) -> tuple[float, datetime] | None:
        """The snapshot's newest price with its own time; None when it holds only the previous session's close."""
        body = self._get("polygon", f"{self._urls['polygon']}/v2/snapshot/locale/us/markets/stocks/tickers/{symbol}",
                         {"apiKey": self._polygon_key}, symbol)
        ticker = body.get("ticker") if isinstance(body, dict) else None
        if not isinstance(ticker, dict):
            raise ValueError("the snapshot has no ticker object")
        trade, minute, day, previous = (ticker.get(k) if isinstance(ticker.get(k), dict) else {}
                                        for k in ("lastTrade", "min", "day", "prevDay"))
        # The last trade and the minute bar carry their own times (ns, ms); the day bar is as of the ticker's update.
        priced = [(float(price), datetime.fromtimestamp(stamp_ns / 1e9, tz=timezone.utc))
                  for price, stamp_ns in ((trade.get("p"), trade.get("t")), (minute.get("c"), _ms_to_ns(minute.get("t"))),
                                          (day.get("c"), ticker.get("updated")))
                  if _positive(price) and _positive(stamp_ns)]
        if priced:
            return max(priced, key=lambda p: p[1])
        if _positive(previous.get("c")):
            return None
        raise ValueError("the snapshot carries no positive price with its time")

    def _coinbase(self, symbol: str) -> tuple[float, datetime]:
        body = self._get("coinbase", f"{self._urls['coinbase']}/products/{symbol}-USD/ticker", None, symbol)
        if not isinstance(body, dict):
            raise ValueError("the ticker is not a JSON object")
        price = float(body["price"])
        if not price > 0 or price == float("inf"):
            raise ValueError(f"the ticker's price {body['price']!r} is not a positive number")
        stamp = datetime.fromisoformat(str(body["time"]))
        # Coinbase's times are UTC; one without an offset is read as UTC, not as this machine's local time.
        return price, stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _source(last: LastClose) -> str:
    return "coinbase" if last.asset_class == "crypto" else "polygon"


def _positive(value: object) -> bool:
    return is_number(value) and 0 < value < float("inf")


def _ms_to_ns(value: object) -> object:
    return value * 1_000_000 if is_number(value) else None

