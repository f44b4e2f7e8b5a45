"""The sample's simulated crypto ends at plausible late-2022 levels and is still labelled synthetic."""

import numpy as np
import polars as pl

from quant_assets.lib.market.providers.sample import CRYPTO_END_LEVELS, sample_crypto
from quant_assets.lib.vocabulary import SAMPLE_LAST_DATE


def test_simulated_coins_end_at_their_anchor_levels_and_say_they_are_synthetic():
    prices, onchain = sample_crypto()
    for symbol, level in CRYPTO_END_LEVELS.items():
        coin = prices.filter(pl.col("symbol") == symbol).sort("date")
        assert coin["date"][-1] == SAMPLE_LAST_DATE and coin["close"][-1] == level
        closes = coin["close"].to_numpy()
        assert (closes > 0).all() and np.isfinite(closes).all()
        assert (coin["low"] <= coin["close"]).all() and (coin["close"] <= coin["high"]).all()
    assert set(prices["source"]) == {"synthetic"} and set(onchain["source"]) == {"synthetic"}


def test_the_anchor_moves_only_the_level_not_the_returns():
    base, _ = sample_crypto(seed=3)
    other_end, _ = sample_crypto(seed=3, end=SAMPLE_LAST_DATE.replace(day=1))
    for symbol in CRYPTO_END_LEVELS:
        a = base.filter(pl.col("symbol") == symbol)["close"].to_numpy()
        b = other_end.filter(pl.col("symbol") == symbol)["close"].to_numpy()
        assert np.allclose(np.diff(np.log(a))[: len(b) - 1], np.diff(np.log(b)), atol=1e-12)
        assert a[len(b) - 1] != b[-1]
