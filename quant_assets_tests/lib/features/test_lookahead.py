"""The truncation audit: pure builders, then the real dbt project and a copy with a planted lead()."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.features.dbt_runner import DbtFeatureBuilder
from quant_assets.lib.features.lookahead import ROW_PRESENCE, audit_lookahead, default_cut_dates, truncate_history
from quant_assets_tests.support.universe import PROJECT_DIR, make_universe


@pytest.fixture(scope="module")
def universe():
    return make_universe(equities=("AAA", "BBB"), years=3, seed=5)


def _price_builder(peek: bool):
    def build(prices: pd.DataFrame, onchain: pd.DataFrame) -> dict[str, pd.DataFrame]:
        frame = prices.sort_values(["symbol", "date"])[["symbol", "date", "close"]].copy()
        by_symbol = frame.groupby("symbol")["close"]
        frame["sma_5"] = by_symbol.transform(lambda s: s.rolling(5, min_periods=5).mean())
        if peek:
            frame["next_close"] = by_symbol.shift(-1)
        return {"toy": frame.drop(columns="close")}

    return build


def _onchain_by_date(prices: pd.DataFrame, onchain: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Joins on-chain values by their date, ignoring known_at: a lookahead the truncation must expose."""
    mvrv = onchain[onchain["metric"] == "CapMVRVCur"][["asset", "date", "value"]]
    crypto = prices[prices["asset_class"] == "crypto"][["symbol", "date"]]
    joined = crypto.merge(mvrv, left_on=["symbol", "date"], right_on=["asset", "date"], how="left")
    return {"oc": joined[["symbol", "date", "value"]]}


def test_default_cut_dates_are_interior_and_deterministic():
    dates = pd.bdate_range("2021-01-01", periods=101)
    cuts = default_cut_dates(list(dates) * 3, n=3)
    assert cuts == [dates[25].date(), dates[50].date(), dates[75].date()]
    with pytest.raises(ValueError, match="at least 5 distinct dates"):
        default_cut_dates(dates[:4], n=3)


def test_truncate_history_keeps_what_was_public_by_end_of_day():
    prices = pd.DataFrame({"symbol": "X", "date": [date(2022, 1, d) for d in (3, 4, 5)], "asset_class": "equity",
                           "close": [1.0, 2.0, 3.0]})
    known = [datetime(2022, 1, 4, 23, 59, tzinfo=timezone.utc), datetime(2022, 1, 5, 0, 0, tzinfo=timezone.utc)]
    onchain = pd.DataFrame({"asset": "X", "metric": "m", "date": [date(2022, 1, 3), date(2022, 1, 4)],
                            "value": [1.0, 2.0], "known_at": known})
    kept_prices, kept_onchain = truncate_history(prices, onchain, date(2022, 1, 4))
    assert list(kept_prices["close"]) == [1.0, 2.0]
    assert list(kept_onchain["value"]) == [1.0]
    naive = onchain.assign(known_at=[k.replace(tzinfo=None) for k in known])
    assert list(truncate_history(prices, naive, date(2022, 1, 4))[1]["value"]) == [1.0]
    with pytest.raises(ValueError, match="market_onchain lacks the column"):
        truncate_history(prices, onchain.drop(columns="known_at"), date(2022, 1, 4))


def test_audit_passes_clean_and_names_peeking_columns(universe):
    prices, onchain = universe
    cuts = default_cut_dates(prices["date"], n=3)
    assert audit_lookahead(_price_builder(peek=False), prices, onchain, cuts) == []

    violations = audit_lookahead(_price_builder(peek=True), prices, onchain, cuts, max_per_column=2)
    assert {v.column for v in violations} == {"next_close"}
    assert len(violations) == 2 * len(cuts)
    assert all(v.date <= v.cut and v.truncated_value is None and v.full_value is not None for v in violations)
    assert "toy.next_close" in str(violations[0])

    leaks = audit_lookahead(_onchain_by_date, prices, onchain, cuts)
    assert {(v.table, v.column, v.symbol) for v in leaks} == {("oc", "value", "BTC")}


def test_audit_reports_rows_that_only_exist_with_the_future(universe):
    prices, onchain = universe

    def build(prices: pd.DataFrame, onchain: pd.DataFrame) -> dict[str, pd.DataFrame]:
        frame = prices[["symbol", "date", "close"]]
        # Keeps a row only when the next row exists: row presence that depends on the future.
        return {"toy": frame[frame.groupby("symbol")["close"].shift(-1).notna()]}

    violations = audit_lookahead(build, prices, onchain, [date(2021, 6, 1)])
    assert violations and {v.column for v in violations} == {ROW_PRESENCE}


@pytest.fixture(scope="module")
def project_builder():
    builder = DbtFeatureBuilder(PROJECT_DIR)
    builder.compile()
    return builder


def test_dbt_project_passes_the_audit(universe, project_builder):
    prices, onchain = universe
    full = project_builder(prices, onchain)
    assert set(full) >= {"features", "feat_returns", "feat_onchain"}
    assert len(full["features"]) == len(prices)
    assert full["features"]["oc_mvrv"].notna().sum() > 900
    cuts = default_cut_dates(prices["date"], n=3)
    assert audit_lookahead(project_builder, prices, onchain, cuts, full) == []


def test_planted_lead_feature_fails_the_audit(universe, tmp_path):
    prices, onchain = universe
    project = tmp_path / "dbt_features"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "features" / "feat_trend.sql"
    sql = model.read_text()
    planted = sql.replace(
        "    ln(close / running_high) as drawdown\n",
        "    ln(close / running_high) as drawdown,\n"
        "    ln(lead(close) over (partition by symbol order by date) / close) as peek_next_ret\n",
    )
    assert planted != sql
    model.write_text(planted)

    violations = audit_lookahead(DbtFeatureBuilder(project), prices, onchain, [date(2021, 3, 1), date(2022, 5, 2)])
    assert violations
    assert {(v.table, v.column) for v in violations} == {("feat_trend", "peek_next_ret")}
    assert {v.symbol for v in violations} <= {"AAA", "BBB", "SP500", "BTC"}
    assert all(v.date == v.cut for v in violations)
    assert np.isfinite(violations[0].full_value) and violations[0].truncated_value is None


def test_compiled_project_is_cached_until_a_project_file_changes(universe, tmp_path, monkeypatch):
    prices, onchain = universe
    project = tmp_path / "dbt_features"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    cache = tmp_path / "cache"
    compiled = DbtFeatureBuilder(project, cache_dir=cache).compile()
    assert len(list(cache.glob("*.json"))) == 1

    def no_dbt(*args, **kwargs):
        raise AssertionError("dbt compiled again although the project did not change")

    monkeypatch.setattr(subprocess, "run", no_dbt)
    (project / "target").mkdir(exist_ok=True)
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output is not part of the project
    cached = DbtFeatureBuilder(project, cache_dir=cache)
    assert cached.compile() == compiled
    cut = date(2021, 3, 1)
    assert audit_lookahead(cached, prices, onchain, [cut]) == []
    monkeypatch.undo()

    model = project / "models" / "features" / "feat_trend.sql"
    model.write_text(model.read_text().replace(
        "    ln(close / running_high) as drawdown\n",
        "    ln(close / running_high) as drawdown,\n"
        "    ln(lead(close) over (partition by symbol order by date) / close) as peek_next_ret\n"))
    violations = audit_lookahead(DbtFeatureBuilder(project, cache_dir=cache), prices, onchain, [cut])
    assert {(v.table, v.column) for v in violations} == {("feat_trend", "peek_next_ret")}
    assert len(list(cache.glob("*.json"))) == 2
