"""The offline sample: real equity closes that skfolio ships, plus simulated crypto and on-chain history.

The 20 US stocks and the S&P 500 index (1990-2022) are real daily closes read from skfolio's bundled
files (no download). No registry package ships a long crypto or on-chain history, so BTC and ETH prices
and their on-chain metrics come from a seeded simulator and carry ``source='synthetic'``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.lib.market.providers.schema import ONCHAIN_SCHEMA, PRICE_SCHEMA
from quant_assets.lib.market.providers.synthetic_equities import synthetic_equities
from quant_assets.lib.vocabulary import INDEX_SYMBOL, SAMPLE_LAST_DATE

# (first day, daily drift, long-run daily vol) of each simulated coin.
CRYPTO_PROFILES = {
    "BTC": (date(2014, 1, 1), 0.0011, 0.038),
    "ETH": (date(2016, 1, 1), 0.0016, 0.052),
}
# The level each simulated path is rescaled to end at: about where BTC and ETH closed in late 2022, so a page
# showing the sample reads as plausible. Only the level moves; the simulated returns (and so every feature,
# forecast and weight built on them) are unchanged. The series stay synthetic and say so (source='synthetic').
CRYPTO_END_LEVELS = {"BTC": 16_700.0, "ETH": 1_210.0}
ONCHAIN_METRICS = ("AdrActCnt", "TxCnt", "HashRate", "CapMVRVCur")


def sample_equities(symbols: tuple[str, ...] | None = None, start: date | None = None) -> pl.DataFrame:
    """Real daily closes of skfolio's 20 S&P 500 stocks and the index (as ``SP500``), optionally filtered."""
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    wide = load_sp500_dataset().join(load_sp500_index(), how="outer")
    if symbols is not None:
        wide = wide[[s for s in wide.columns if s in symbols]]
    long = wide.rename_axis("date").reset_index().melt(id_vars="date", var_name="symbol", value_name="close")
    long = long.dropna(subset=["close"])
    frame = pl.from_pandas(long).with_columns(
        pl.col("date").cast(pl.Date),
        pl.lit("equity").alias("asset_class"),
        pl.lit("skfolio").alias("source"),
        *(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("open", "high", "low", "volume")),
    )
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    return frame.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()]).sort(["symbol", "date"])


def _simulate_coin(symbol: str, end: date, rng: np.random.Generator) -> pd.DataFrame:
    """GARCH(1,1) returns with Student-t shocks: fat tails and volatility clustering."""
    first, drift, vol = CRYPTO_PROFILES[symbol]
    days = pd.date_range(first, end, freq="D")
    n = len(days)
    omega, alpha, beta = vol**2 * 0.04, 0.10, 0.86
    shocks = rng.standard_t(df=4, size=n) / np.sqrt(2.0)  # unit variance for dof 4
    variance = np.empty(n)
    returns = np.empty(n)
    variance[0] = vol**2
    for t in range(n):
        if t:
            variance[t] = omega + alpha * returns[t - 1] ** 2 + beta * variance[t - 1]
        returns[t] = drift - 0.5 * variance[t] + np.sqrt(variance[t]) * shocks[t]
    growth = np.exp(np.cumsum(returns))
    close = CRYPTO_END_LEVELS[symbol] * growth / growth[-1]
    intraday = np.sqrt(variance) * np.abs(rng.standard_normal(n)) * 0.6
    open_ = close * np.exp(-returns * rng.uniform(0.2, 0.8, n))
    high = np.maximum(open_, close) * np.exp(intraday)
    low = np.minimum(open_, close) * np.exp(-intraday)
    # Activity rises with the price level and with turbulence, which is what lets on-chain features co-move.
    activity = np.exp(0.35 * np.log(growth) + 4.0 * np.sqrt(variance) + 0.15 * rng.standard_normal(n))
    volume = 2e4 * activity * (1 + 8 * np.abs(returns))
    return pd.DataFrame({
        "date": days.date, "symbol": symbol, "open": open_, "high": high, "low": low, "close": close,
        "volume": volume, "activity": activity, "variance": variance,
    })


