"""The raw-close random walks an evaluation scores the ensemble against, by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant_assets.lib.models.base import QUANTILE_LEVELS
from quant_assets.lib.walk_forward import reference_walks
from quant_assets.lib.walk_forward.reference_walks import walk_crps, walk_moments, walk_quantiles


def closes(n=300, seed=2):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n)
    frames = [pd.DataFrame({"symbol": s, "date": dates, "asset_class": c,
                            "close": 100 * np.exp(np.cumsum(rng.normal(mu, 0.02, n)))})
              for s, c, mu in (("EQ", "equity", 0.001), ("COIN", "crypto", -0.002))]
    return pd.concat(frames, ignore_index=True).sample(frac=1, random_state=3)  # any row order


def test_the_walks_crps_by_hand(monkeypatch):
    monkeypatch.setattr(reference_walks, "VOL_ROWS", 20)
    prices = closes()
    moments = walk_moments(prices)
    day = pd.bdate_range("2020-01-01", periods=300)[250]
    rows = pd.DataFrame({"symbol": ["EQ", "COIN"], "date": [day, day], "horizon": ["1m", "1m"], "realized": [0.03, -0.1]})
    scored = walk_crps(moments, rows)
    for symbol, steps, y in (("EQ", 21, 0.03), ("COIN", 30, -0.1)):
        own = prices[prices["symbol"] == symbol].sort_values("date")
        r = np.diff(np.log(own.loc[own["date"] <= day, "close"].to_numpy()))
        vol = r[-20:].std(ddof=1) * np.sqrt(steps)
        for walk, mean in (("zero_drift", 0.0), ("expanding_drift", r.mean() * steps)):
            q = mean + vol * stats.norm.ppf(QUANTILE_LEVELS)
            # Twice the mean pinball loss over the seven levels, written out.
            pinball = [(a - (y < qa)) * (y - qa) for a, qa in zip(QUANTILE_LEVELS, q)]
            expected = 2 * np.mean(pinball)
            assert scored.loc[scored["symbol"] == symbol, f"crps_{walk}"].item() == pytest.approx(expected, rel=1e-10)


def test_rows_without_a_full_volatility_window_have_no_walk():
    moments = walk_moments(closes())
    early = pd.DataFrame({"symbol": ["EQ"], "date": [pd.bdate_range("2020-01-01", periods=300)[100]], "horizon": ["1w"],
                          "realized": [0.0]})
    assert np.isnan(walk_crps(moments, early)["crps_zero_drift"]).all()
    with pytest.raises(ValueError, match="^unknown walk 'drifty'; expected one of zero_drift, expanding_drift$"):
        walk_quantiles(moments, early[["symbol", "date", "horizon"]], "drifty")
