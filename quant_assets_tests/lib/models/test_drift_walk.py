"""The drift-walk member: each symbol's own training drift, a blended trailing variance, fitted on the training rows
alone; by hand on a small panel."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.models import make_model
from quant_assets.lib.models.base import TARGET, crps_gaussian
from quant_assets_tests.support.panels import simulate_garch

SPLIT = pd.Timestamp("2020-01-01")


@pytest.fixture(scope="module")
def panel():
    """Two equities with different drifts and GARCH volatility, 1w targets (5 rows ahead)."""
    rng = np.random.default_rng(17)
    dates = pd.bdate_range("2016-01-01", periods=1300)
    frames = []
    for symbol, drift in (("UP", 0.0008), ("FLAT", 0.0)):
        ret = drift + simulate_garch(rng, len(dates), omega=2e-6, alpha=0.1, beta=0.88)
        csum = np.concatenate([[0.0], np.cumsum(ret)])
        target = np.full(len(dates), np.nan)
        target[:-5] = csum[6:] - csum[1:-5]
        frames.append(pd.DataFrame({"symbol": symbol, "date": dates, "asset_class": "equity", "ret_1d": ret,
                                    TARGET: target}))
    return pd.concat(frames, ignore_index=True)


def training(panel):
    """What the walk-forward hands a fit: rows before the split, targets only where the label ended before it."""
    rows = panel[panel["date"] < SPLIT].copy()
    rows.loc[rows.groupby("symbol").cumcount(ascending=False) < 5, TARGET] = np.nan
    return rows


def test_each_symbol_gets_its_training_drift_and_the_blended_trailing_variance(panel):
    train = training(panel)
    model = make_model("drift_walk", horizon="1w", seed=0).fit(train)
    known = train[train[TARGET].notna()]
    for symbol in ("UP", "FLAT"):
        own = known.loc[known["symbol"] == symbol, "ret_1d"]
        assert model.drift_[symbol] == pytest.approx((own.mean(), own.std() / np.sqrt(len(own))), rel=1e-12)
    w, k = model.spread_["equity"]
    assert 0.0 <= w <= 1.0 and 0.5 <= k <= 2.0
    out = model.predict(panel)
    for symbol in ("UP", "FLAT"):
        rows = panel.index[panel["symbol"] == symbol]
        row = rows[1100]
        past = panel.loc[rows[rows <= row], "ret_1d"].to_numpy()
        drift, se = model.drift_[symbol]
        variance = w * past[-21:].var(ddof=1) + (1 - w) * past[-252:].var(ddof=1)
        assert out.loc[row, "mean"] == pytest.approx(drift * 5, rel=1e-12)
        assert out.loc[row, "std"] == pytest.approx(np.sqrt(k**2 * variance * 5 + (se * 5) ** 2), rel=1e-9)
    # A symbol the training rows never saw takes the class's pooled drift.
    new = model.predict(panel[panel["symbol"] == "UP"].assign(symbol="NEW"))
    assert new["mean"].iloc[0] == pytest.approx(model.pooled_["equity"][0] * 5, rel=1e-12)


def test_the_fit_is_point_in_time(panel):
    train = training(panel)
    model = make_model("drift_walk", horizon="1w", seed=0).fit(train)
    # Rows past the split, or targets that had not ended by it, change nothing the fit learned.
    future = panel.assign(ret_1d=np.where(panel["date"] >= SPLIT, 0.05, panel["ret_1d"]))
    unlabelled = pd.concat([train, future[future["date"] >= SPLIT].assign(**{TARGET: np.nan})], ignore_index=True)
    again = make_model("drift_walk", horizon="1w", seed=0).fit(unlabelled)
    assert again.drift_ == model.drift_ and again.pooled_ == model.pooled_
    # A row's forecast reads its own past only: later returns leave it alone.
    before = (panel["date"] < SPLIT).to_numpy()
    pd.testing.assert_frame_equal(model.predict(panel)[before], model.predict(future)[before])


def test_the_spread_follows_volatility_clustering_at_a_week(panel):
    # GARCH volatility persists: the last month's variance predicts the next week's, so the fit leans on it, and
    # out of sample the member's CRPS is below the trailing-year walk's (same drift, long-window variance only).
    train = training(panel)
    model = make_model("drift_walk", horizon="1w", seed=0).fit(train)
    assert model.spread_["equity"][0] > 0
    held = (panel["date"] >= SPLIT).to_numpy() & panel[TARGET].notna().to_numpy()
    out = model.predict(panel)[held]
    y = panel.loc[held, TARGET].to_numpy()
    year_walk = model._with_variances(panel)[held]
    _, se = model._drift(year_walk)
    walk_std = np.sqrt(year_walk["var_long"].to_numpy() * 5 + (se * 5) ** 2)
    member = crps_gaussian(y, out["mean"].to_numpy(), out["std"].to_numpy()).mean()
    walk = crps_gaussian(y, out["mean"].to_numpy(), walk_std).mean()
    assert member < walk


def test_bad_inputs_get_clear_errors(panel):
    with pytest.raises(ValueError, match="^drift_walk: the training frame has no 'ret_1d' column$"):
        make_model("drift_walk", horizon="1w", seed=0).fit(panel.drop(columns="ret_1d"))
    model = make_model("drift_walk", horizon="1w", seed=0).fit(training(panel))
    with pytest.raises(ValueError, match="^drift_walk: the frame to predict has no 'ret_1d' column$"):
        model.predict(panel.drop(columns="ret_1d"))