def _onchain_for(coin: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    symbol = coin["symbol"].iloc[0]
    n = len(coin)
    noise = lambda scale: np.exp(scale * rng.standard_normal(n))  # noqa: E731
    trend = np.linspace(0.0, 1.5, n)
    active = 2e5 * coin["activity"].to_numpy() * np.exp(trend) * noise(0.08)
    tx = 1.6 * active * noise(0.05)
    hashrate = 1e6 * np.exp(2.5 * trend + 0.3 * np.log(coin["close"].to_numpy() / coin["close"].iloc[0])) * noise(0.04)
    realized_cap = coin["close"].ewm(halflife=180).mean().to_numpy()
    mvrv = coin["close"].to_numpy() / realized_cap * noise(0.01)
    values = {"AdrActCnt": active, "TxCnt": tx, "HashRate": hashrate, "CapMVRVCur": mvrv}
    # A daily metric becomes public when its day has closed.
    known_at = [datetime.combine(d + timedelta(days=1), time(0, 30), tzinfo=timezone.utc) for d in coin["date"]]
    frames = [
        pd.DataFrame({"asset": symbol, "metric": metric, "date": coin["date"], "value": values[metric], "known_at": known_at})
        for metric in ONCHAIN_METRICS
    ]
    return pd.concat(frames, ignore_index=True)


def sample_crypto(
    symbols: tuple[str, ...] = tuple(CRYPTO_PROFILES), end: date = SAMPLE_LAST_DATE, seed: int = 7
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulated BTC/ETH daily candles and on-chain metrics (``source='synthetic'``), seeded."""
    prices, onchain = [], []
    for offset, symbol in enumerate(s for s in CRYPTO_PROFILES if s in symbols):
        rng = np.random.default_rng([seed, offset])
        coin = _simulate_coin(symbol, end, rng)
        prices.append(coin)
        onchain.append(_onchain_for(coin, rng))
    if not prices:
        return pl.DataFrame(schema=PRICE_SCHEMA), pl.DataFrame(schema=ONCHAIN_SCHEMA)
    price_frame = pl.from_pandas(pd.concat(prices, ignore_index=True)).with_columns(
        pl.lit("crypto").alias("asset_class"), pl.lit("synthetic").alias("source")
    )
    onchain_frame = pl.from_pandas(pd.concat(onchain, ignore_index=True)).with_columns(pl.lit("synthetic").alias("source"))
    return (
        price_frame.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()]),
        onchain_frame.select([pl.col(c).cast(t) for c, t in ONCHAIN_SCHEMA.items()]),
    )


def sample_synthetic_equities(count: int, seed: int) -> pl.DataFrame:
    """``count`` seeded synthetic equities on the real index's sessions, its returns as their market factor."""
    index = sample_equities((INDEX_SYMBOL,))
    market = np.diff(np.log(index["close"].to_numpy()), prepend=np.nan)
    return synthetic_equities(count, index["date"], market, seed)


def load_sample(universe: tuple[str, ...], start: date, seed: int,
                synthetic_count: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sample's prices and on-chain metrics for ``universe`` from ``start``, with ``synthetic_count``
    synthetic equities (those of them ``universe`` names)."""
    equities = sample_equities(universe, start)
    if synthetic_count:
        synthetic = sample_synthetic_equities(synthetic_count, seed)
        synthetic = synthetic.filter(pl.col("symbol").is_in(universe) & (pl.col("date") >= start))
        equities = pl.concat([equities, synthetic])
    crypto_prices, onchain = sample_crypto(tuple(s for s in universe if s in CRYPTO_PROFILES), seed=seed)
    crypto_prices = crypto_prices.filter(pl.col("date") >= start)
    onchain = onchain.filter(pl.col("date") >= start)
    return pl.concat([equities, crypto_prices]), onchain
