"""A warehouse with two days of stored advice (allocations, bands, the trade plan) and the projector macro."""

import math
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.projections.projector import install_projector
from quant_assets.lib.projections.rebalance_book import SCENARIOS, scenario_rows
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets.lib.vocabulary import HORIZON_LABELS

AS_OF = date(2022, 12, 28)


def seed_projections(path):
    """Two positions (60% half-Kelly in total) with bands that widen with the horizon."""
    allocations = pd.DataFrame({
        "as_of": [AS_OF] * 3, "symbol": ["AAPL", "BTC", "JNJ"], "rank": [1, 2, 3],
        "asset_class": ["equity", "crypto", "equity"], "confidence": [0.62, 0.58, 0.51],
        "kelly_weight": [0.5, 0.7, 0.0], "half_kelly_weight": [0.25, 0.35, 0.0], "last_price": [130.0, 16500.0, 177.0],
        "expected_return_1w": [0.002] * 3, "expected_return_1m": [0.01, 0.02, -0.001],
        "expected_return_3m": [0.03] * 3, "expected_return_1y": [0.08] * 3,
    })
    rows = []
    for symbol, vol in (("AAPL", 0.3), ("BTC", 0.7), ("JNJ", 0.2), ("PORTFOLIO", 0.25)):
        for h, years in zip(HORIZON_LABELS, (1 / 52, 1 / 12, 0.25, 1.0)):
            s = vol * math.sqrt(years)
            rows.append({"as_of": AS_OF, "symbol": symbol, "horizon": h, "p10": -1.28 * s, "p25": -0.67 * s,
                         "p50": 0.01 * years, "p75": 0.67 * s, "p90": 1.28 * s, "prob_loss": 0.48})
    with Warehouse(path).writer() as con:
        replace_in(con, "projections.allocations", allocations, None)
        replace_in(con, "projections.bands", pd.DataFrame(rows), None)
        install_projector(con, AS_OF)


def seed_sizing_scenarios(path, n_scenarios: int = 400, seed: int = 11):
    """The day's sized scenarios at 1m for the three symbols of ``seed_projections`` (AAPL and BTC eligible, JNJ
    not), seeded normal log returns, and the closes of that day in ``market.prices``."""
    rng = np.random.default_rng(seed)
    returns = np.expm1(rng.normal([0.012, 0.03, 0.0], [0.08, 0.2, 0.05], size=(n_scenarios, 3)))
    rows = scenario_rows(AS_OF, "1m", ["AAPL", "BTC", "JNJ"], returns, ["AAPL", "BTC"], 0.6, 1.0, 0.5)
    prices = pd.DataFrame({"symbol": ["AAPL", "BTC", "JNJ"], "date": AS_OF, "asset_class": ["equity", "crypto", "equity"],
                           "close": [130.0, 16500.0, 177.0], "source": ["sample", "synthetic", "sample"]})
    with Warehouse(path).writer() as con:
        replace_in(con, SCENARIOS, rows, None)
        replace_in(con, "market.prices", prices, None)
