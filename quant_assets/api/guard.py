"""Only its owner's browser: requests addressed to this server by one of its own names (a DNS-rebinding page's are
not), changes only from the server's own pages or from clients that send no ``Origin`` (curl, scripts), the token
for changes when it is set and for every request beyond loopback, and error details that name no path of the machine.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from quant_assets.api.config import ApiConfig, is_loopback

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a browser says of a request its own page did not start elsewhere: same origin, or typed by the person.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
# An absolute path with at least one folder, not part of a URL or of a word (``N/A``, ``https://host/v2``).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~$-])/(?:[\w.@+~-]+/)+([\w.@+~-]+)")


def host_name(header: str) -> str:
    """The name in a ``Host`` header, lower-cased, without its port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def scrub_paths(text: str, home: Path) -> str:
    """``text`` with the home folder shown as ``$QUANT_HOME`` and any other absolute path as its last part."""
    for folder in {str(home.resolve()), str(home)}:
        text = text.replace(folder, "$QUANT_HOME")
    return _ABSOLUTE_PATH.sub(r"\1", text)


class Guard:
    """The rules every request passes before any route sees it."""

    def __init__(self, config: ApiConfig) -> None:
        self.names = LOOPBACK_NAMES | {host_name(h) for h in (config.host, *config.extra_hosts)}
        self.token = config.token
        self.reads_need_token = not is_loopback(config.host)
        if self.reads_need_token and not self.token:
            raise ValueError(f"serving on {config.host} needs QUANT_API_TOKEN")

    def refusal(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
        """``(status, detail)`` when the request is refused, else None."""
        host = headers.get("host", "")
        if host_name(host) not in self.names:
            return 400, (f"this server answers only requests addressed to localhost, 127.0.0.1, [::1] or the host it "
                         f"was started on, not {host!r}; list other names in QUANT_API_HOSTS")
        changes = method not in SAFE_METHODS
        if changes:
            crossed = _cross_origin(headers, host)
            if crossed:
                return 403, (f"refused a change from another site ({crossed}): changes come only from this server's "
                             "own pages or from clients that send no Origin")
        if self.token and path.startswith("/api/") and (changes or self.reads_need_token):
            given = headers.get("x-api-token") or headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                needs = "every request" if self.reads_need_token else "changes"
                return 401, f"this server requires QUANT_API_TOKEN for {needs}: send it as the X-API-Token header"
        return None


def _cross_origin(headers: Mapping[str, str], host: str) -> str | None:
    """What shows that another site's page sent the request; None for this server's pages and non-browsers."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in _OWN_FETCH_SITES:
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
        return f"Origin: {origin}"
    return None
