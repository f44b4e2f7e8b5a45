"""Provider dispatch: which source feeds ``market.prices`` and ``market.onchain`` for given settings."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl

from quant_assets.lib.providers.schema import ONCHAIN_SCHEMA, InputError


def fetch_prices(settings) -> tuple[pl.DataFrame, str]:
    """Raw (unvalidated) prices and a description of where they came from."""
    if settings.prices_file is not None:
        from quant_assets.lib.providers.files import read_price_file

        return read_price_file(settings.prices_file, settings.date_format), str(settings.prices_file)
    if settings.provider in ("sample", "file"):
        if settings.provider == "file":
            raise InputError("QUANT_PROVIDER=file needs QUANT_PRICES_FILE naming a CSV or Parquet file")
        from quant_assets.lib.providers.sample import load_sample

        prices, _ = load_sample(settings.universe, settings.history_start, settings.seed)
        return prices, "sample"
    return _fetch_network_prices(settings), settings.provider


def fetch_onchain(settings) -> tuple[pl.DataFrame, str]:
    """Raw on-chain metrics and their origin; an empty frame when the source has none."""
    if settings.onchain_file is not None:
        from quant_assets.lib.providers.files import read_onchain_file

        return read_onchain_file(settings.onchain_file, settings.date_format), str(settings.onchain_file)
    if settings.uses_files:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (file provider without QUANT_ONCHAIN_FILE)"
    if settings.provider == "sample":
        from quant_assets.lib.providers.sample import load_sample

        _, onchain = load_sample(settings.universe, settings.history_start, settings.seed)
        return onchain, "sample"
    from quant_assets.lib.providers.coinmetrics import fetch_coinmetrics
    from quant_assets.lib.providers.sample import CRYPTO_PROFILES

    coins = [s for s in settings.universe if s in CRYPTO_PROFILES]
    if not coins:
        return pl.DataFrame(schema=ONCHAIN_SCHEMA), "none (no crypto in the universe)"
    return fetch_coinmetrics(coins, None, settings.history_start, _today()), "coinmetrics"


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _fetch_network_prices(settings) -> pl.DataFrame:
    from quant_assets.lib.providers.coinbase import fetch_coinbase_candles
    from quant_assets.lib.providers.polygon import fetch_polygon_prices
    from quant_assets.lib.providers.sample import CRYPTO_PROFILES

    coins = [s for s in settings.universe if s in CRYPTO_PROFILES]
    stocks = [s for s in settings.universe if s not in CRYPTO_PROFILES]
    frames = []
    if stocks:
        if settings.polygon_api_key is None:
            raise InputError("provider polygon needs POLYGON_API_KEY in the environment")
        frames.append(fetch_polygon_prices(stocks, settings.history_start, _today(), settings.polygon_api_key.get_secret_value()))
    if coins:
        frames.append(fetch_coinbase_candles([f"{c}-USD" for c in coins], settings.history_start, _today()))
    return pl.concat(frames)
