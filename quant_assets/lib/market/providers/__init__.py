"""Provider dispatch: which source feeds ``market.prices`` and ``market.onchain`` for given settings."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl

from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, InputError


def fetch_prices(settings, start: date | None = None, end: date | None = None) -> tuple[pl.DataFrame, str]:
    """Raw (unvalidated) prices dated ``start`` to ``end`` inclusive (None: unbounded) and where they came from.

    A file is returned whole, so that its bad rows are reported whatever the range; the caller keeps the range.
    """
    start, end = start or settings.history_start, end or _today()
    if settings.prices_file is not None:
        from quant_assets.lib.market.providers.files import read_price_file

        return read_price_file(settings.prices_file, settings.date_format), str(settings.prices_file)
    if settings.provider in ("sample", "file"):
        if settings.provider == "file":
            raise InputError("QUANT_PROVIDER=file needs QUANT_PRICES_FILE naming a CSV or Parquet file")
        from quant_assets.lib.market.providers.sample import load_sample

        prices, _ = load_sample(settings.universe, settings.history_start, settings.seed)
        return _dated_within(prices, start, end), "sample"
    return _fetch_network_prices(settings, start, end), settings.provider


def fetch_onchain(settings, start: date | None = None, end: date | None = None) -> tuple[pl.DataFrame, str]:
    """Raw on-chain metrics dated ``start`` to ``end`` inclusive and their origin; an empty frame when the
    source has none. A file is returned whole, like the prices file."""
    start, end = start or settings.history_start, end or _today()
    if settings.onchain_file is not None:
        from quant_assets.lib.market.providers.files import read_onchain_file

        return read_onchain_file(settings.onchain_file, settings.date_format), str(settings.onchain_file)
    if settings.uses_files:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (file provider without QUANT_ONCHAIN_FILE)"
    if settings.provider == "sample":
        from quant_assets.lib.market.providers.sample import load_sample

        _, onchain = load_sample(settings.universe, settings.history_start, settings.seed)
        return _dated_within(onchain, start, end), "sample"
    from quant_assets.lib.market.providers.coinmetrics import fetch_coinmetrics
    from quant_assets.lib.market.providers.sample import CRYPTO_PROFILES

    coins = [s for s in settings.universe if s in CRYPTO_PROFILES]
    if not coins:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (no crypto in the universe)"
    return fetch_coinmetrics(coins, None, start, end), "coinmetrics"


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _dated_within(frame: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    return frame.filter(pl.col("date").is_between(start, end))


def _fetch_network_prices(settings, start: date, end: date) -> pl.DataFrame:
    from quant_assets.lib.market.providers.coinbase import fetch_coinbase_candles
    from quant_assets.lib.market.providers.polygon import fetch_polygon_prices
    from quant_assets.lib.market.providers.sample import CRYPTO_PROFILES

    coins = [s for s in settings.universe if s in CRYPTO_PROFILES]
    stocks = [s for s in settings.universe if s not in CRYPTO_PROFILES]
    frames = []
    if stocks:
        if settings.polygon_api_key is None:
            raise InputError("provider polygon needs POLYGON_API_KEY in the environment")
        frames.append(fetch_polygon_prices(stocks, start, end, settings.polygon_api_key.get_secret_value()))
    if coins:
        frames.append(fetch_coinbase_candles([f"{c}-USD" for c in coins], start, end))
    return pl.concat(frames)
