"""Provider dispatch: which source feeds ``market.prices`` and ``market.onchain`` for a given configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA, InputError


@dataclass(frozen=True)
class ProviderConfig:
    """The values the providers read, built by the caller (``defs/market``) from its settings.

    ``provider`` is ``sample``, ``file``, ``polygon`` or ``network``; a ``prices_file`` (or ``onchain_file``) wins
    over it. ``polygon_api_key`` is a ``str`` or a pydantic ``SecretStr``; it is left out of the repr.
    ``synthetic_equities`` is how many seeded synthetic names the sample adds (``QUANT_SAMPLE_SYMBOLS``).
    """

    provider: str
    universe: tuple[str, ...]
    history_start: date
    seed: int
    prices_file: Path | None = None
    onchain_file: Path | None = None
    date_format: str | None = None
    polygon_api_key: Any = field(default=None, repr=False)
    synthetic_equities: int = 0

    @property
    def uses_files(self) -> bool:
        return self.provider == "file" or self.prices_file is not None

    @property
    def uses_network(self) -> bool:
        """True when prices come from the network providers, whose stored history they may later restate."""
        return not self.uses_files and self.provider != "sample"


def fetch_prices(config: ProviderConfig, start: date | None = None, end: date | None = None,
                 symbols: Sequence[str] | None = None) -> tuple[pl.DataFrame, str]:
    """Raw (unvalidated) prices dated ``start`` to ``end`` inclusive (None: unbounded) and where they came from.

    ``symbols`` narrows a network fetch to part of the universe (None: all of it). A file is returned whole, so
    that its bad rows are reported whatever the range; the caller keeps the range.
    """
    start, end = start or config.history_start, end or _today()
    if config.prices_file is not None:
        from quant_assets.lib.market.providers.files import read_price_file

        return read_price_file(config.prices_file, config.date_format), str(config.prices_file)
    if config.provider in ("sample", "file"):
        if config.provider == "file":
            raise InputError("QUANT_PROVIDER=file needs QUANT_PRICES_FILE naming a CSV or Parquet file")
        from quant_assets.lib.market.providers.sample import load_sample

        prices, _ = load_sample(config.universe, config.history_start, config.seed, config.synthetic_equities)
        return _dated_within(prices, start, end), "sample"
    wanted = config.universe if symbols is None else tuple(s for s in config.universe if s in symbols)
    return _fetch_network_prices(wanted, config.polygon_api_key, start, end), config.provider


def fetch_onchain(config: ProviderConfig, start: date | None = None, end: date | None = None) -> tuple[pl.DataFrame, str]:
    """Raw on-chain metrics dated ``start`` to ``end`` inclusive and their origin; an empty frame when the
    source has none. A file is returned whole, like the prices file."""
    start, end = start or config.history_start, end or _today()
    if config.onchain_file is not None:
        from quant_assets.lib.market.providers.files import read_onchain_file

        return read_onchain_file(config.onchain_file, config.date_format), str(config.onchain_file)
    if config.uses_files:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (file provider without QUANT_ONCHAIN_FILE)"
    if config.provider == "sample":
        from quant_assets.lib.market.providers.sample import load_sample

        _, onchain = load_sample(config.universe, config.history_start, config.seed)
        return _dated_within(onchain, start, end), "sample"
    from quant_assets.lib.market.providers.coinmetrics import fetch_coinmetrics
    from quant_assets.lib.market.providers.sample import CRYPTO_PROFILES

    coins = [s for s in config.universe if s in CRYPTO_PROFILES]
    if not coins:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (no crypto in the universe)"
    return fetch_coinmetrics(coins, None, start, end), "coinmetrics"


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _dated_within(frame: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    return frame.filter(pl.col("date").is_between(start, end))


def _fetch_network_prices(universe: Sequence[str], polygon_api_key: Any, start: date, end: date) -> pl.DataFrame:
    from quant_assets.lib.market.providers.coinbase import fetch_coinbase_candles
    from quant_assets.lib.market.providers.polygon import fetch_polygon_prices
    from quant_assets.lib.market.providers.sample import CRYPTO_PROFILES

    coins = [s for s in universe if s in CRYPTO_PROFILES]
    stocks = [s for s in universe if s not in CRYPTO_PROFILES]
    frames = []
    if stocks:
        if polygon_api_key is None:
            raise InputError("provider polygon needs POLYGON_API_KEY in the environment")
        # Passed on as given (str or SecretStr): the Polygon client unwraps it and keeps it out of messages.
        frames.append(fetch_polygon_prices(stocks, start, end, polygon_api_key))
    if coins:
        frames.append(fetch_coinbase_candles([f"{c}-USD" for c in coins], start, end))
    return pl.concat(frames) if frames else pl.DataFrame(schema=PRICE_SCHEMA)
