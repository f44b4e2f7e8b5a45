"""The dbt_features project on a tiny universe: feature values against pandas, labels, point-in-time on-chain."""

from __future__ import annotations

import subprocess

import duckdb
import numpy as np
import pandas as pd
import pytest
from quant_assets_tests.support.universe import LATE_DAY, LATE_VALUE, make_universe, write_market, run_dbt


FEATURE_COLUMNS = [
    "symbol", "date", "asset_class", "ret_1d", "ret_5d", "ret_21d", "ret_63d", "ret_252d", "vol_21d", "vol_63d",
    "mom_12_1", "ma_gap_20", "ma_gap_50", "ma_gap_200", "rsi_14", "drawdown", "beta_63", "volume_z_21",
    "rank_ret_21d", "rank_vol_21d", "rank_mom_12_1",
]
LABEL_COLUMNS = [
    "symbol", "date", "asset_class", "fwd_1w", "fwd_1m", "fwd_3m", "fwd_1y", "end_1w", "end_1m", "end_3m", "end_1y",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("dbt_features")
    prices, onchain = make_universe()
    warehouse = root / "warehouse.duckdb"
    write_market(warehouse, prices, onchain)
    result = run_dbt("build", warehouse, root)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        features = con.execute("SELECT * FROM features.features").df()
        labels = con.execute("SELECT * FROM labels.forward_returns").df()
        relations = con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables"
        ).fetchall()
    for frame in (features, labels, prices):
        frame["date"] = pd.to_datetime(frame["date"])
    return {"prices": prices, "onchain": onchain, "features": features, "labels": labels, "relations": relations,
            "stdout": result.stdout}


def _reference(prices: pd.DataFrame) -> pd.DataFrame:
    """Independent pandas computation of the price features, one symbol at a time."""
    out = []
    for symbol, g in prices.sort_values("date").groupby("symbol"):
        g = g.set_index("date")
        close, logc = g["close"], np.log(g["close"])
        r = pd.DataFrame(index=g.index)
        r["symbol"] = symbol
        r["ret_1d"] = logc.diff()
        r["ret_5d"] = logc.diff(5)
        r["ret_21d"] = logc.diff(21)
        r["mom_12_1"] = logc.shift(21) - logc.shift(252)
        r["vol_21d"] = r["ret_1d"].rolling(21, min_periods=21).std()
        r["vol_63d"] = r["ret_1d"].rolling(63, min_periods=63).std()
        r["ma_gap_50"] = logc - np.log(close.rolling(50, min_periods=50).mean())
        r["ma_gap_200"] = logc - np.log(close.rolling(200, min_periods=200).mean())
        change = close.diff()
        gain = change.clip(lower=0).where(change.notna())
        loss = (-change).clip(lower=0).where(change.notna())
        ag, al = gain.rolling(14, min_periods=14).mean(), loss.rolling(14, min_periods=14).mean()
        r["rsi_14"] = 100 * ag / (ag + al)
        r["drawdown"] = logc - np.log(close.cummax())
        vol = g["volume"]
        r["volume_z_21"] = (vol - vol.rolling(21, min_periods=21).mean()) / vol.rolling(21, min_periods=21).std()
        out.append(r.reset_index())
    return pd.concat(out, ignore_index=True)


def test_relations_land_in_their_schemas(built):
    relations = {(s, t): kind for s, t, kind in built["relations"]}
    assert relations[("features", "features")] == "BASE TABLE"
    assert relations[("labels", "forward_returns")] == "BASE TABLE"
    # Staging and the per-family feature models are inlined (ephemeral): only what the pipeline reads is stored.
    assert {(s, t) for s, t in relations if s in ("staging", "features", "labels")} == {
        ("features", "features"), ("labels", "forward_returns")}
    assert "PASS=" in built["stdout"] and "ERROR=0" in built["stdout"]


def test_feature_columns_are_exact_and_hold_no_labels(built):
    columns = list(built["features"].columns)
    oc = [c for c in columns if c.startswith("oc_")]
    assert [c for c in columns if not c.startswith("oc_")] == FEATURE_COLUMNS
    assert set(oc) == {"oc_adractcnt_z63", "oc_txcnt_chg_7d", "oc_hashrate_chg_30d", "oc_mvrv"}
    assert not [c for c in columns if c.startswith(("fwd_", "end_"))]
    assert list(built["labels"].columns) == LABEL_COLUMNS
    assert len(built["features"]) == len(built["prices"])


def test_price_features_match_pandas(built):
    features = built["features"].set_index(["symbol", "date"]).sort_index()
    expected = _reference(built["prices"]).set_index(["symbol", "date"]).sort_index()
    assert list(features.index) == list(expected.index)
    for column in expected.columns:
        got, want = features[column].to_numpy(float), expected[column].to_numpy(float)
        assert (np.isnan(got) == np.isnan(want)).all(), f"{column}: null pattern differs from pandas"
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, equal_nan=True, err_msg=column)
    # Full windows only: the first 21 rows lack a 21-row window of returns, SP500 has no volume.
    aaa = features.loc["AAA"]
    assert aaa["vol_21d"].iloc[:21].isna().all() and aaa["vol_21d"].iloc[21:].notna().all()
    assert features.loc["SP500", "volume_z_21"].isna().all()
    assert features.loc["BTC", "ma_gap_20"].notna().sum() == len(features.loc["BTC"]) - 19


