"""The HTTP plumbing the network providers share: one JSON GET with retries, one error type, and the
redaction that keeps API keys out of messages, logs and reprs.

Retries cover what a second attempt can fix: HTTP 429 and 5xx (waiting ``Retry-After`` seconds when
the server says so, otherwise exponential backoff) and transport failures such as timeouts. Anything
else — other 4xx, a body that is not JSON, JSON of the wrong shape — raises :class:`ProviderError`
at once with one sentence naming the provider and the symbol.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import polars as pl

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
# A server asking for more than this is treated as asking for this: a daily job should fail loudly
# after its retries rather than hang for an hour on one header.
MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 60.0

# Query parameters whose values are credentials, compared case-insensitively.
_SECRET_PARAMS = frozenset({"apikey", "api_key", "key", "token", "access_token", "secret"})
_SECRET_IN_TEXT = re.compile(r"((?:apikey|api_key|access_token|token|secret)=)[^&\s\"']+", re.IGNORECASE)
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class ProviderError(RuntimeError):
    """A market-data provider could not deliver usable data; the message names provider and symbol."""


def redact_url(url: str | httpx.URL) -> str:
    """``url`` without its credential query parameters (``apiKey`` and the like), for messages and logs."""
    parts = urlsplit(str(url))
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _SECRET_PARAMS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret value and every ``apiKey=...``-style pair masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_IN_TEXT.sub(r"\1***", text)


class _RedactingFilter(logging.Filter):
    """Masks credential query parameters in httpx's own request log lines (``HTTP Request: GET <url>``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(str(a)) if isinstance(a, (str, httpx.URL)) else a for a in record.args)
        record.msg = scrub(str(record.msg))
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
        logger.addFilter(_RedactingFilter())


_install_log_redaction()


def make_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """A fresh ``httpx.Client`` with the providers' defaults; the caller closes it."""
    return httpx.Client(timeout=httpx.Timeout(timeout), headers={"Accept": "application/json"})


def secret_value(api_key: Any) -> str:
    """The plain string of an API key given as ``str`` or as a pydantic ``SecretStr``."""
    value = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
    if not isinstance(value, str) or not value.strip():
        raise ValueError("API key is missing or empty; set it in the environment (e.g. POLYGON_API_KEY)")
    return value


def as_date(value: date | str, name: str) -> date:
    """``value`` as a ``datetime.date``, accepting a date or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date or an ISO 'YYYY-MM-DD' string, got {value!r}")


def check_range(start: date | str, end: date | str) -> tuple[date, date]:
    """``(start, end)`` as dates, raising ``ValueError`` when the range is reversed."""
    first, last = as_date(start, "start"), as_date(end, "end")
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    return first, last


def check_same_origin(next_url: str, base_url: str, *, provider: str, symbol: str) -> None:
    """Refuse a pagination link that leaves the provider's host, so credentials are never sent elsewhere."""
    want, got = urlsplit(base_url), urlsplit(next_url)
    if (got.scheme, got.netloc) != (want.scheme, want.netloc):
        raise ProviderError(
            f"{provider} returned a next-page link for {symbol} to another host "
            f"({redact_url(next_url)}, expected {want.scheme}://{want.netloc}); refusing to follow it"
        )


