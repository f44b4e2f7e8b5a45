"""A small warehouse for the pages, their tests and the API bench, built in seconds: the sample's real prices, a
synthetic ensemble (Gaussian quantiles with a per-symbol drift and volatility, labelled as such), and the real
projection and backtest functions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from quant_assets.lib.market.providers.sample import sample_crypto, sample_equities
from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS
from quant_assets.lib.projections.day_step import project_day
from quant_assets.lib.projections.decision_backtest import decision_backtest
from quant_assets.lib.projections.sizing import SizingPolicy
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets.lib.vocabulary import BASE_RATE as BASE_RATE_SOURCE
from quant_assets.lib.vocabulary import CALIBRATED, HORIZONS

SYMBOLS = ("AAPL", "MSFT", "JNJ", "SP500", "BTC")
WINDOWS = [date(2022, m, 1) for m in (7, 8, 9, 10, 11, 12)]
MODELS = ("ridge", "garch", "lightgbm", "baseline")


def _prices() -> pd.DataFrame:
    equities = sample_equities(SYMBOLS, date(2020, 1, 1))
    crypto = sample_crypto(("BTC",))[0].filter(pl.col("date") >= date(2020, 1, 1))
    frame = pl.concat([equities, crypto]).to_pandas()
    return frame.assign(date=frame["date"].dt.date)


def _ensemble(prices: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ensemble rows for each window's dates, with realized log returns where the horizon has passed; and the
    models' predictions on each window's last date (for the models' agreement)."""
    rows, predictions = [], []
    z = stats.norm.ppf(QUANTILE_LEVELS)
    drift = {s: d for s, d in zip(SYMBOLS, (0.012, 0.006, -0.004, 0.003, 0.02))}
    vol = {s: v for s, v in zip(SYMBOLS, (0.09, 0.08, 0.05, 0.05, 0.2))}
    for symbol, frame in prices.groupby("symbol"):
        frame = frame.sort_values("date").reset_index(drop=True)
        logp = np.log(frame["close"].to_numpy())
        dates = frame["date"].tolist()
        for w, start in enumerate(WINDOWS):
            end = WINDOWS[w + 1] if w + 1 < len(WINDOWS) else date(2023, 1, 1)
            idx = [i for i, d in enumerate(dates) if start <= d < end]
            for h in HORIZONS:
                steps = h.crypto_days if symbol == "BTC" else h.equity_sessions
                scale = np.sqrt(steps / 21)
                for i in idx:
                    mean = drift[symbol] * steps / 21 + rng.normal(0, 0.002)
                    std = vol[symbol] * scale
                    realized = logp[i + steps] - logp[i] if i + steps < len(logp) else None
                    rows.append({"window_start": start, "symbol": symbol, "date": dates[i], "horizon": h.label,
                                 "mean": mean, "std": std, **dict(zip(QUANTILE_COLUMNS, mean + std * z)),
                                 "p_up": float(stats.norm.sf(0, mean, std)), **_confidence(symbol, mean, std),
                                 **_sizing(mean), "realized": realized})
                    if i == idx[-1]:
                        for k, model in enumerate(MODELS):
                            m = mean + (k - 1.5) * std * 0.15
                            predictions.append({"window_start": start, "model": model, "symbol": symbol,
                                                "date": dates[i], "horizon": h.label, "mean": m, "std": std,
                                                **dict(zip(QUANTILE_COLUMNS, m + std * z)), "realized": realized})
    return pd.DataFrame(rows), pd.DataFrame(predictions)


def _sizing(mean: float) -> dict[str, float]:
    """The synthetic sizing columns: a zero prior and no uncertainty, so the sizing mean is the mean unshrunk (the
    weights are those the ensemble's means alone would give)."""
    return {"sizing_mean": mean, "sizing_prior": 0.0, "mean_uncertainty": 0.0}


# The ensemble's and the models' synthetic CRPS relative to the baseline's, per horizon label: the ensemble a few
# per cent better, as a skilled one is, so the pages show a skill.
RELATIVE_CRPS = {"ensemble": 0.97, "ridge": 0.99, "garch": 1.0, "lightgbm": 0.98, "baseline": 1.0}


def _scores() -> pd.DataFrame:
    """Synthetic forecasts.scores rows for every window, horizon and model (and the ensemble)."""
    return pd.DataFrame([{"window_start": start, "model": model, "horizon": h.label, "n": 100,
                          "crps": 0.02 * np.sqrt(h.equity_sessions / 21) * relative}
                         for start in WINDOWS for h in HORIZONS for model, relative in RELATIVE_CRPS.items()])


# The symbols whose synthetic probability of a gain is shown as calibrated; the others show a base rate, so the
# pages carry both labels.
CALIBRATED_SYMBOLS = ("AAPL", "BTC")
BASE_RATE = 0.54


def _confidence(symbol: str, mean: float, std: float) -> dict[str, object]:
    """The synthetic confidence columns: the Gaussian probability of a gain, shown where the symbol is in
    ``CALIBRATED_SYMBOLS``, else the base rate (what the ensemble shows where calibration showed no skill)."""
    prob_gain = float(stats.norm.sf(0, mean, std))
    calibrated = symbol in CALIBRATED_SYMBOLS
    return {"confidence": prob_gain if calibrated else BASE_RATE, "prob_gain": prob_gain,
            "prob_gain_base_rate": BASE_RATE, "confidence_source": CALIBRATED if calibrated else BASE_RATE_SOURCE}


def build_surface_warehouse(path) -> Warehouse:
    """Prices and the features' daily returns, then a synthetic ensemble with the real projections and backtest."""
    warehouse = Warehouse(path)
    with warehouse.writer() as con:
        replace_in(con, "market.prices", _prices(), None)
        con.execute("CREATE SCHEMA IF NOT EXISTS features")
        con.execute("""CREATE OR REPLACE TABLE features.features AS SELECT symbol, date,
                       ln(close / lag(close) OVER (PARTITION BY symbol ORDER BY date)) AS ret_1d FROM market.prices""")
    add_forecasts_and_projections(warehouse)
    return warehouse


def add_forecasts_and_projections(warehouse: Warehouse) -> None:
    """Plans and a synthetic ensemble (with a few models' predictions and scores) over the warehouse's prices of ``SYMBOLS``,
    then the real ``project_day`` (the latest day) and ``decision_backtest``."""
    prices = warehouse.query("SELECT symbol, date, close FROM market.prices WHERE symbol IN (SELECT unnest(?::VARCHAR[]))",
                             [list(SYMBOLS)])
    prices["date"] = prices["date"].dt.date
    ensemble, predictions = _ensemble(prices, np.random.default_rng(11))
    plans = pd.DataFrame([{"window_start": s, "window_end": WINDOWS[i + 1] if i + 1 < len(WINDOWS) else date(2023, 1, 1),
                           "horizon": h.label, "train_label_end_before": s, "embargo_days": 5, "mode": "rolling"}
                          for i, s in enumerate(WINDOWS) for h in HORIZONS])
    with warehouse.writer() as con:
        replace_in(con, "forecasts.plans", plans, None)
        replace_in(con, "forecasts.ensemble", ensemble, None)
        replace_in(con, "forecasts.predictions", predictions, None)
        replace_in(con, "forecasts.scores", _scores(), None)
    policy = SizingPolicy(n_scenarios=2000)
    project_day(warehouse, warehouse.query("SELECT max(date) AS d FROM features.features")["d"][0].date(), policy)
    decision_backtest(warehouse, policy, 12.0, 10.0)
