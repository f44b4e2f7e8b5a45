"""The API's own settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from quant_assets.lib.vocabulary import COINBASE_URL, POLYGON_URL


@dataclass(frozen=True)
class ApiConfig:
    """Where the warehouse and the built web app are, the write token, and how the live provider behaves."""

    warehouse_path: Path
    web_root: Path | None = None
    token: str | None = None
    polygon_key: str | None = None
    live_enabled: bool = False
    polygon_url: str = POLYGON_URL
    coinbase_url: str = COINBASE_URL
    live_ttl_seconds: float = 15.0
    live_timeout_seconds: float = 2.0
    # How long a request waits for a pipeline writer before answering from its last read.
    read_wait_seconds: float = 0.4
    write_wait_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> ApiConfig:
        """QUANT_HOME, QUANT_API_TOKEN, POLYGON_API_KEY; live prices follow the provider unless QUANT_LIVE says."""
        home = Path(os.environ.get("QUANT_HOME", "~/.quant")).expanduser()
        provider = os.environ.get("QUANT_PROVIDER", "sample")
        uses_files = provider == "file" or bool(os.environ.get("QUANT_PRICES_FILE"))
        live = os.environ.get("QUANT_LIVE", "auto").lower()
        enabled = live == "on" or (live == "auto" and provider in ("network", "polygon") and not uses_files)
        web = Path(os.environ.get("QUANT_WEB_ROOT", Path(__file__).resolve().parents[2] / "web" / "out"))
        return cls(
            warehouse_path=home / "warehouse.duckdb",
            web_root=web if web.is_dir() else None,
            token=os.environ.get("QUANT_API_TOKEN") or None,
            polygon_key=os.environ.get("POLYGON_API_KEY") or None,
            live_enabled=enabled,
            polygon_url=os.environ.get("QUANT_LIVE_POLYGON_URL", cls.polygon_url),
            coinbase_url=os.environ.get("QUANT_LIVE_COINBASE_URL", cls.coinbase_url),
        )