def is_number(value: object) -> bool:
    """True for a JSON number (int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in its seconds form, capped; ``None`` when absent or an HTTP date."""
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a usable instruction
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _api_message(response: httpx.Response) -> str:
    """The short error text an API put in its JSON body (``error``/``message``), or ``''``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value.strip()[:200]
    return ""


def get_json(
    client: httpx.Client,
    url: str,
    params: Mapping[str, Any] | None,
    *,
    provider: str,
    symbol: str,
    max_retries: int = 5,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """GET ``url`` with ``params`` added to its query string and return the decoded JSON body.

    Retries HTTP 429 and 5xx and transport failures up to ``max_retries`` times, waiting the server's
    ``Retry-After`` seconds (capped at ``MAX_RETRY_AFTER``) or else ``backoff * 2**attempt``. Raises
    :class:`ProviderError` naming ``provider`` and ``symbol`` when retries run out, on any other 3xx or 4xx,
    or when the body is not valid JSON. Credential parameters never appear in messages or logs.
    """
    # Merged by hand: httpx replaces (not extends) a URL's query string when ``params`` is given,
    # which would drop the cursor of a pagination link.
    target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
    secrets = [v for k, v in target.params.multi_items() if k.lower() in _SECRET_PARAMS and v]
    shown = redact_url(target)
    attempts = max_retries + 1
    problem = ""
    for attempt in range(attempts):
        retry_wait: float | None = None
        try:
            response = client.get(target)
        except _RETRYABLE_TRANSPORT as exc:
            problem = f"{type(exc).__name__}: {scrub(str(exc), secrets) or 'no detail'}"
        except httpx.HTTPError as exc:
            # Chaining would put the raw URL (with its key) into tracebacks, hence ``from None``.
            raise ProviderError(
                f"{provider} request for {symbol} to {shown} failed: "
                f"{type(exc).__name__}: {scrub(str(exc), secrets)}"
            ) from None
        else:
            status = response.status_code
            if status == 429 or status >= 500:
                retry_wait = _retry_after(response)
                problem = f"HTTP {status} {response.reason_phrase}".rstrip()
            elif status >= 300:
                detail = scrub(_api_message(response), secrets)
                raise ProviderError(
                    f"{provider} request for {symbol} to {shown} failed with HTTP {status} "
                    f"{response.reason_phrase}{f' ({detail})' if detail else ''}; not retried"
                )
            else:
                try:
                    return json.loads(response.content)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ProviderError(
                        f"{provider} returned a body for {symbol} from {shown} that is not valid JSON "
                        f"({len(response.content)} bytes, {type(exc).__name__} at position "
                        f"{getattr(exc, 'pos', '?')}); the response may be truncated"
                    ) from None
        if attempt == attempts - 1:
            break
        wait = retry_wait if retry_wait is not None else min(backoff * 2**attempt, MAX_BACKOFF)
        log.warning(
            "%s request for %s to %s: %s; retry %d/%d in %.1f s",
            provider, symbol, shown, problem, attempt + 1, max_retries, wait,
        )
        sleep(wait)
    raise ProviderError(
        f"{provider} request for {symbol} to {shown} still failing after {attempts} attempts "
        f"(last: {problem})"
    )


class Retry(TypedDict, total=False):
    """How a provider's requests are timed out and retried: the keyword arguments its fetch function passes on."""

    timeout: float
    max_retries: int
    backoff: float
    sleep: Callable[[float], None]


@contextmanager
def session(client: httpx.Client | None, timeout: float = DEFAULT_TIMEOUT) -> Iterator[httpx.Client]:
    """``client`` as given (and left open), or a new client that is closed on exit."""
    if client is not None:
        yield client
        return
    own = make_client(timeout)
    try:
        yield own
    finally:
        own.close()


def follow_pages(
    http: httpx.Client,
    url: str,
    params: Mapping[str, Any] | None,
    *,
    next_field: str,
    next_params: Mapping[str, Any] | None,
    max_pages: int,
    provider: str,
    symbol: str,
    **retry: Any,
) -> Iterator[Any]:
    """Each page of a paginated answer: the first from ``url`` with ``params``, the next ones from the link each
    page names in ``next_field`` (asked with ``next_params``), which must stay on ``url``'s origin. A link that
    repeats or more than ``max_pages`` pages is a server looping on its cursor: a :class:`ProviderError`."""
    base, seen = url, set()
    while True:
        body = get_json(http, url, params, provider=provider, symbol=symbol, **retry)
        yield body
        next_url = body.get(next_field) if isinstance(body, dict) else None
        if next_url is None or next_url == "":
            return
        if not isinstance(next_url, str):
            raise shape_error(provider, symbol, url, f"{next_field!r} is {type(next_url).__name__}, not a string")
        check_same_origin(next_url, base, provider=provider, symbol=symbol)
        if next_url in seen or len(seen) >= max_pages:
            raise ProviderError(f"{provider} pagination for {symbol} does not end (a {next_field} repeats or more "
                                f"than {max_pages} pages); stopping")
        seen.add(next_url)
        url, params = next_url, next_params


def keyed_frame(rows: list[tuple], schema: Mapping[str, Any], keys: list[str], first: date, last: date) -> pl.DataFrame:
    """The rows as a frame of ``schema``: only the days ``first..last`` (APIs answer a little around a range), the
    first row of each key, sorted by the key."""
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return (
        frame.filter(pl.col("date").is_between(first, last))
        .unique(subset=keys, keep="first", maintain_order=True)
        .sort(keys)
    )


def shape_error(provider: str, symbol: str, url: str, what: str) -> ProviderError:
    """The :class:`ProviderError` for a JSON body whose shape or types are not the documented ones."""
    return ProviderError(f"{provider} returned unexpected data for {symbol} from {redact_url(url)}: {what}")
