"""The API's own settings, read from the environment once at start-up."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from quant_assets import paths
from quant_assets.lib.vocabulary import COINBASE_URL, POLYGON_URL


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiConfig:
    """Where the warehouse and the built web app are, who may ask, and how the live provider and the caches behave."""

    warehouse_path: Path
    # The person's own data; unset, ``personal.duckdb`` beside the warehouse.
    personal_path: Path | None = None
    web_root: Path | None = None
    token: str | None = None
    polygon_key: str | None = None
    live_enabled: bool = False
    polygon_url: str = POLYGON_URL
    coinbase_url: str = COINBASE_URL
    live_ttl_seconds: float = 15.0
    live_timeout_seconds: float = 2.0
    # How long a page waits for all its live quotes together before serving the ones still out from their last price.
    live_deadline_seconds: float = 1.5
    # The address the server listens on; beyond loopback every request needs the token.
    host: str = "127.0.0.1"
    # Names besides loopback and ``host`` by which browsers reach the server (QUANT_API_HOSTS, comma-separated).
    extra_hosts: tuple[str, ...] = ()
    # The answer cache's bounds: amounts and symbol lists are the caller's to choose, so its keys are unbounded.
    answers_kept: int = 256
    answers_max_age_seconds: float = 3600.0
    # How long a request waits for a pipeline writer before answering from its last read.
    read_wait_seconds: float = 0.4
    write_wait_seconds: float = 10.0

    @classmethod
    def from_env(cls, host: str = "127.0.0.1") -> ApiConfig:
        """QUANT_HOME, QUANT_API_TOKEN, QUANT_API_HOSTS, POLYGON_API_KEY; live prices follow the provider unless
        QUANT_LIVE says; ``host`` is the address the server listens on."""
        provider = os.environ.get("QUANT_PROVIDER", "sample")
        uses_files = provider == "file" or bool(os.environ.get("QUANT_PRICES_FILE"))
        live = os.environ.get("QUANT_LIVE", "auto").lower()
        enabled = live == "on" or (live == "auto" and provider in ("network", "polygon") and not uses_files)
        web = Path(os.environ.get("QUANT_WEB_ROOT", Path(__file__).resolve().parents[2] / "web" / "out"))
        return cls(
            warehouse_path=paths.warehouse_path(paths.home()),
            personal_path=paths.personal_path(paths.home()),
            web_root=web if web.is_dir() else None,
            token=os.environ.get("QUANT_API_TOKEN") or None,
            host=host,
            extra_hosts=tuple(h.strip() for h in os.environ.get("QUANT_API_HOSTS", "").split(",") if h.strip()),
            polygon_key=os.environ.get("POLYGON_API_KEY") or None,
            live_enabled=enabled,
            polygon_url=os.environ.get("QUANT_LIVE_POLYGON_URL", cls.polygon_url),
            coinbase_url=os.environ.get("QUANT_LIVE_COINBASE_URL", cls.coinbase_url),
        )
