"""A seeded synthetic market and the labels known on a given day (what a window could have seen)."""

from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.vocabulary import HORIZONS

SYMBOLS = {"SP500": "equity", "BBB": "equity", "CCC": "equity", "DDD": "equity", "XBT": "crypto"}


def synthetic_market(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices (random walks on each symbol's calendar) and features (daily return and two noisy signals)."""
    rng = np.random.default_rng(seed)
    prices, features = [], []
    for symbol, asset_class in SYMBOLS.items():
        days = pd.date_range("2018-01-01", "2022-06-30", freq="D" if asset_class == "crypto" else "B")
        ret = rng.normal(0.0003, 0.015, len(days))
        close = 100 * np.exp(np.cumsum(ret))
        prices.append(pd.DataFrame({"symbol": symbol, "date": days, "asset_class": asset_class, "open": close,
                                    "high": close, "low": close, "close": close, "volume": 1.0, "source": "test"}))
        features.append(pd.DataFrame({"symbol": symbol, "date": days, "asset_class": asset_class, "ret_1d": ret,
                                      "signal_a": rng.normal(size=len(days)), "signal_b": rng.normal(size=len(days))}))
    return pd.concat(prices, ignore_index=True), pd.concat(features, ignore_index=True)


def labels_known_on(prices: pd.DataFrame, today: date | None) -> pd.DataFrame:
    """labels.forward_returns as dbt builds it from the prices up to ``today`` (all of them when None)."""
    if today is not None:
        prices = prices[prices["date"] <= pd.Timestamp(today)]
    frames = []
    for (symbol, asset_class), rows in prices.groupby(["symbol", "asset_class"]):
        rows = rows.sort_values("date").reset_index(drop=True)
        out = rows[["symbol", "date", "asset_class"]].copy()
        for h in HORIZONS:
            steps = h.crypto_days if asset_class == "crypto" else h.equity_sessions
            out[f"fwd_{h.label}"] = np.log(rows["close"].shift(-steps) / rows["close"])
        for h in HORIZONS:
            steps = h.crypto_days if asset_class == "crypto" else h.equity_sessions
            out[f"end_{h.label}"] = rows["date"].shift(-steps)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)
