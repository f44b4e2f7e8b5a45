"""The advice ledger as a user meets it: daily projections partitions materialized through Dagster on a tiny
warehouse, read back with `projector(amount)` / `projector_at(amount, as_of)` in DuckDB, and the advice
scorecard filling in as horizons pass. The ensemble rows are synthetic (a known forecast per symbol and day)."""

from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from quant_assets.lib.models.base import QUANTILE_COLUMNS
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize, use_home

DAYS = ["2022-12-20", "2022-12-21", "2022-12-22"]
# From this day on the forecast for AAPL turns negative: advice for an earlier day must not see it.
AAPL_TURNS = date(2022, 12, 22)
NOVEMBER_DAY = "2022-11-30"
LEDGER = ["projections", "allocations"]


def synthetic_ensemble(features: pd.DataFrame) -> pd.DataFrame:
    """Per (window, symbol, date, horizon): a normal forecast; AAPL and BTC up (until AAPL turns), others down."""
    levels = {"q05": 0.05, "q10": 0.10, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q90": 0.90, "q95": 0.95}
    rows = []
    for row in features.itertuples():
        day = row.date.date()
        for horizon in HORIZONS:
            weeks = horizon.crypto_days / 7
            drift = {"AAPL": 0.004 if day < AAPL_TURNS else -0.01, "BTC": 0.006}.get(row.symbol, -0.003) * weeks
            spread = 0.03 * np.sqrt(weeks) * (2.0 if row.symbol == "BTC" else 1.0)
            quantiles = {name: drift + spread * norm.ppf(level) for name, level in levels.items()}
            rows.append({"window_start": date(day.year, day.month, 1), "symbol": row.symbol, "date": day,
                         "horizon": horizon.label, "mean": drift, "std": spread, **quantiles,
                         "p_up": float(norm.cdf(drift / spread)), "realized": None, "confidence": 0.6, "label_end": None})
    frame = pd.DataFrame(rows)
    assert list(levels) == list(QUANTILE_COLUMNS)
    return frame


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A tiny warehouse with market data, features, a synthetic ensemble for November and December 2022, and the
    projections partitions of three consecutive days and one November day."""
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, tmp_path_factory.mktemp("ledger") / "quant", QUANT_HISTORY_START="2020-01-01",
                 QUANT_WF_START="2022-11-01", QUANT_WF_END="2023-01-01")
        assert materialize(dg.AssetSelection.groups("market", "features")).success
        warehouse = Warehouse(Settings().warehouse_path)
        features = warehouse.query("SELECT symbol, date FROM features.features WHERE date >= DATE '2022-11-01' ORDER BY ALL")
        warehouse.replace("forecasts.ensemble", synthetic_ensemble(features))
        runs = {day: materialize(LEDGER, partition_key=day) for day in [*DAYS, NOVEMBER_DAY]}
        yield warehouse, runs, mp


def connect(warehouse):
    return duckdb.connect(str(warehouse.path), read_only=True)


def check_plan(frame: pd.DataFrame, amount: float):
    assert frame["symbol"].tolist()[-2:] == ["CASH", "TOTAL"]
    assert round(frame["dollars"].iloc[:-1].sum(), 2) == frame["dollars"].iloc[-1] == amount
    for h in ("1w", "1m", "3m", "1y"):
        assert (frame[f"p10_{h}"] <= frame[f"p50_{h}"]).all() and (frame[f"p50_{h}"] <= frame[f"p90_{h}"]).all()


def test_each_day_keeps_its_own_advice_and_projector_reads_the_latest(ledger):
    warehouse, runs, _ = ledger
    assert all(run.success for run in runs.values())
    con = connect(warehouse)
    days = [d for (d,) in con.execute("SELECT DISTINCT as_of FROM projections.trade_plan ORDER BY 1").fetchall()]
    assert [str(d) for d in days] == [NOVEMBER_DAY, *DAYS]
    for table in ("bands", "allocations"):
        stored = con.execute(f"SELECT DISTINCT as_of FROM projections.{table} ORDER BY 1").fetchall()
        assert [str(d) for (d,) in stored] == [NOVEMBER_DAY, *DAYS]

    latest = con.execute("SELECT * FROM projector(10000)").df()
    same = con.execute(f"SELECT * FROM projector_at(10000, DATE '{DAYS[-1]}')").df()
    pd.testing.assert_frame_equal(latest, same)
    check_plan(latest, 10000.0)
    for day in [NOVEMBER_DAY, *DAYS]:
        check_plan(con.execute("SELECT * FROM projector_at(1234.57, ?)", [date.fromisoformat(day)]).df(), 1234.57)
    bands = con.execute("SELECT * FROM projections.bands").df()
    assert ((bands["p10"] <= bands["p25"]) & (bands["p25"] <= bands["p50"]) & (bands["p50"] <= bands["p75"])
            & (bands["p75"] <= bands["p90"])).all()


def test_a_day_sees_neither_later_forecasts_nor_later_prices(ledger):
    warehouse, _, _ = ledger
    con = connect(warehouse)
    held = {str(d): set(s) for d, s in con.execute(
        "SELECT as_of, list(symbol) FROM projections.allocations WHERE half_kelly_weight > 0 GROUP BY 1").fetchall()}
    assert "AAPL" in held["2022-12-21"] and "AAPL" not in held["2022-12-22"]  # AAPL's forecast turned on the 22nd
    assert {"JNJ", "MSFT", "SP500"}.isdisjoint(set().union(*held.values()))
    prices = con.execute("""SELECT a.as_of, a.symbol, a.last_price, p.close FROM projections.allocations a
                            JOIN market.prices p ON p.symbol = a.symbol AND p.date = a.as_of""").df()
    assert len(prices) == 5 * 4 and (prices["last_price"] == prices["close"]).all()  # every symbol traded each day
    # The November day uses November's window (the windows ended in the past for it) with that day's forecast.
    november = con.execute(f"SELECT * FROM projector_at(10000, DATE '{NOVEMBER_DAY}')").df()
    assert "AAPL" in set(november["symbol"]) and "BTC" in set(november["symbol"])


def test_rematerializing_a_day_replaces_only_that_day(ledger):
    warehouse, _, _ = ledger
    before = warehouse.query("SELECT as_of, count(*) n FROM projections.trade_plan GROUP BY 1 ORDER BY 1")
    other_days = warehouse.query("SELECT * FROM projections.allocations WHERE as_of <> DATE '2022-12-21' ORDER BY ALL")
    assert materialize(LEDGER, partition_key="2022-12-21").success
    pd.testing.assert_frame_equal(before, warehouse.query(
        "SELECT as_of, count(*) n FROM projections.trade_plan GROUP BY 1 ORDER BY 1"))
    pd.testing.assert_frame_equal(other_days, warehouse.query(
        "SELECT * FROM projections.allocations WHERE as_of <> DATE '2022-12-21' ORDER BY ALL"))


def test_a_day_without_a_session_writes_nothing_and_projector_at_returns_no_rows(ledger):
    warehouse, _, mp = ledger
    mp.setenv("QUANT_TODAY", "2022-12-31")  # the sample's last session is the 28th: the 30th has none
    try:
        result = materialize(LEDGER, partition_key="2022-12-30")
    finally:
        mp.delenv("QUANT_TODAY")
    assert result.success
    metadata = result.asset_materializations_for_node("projections_and_allocations")[0].metadata
    assert "no completed session on 2022-12-30" in metadata["skipped"].value
    con = connect(warehouse)
    assert con.execute("SELECT count(*) FROM projections.bands WHERE as_of = DATE '2022-12-30'").fetchone()[0] == 0
    assert con.execute("SELECT * FROM projector_at(10000, DATE '2022-12-30')").fetchall() == []
    with pytest.raises(duckdb.Error, match="positive finite number"):
        con.execute("SELECT * FROM projector_at(-1, DATE '2022-12-22')").fetchall()


def test_scorecard_fills_in_as_horizons_pass(ledger):
    warehouse, _, mp = ledger
    mp.setenv("QUANT_TODAY", "2022-12-27")
    try:
        early = materialize(["advice_scorecard"])
        card_early = warehouse.query("SELECT * FROM projections.scorecard")
    finally:
        mp.delenv("QUANT_TODAY")
    assert early.success
    late = materialize(["advice_scorecard"])
    card = warehouse.query("SELECT * FROM projections.scorecard")
    # Dec 20's advice: BTC's week ends on the 27th, the equities' five sessions on the 28th (the 26th is a holiday).
    week = card[(card["as_of"] == "2022-12-20") & (card["horizon"] == "1w")].set_index("symbol")
    week_early = card_early[(card_early["as_of"] == "2022-12-20") & (card_early["horizon"] == "1w")].set_index("symbol")
    assert week.loc["BTC", "horizon_end"] == pd.Timestamp("2022-12-27") and week_early.loc["BTC", "inside_band"] in (True, False)
    assert pd.isna(week_early.loc["AAPL", "realized_value"]) and pd.isna(week_early.loc["PORTFOLIO", "realized_value"])
    assert week.loc["AAPL", "horizon_end"] == pd.Timestamp("2022-12-28") and week.loc["PORTFOLIO", "inside_band"] in (True, False)
    prices = warehouse.query("""SELECT date, close FROM market.prices WHERE symbol = 'AAPL'
                                AND date IN (DATE '2022-12-20', DATE '2022-12-28') ORDER BY date""")["close"].tolist()
    assert week.loc["AAPL", "realized_value"] == pytest.approx(prices[1] / prices[0])
    weights = week.drop(index="PORTFOLIO")
    simple = float((weights["weight"] * (weights["realized_value"] - 1)).sum())
    assert week.loc["PORTFOLIO", "realized_value"] == pytest.approx(1 + simple)
    assert week.loc["PORTFOLIO", "weight"] == pytest.approx(weights["weight"].sum())
    assert card[card["horizon"] == "1y"]["inside_band"].isna().all()  # no year has passed
    # Every stored day's advice is on the card: its positions and the portfolio, per horizon.
    assert card.groupby("as_of")["horizon"].nunique().eq(4).all() and card["as_of"].nunique() == 4
    metadata = late.asset_materializations_for_node("advice_scorecard")[0].metadata
    assert metadata["realized_rows"].value > early.asset_materializations_for_node("advice_scorecard")[0].metadata["realized_rows"].value
    inside = card[(card["horizon"] == "1w") & (card["symbol"] != "PORTFOLIO") & card["inside_band"].notna()]
    assert metadata["share_inside_positions_1w"].value == pytest.approx(inside["inside_band"].astype(bool).mean())
    assert "share_inside" in metadata["table_summary"].value


def test_the_cli_prints_the_latest_day(ledger):
    import subprocess
    import sys

    warehouse, _, _ = ledger
    done = subprocess.run([sys.executable, "-m", "quant_assets.cli", "project", "10000", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    expected = connect(warehouse).execute("SELECT * FROM projector(10000)").df()
    assert '"symbol": "TOTAL"' in done.stdout and len(expected) == done.stdout.count('"symbol"')