def test_beta_and_ranks(built):
    features = built["features"]
    closes = built["prices"].set_index("date").groupby("symbol")["close"]
    aaa = np.log(closes.get_group("AAA")).diff().dropna()
    market = np.log(closes.get_group("SP500")).diff().dropna()
    beta = aaa.rolling(63).cov(market) / market.rolling(63).var()
    got = features[features["symbol"] == "AAA"].set_index("date")["beta_63"]
    np.testing.assert_allclose(got.loc[beta.dropna().index], beta.dropna(), rtol=1e-9)
    assert got.iloc[:63].isna().all()
    # Crypto trades on weekends; beta only exists on dates the index has a return.
    btc = features[features["symbol"] == "BTC"].set_index("date")
    assert btc.loc[btc.index.dayofweek >= 5, "beta_63"].isna().all()
    assert btc["beta_63"].notna().sum() > 300

    day = pd.Timestamp("2021-09-15")
    on_day = features[(features["date"] == day) & (features["asset_class"] == "equity")].set_index("symbol")
    order = on_day["ret_21d"].rank(method="min")
    np.testing.assert_allclose(on_day["rank_ret_21d"], (order - 1) / (len(order) - 1))
    assert on_day.loc[on_day["ret_21d"].idxmax(), "rank_ret_21d"] == 1.0
    assert features.loc[features["ret_21d"].isna(), "rank_ret_21d"].isna().all()


def test_labels_are_forward_returns_with_end_dates(built):
    labels = built["labels"]
    aaa = labels[labels["symbol"] == "AAA"].sort_values("date").reset_index(drop=True)
    closes = built["prices"].query("symbol == 'AAA'").sort_values("date")["close"].to_numpy()
    assert aaa.loc[10, "end_1w"] == aaa.loc[15, "date"]
    assert aaa.loc[10, "end_1y"] == aaa.loc[262, "date"]
    np.testing.assert_allclose(aaa.loc[10, "fwd_1m"], np.log(closes[31] / closes[10]), rtol=1e-12)
    assert aaa["fwd_1y"].iloc[-252:].isna().all() and aaa["end_1y"].iloc[-252:].isna().all()
    assert aaa["fwd_1y"].iloc[:-252].notna().all()

    btc = labels[labels["symbol"] == "BTC"].sort_values("date").reset_index(drop=True)
    assert (btc["end_1w"].dropna() - btc.loc[btc["end_1w"].notna(), "date"] == pd.Timedelta(days=7)).all()
    assert (btc["end_1y"].dropna() - btc.loc[btc["end_1y"].notna(), "date"] == pd.Timedelta(days=365)).all()
    assert btc["end_3m"].isna().sum() == 91


def test_onchain_uses_only_values_public_by_end_of_day(built):
    onchain, features = built["onchain"], built["features"]
    btc = features[features["symbol"] == "BTC"].set_index("date")
    mvrv = onchain[onchain["metric"] == "CapMVRVCur"].set_index("date")["value"]
    mvrv.index = pd.to_datetime(mvrv.index)
    one_day = pd.Timedelta(days=1)
    # Normally day t is public at t+1 00:30, so at date d the latest usable value is the one of d-1.
    normal = pd.Timestamp("2021-03-01")
    assert btc.loc[normal, "oc_mvrv"] == mvrv.loc[normal - one_day]
    # The late value (public at LATE_DAY+3 12:00) and everything after it wait until it is public.
    late = pd.Timestamp(LATE_DAY)
    for d in (late, late + one_day, late + 2 * one_day):
        assert btc.loc[d, "oc_mvrv"] == mvrv.loc[late - one_day], d
    assert btc.loc[late + 3 * one_day, "oc_mvrv"] == mvrv.loc[late + 2 * one_day]
    assert (btc["oc_mvrv"] == LATE_VALUE).sum() == 0

    # Transaction-count change: ln(v[t] / v[t-7]) of the latest public day t = d - 1.
    tx = onchain[onchain["metric"] == "TxCnt"].set_index("date")["value"]
    tx.index = pd.to_datetime(tx.index)
    d = pd.Timestamp("2022-02-02")
    assert btc.loc[d, "oc_txcnt_chg_7d"] == pytest.approx(np.log(tx.loc[d - one_day] / tx.loc[d - 8 * one_day]), rel=1e-12)
    adr = np.log(onchain[onchain["metric"] == "AdrActCnt"].set_index("date")["value"])
    adr.index = pd.to_datetime(adr.index)
    window = adr.loc[d - 63 * one_day: d - one_day]
    assert btc.loc[d, "oc_adractcnt_z63"] == pytest.approx((window.iloc[-1] - window.mean()) / window.std(), rel=1e-9)
    assert features.loc[features["asset_class"] == "equity", [c for c in features if c.startswith("oc_")]].isna().all().all()


def test_the_dagster_dbt_resource_knows_the_version_of_the_dbt_it_runs():
    from quant_assets.defs.features.assets import build_feature_defs

    resource = build_feature_defs()[2]
    printed = subprocess.run([resource.dbt_executable, "--version"], capture_output=True, text=True, check=True).stdout
    assert f"installed: {resource._cli_version}" in printed
