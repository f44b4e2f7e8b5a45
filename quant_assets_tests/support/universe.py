"""A seeded tiny market (equities, the index, BTC with on-chain) written as the dbt project's sources."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_features"


DBT = Path(sys.executable).parent / "dbt"


# The on-chain value of this day is published three days late; nothing may use it earlier.
LATE_DAY = date(2021, 6, 10)


LATE_VALUE = 99.0


def make_universe(
    equities: tuple[str, ...] = ("AAA", "BBB", "CCC"), years: int = 3, seed: int = 11
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded market.prices and market.onchain frames: equities + SP500 on business days, BTC daily with on-chain."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2020-01-01", periods=252 * years)
    days = pd.date_range("2020-01-01", periods=365 * years)
    market = np.cumsum(rng.normal(0.0003, 0.01, len(sessions)))
    frames = []
    for symbol in equities:
        close = 50 * np.exp(np.cumsum(0.9 * np.diff(market, prepend=0.0) + rng.normal(0, 0.012, len(sessions))))
        frames.append(_bars(symbol, "equity", sessions, close, rng.lognormal(14, 0.4, len(sessions))))
    frames.append(_bars("SP500", "equity", sessions, 3000 * np.exp(market), np.full(len(sessions), np.nan)))
    btc = 9000 * np.exp(np.cumsum(rng.normal(0.001, 0.035, len(days))))
    frames.append(_bars("BTC", "crypto", days, btc, rng.lognormal(21, 0.3, len(days))))
    prices = pd.concat(frames, ignore_index=True)

    metrics = {"AdrActCnt": 8e5, "TxCnt": 3e5, "HashRate": 1.2e8, "CapMVRVCur": 1.8}
    onchain = []
    for metric, level in metrics.items():
        values = level * np.exp(np.cumsum(rng.normal(0, 0.03, len(days))))
        onchain.append(pd.DataFrame({
            "asset": "BTC", "metric": metric, "date": days.date, "value": values,
            # Community data for day t is published shortly after midnight UTC of day t+1.
            "known_at": [datetime.combine(d + timedelta(days=1), time(0, 30), tzinfo=timezone.utc) for d in days.date],
            "source": "synthetic",
        }))
    onchain = pd.concat(onchain, ignore_index=True)
    late = (onchain["metric"] == "CapMVRVCur") & (onchain["date"] == LATE_DAY)
    onchain.loc[late, "value"] = LATE_VALUE
    onchain.loc[late, "known_at"] = datetime.combine(LATE_DAY + timedelta(days=3), time(12), tzinfo=timezone.utc)
    return prices, onchain


def _bars(symbol: str, asset_class: str, dates: pd.DatetimeIndex, close: np.ndarray, volume: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "symbol": symbol, "date": dates.date, "asset_class": asset_class, "open": close, "high": close * 1.01,
        "low": close * 0.99, "close": close, "volume": volume, "source": "synthetic",
    })


def write_market(path: Path, prices: pd.DataFrame, onchain: pd.DataFrame) -> None:
    """Create market.prices / market.onchain in a DuckDB file with the warehouse's column types."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA market")
        con.execute(
            "CREATE TABLE market.prices (symbol VARCHAR, date DATE, asset_class VARCHAR, open DOUBLE, high DOUBLE, "
            "low DOUBLE, close DOUBLE, volume DOUBLE, source VARCHAR)"
        )
        con.execute(
            "CREATE TABLE market.onchain (asset VARCHAR, metric VARCHAR, date DATE, value DOUBLE, "
            "known_at TIMESTAMPTZ, source VARCHAR)"
        )
        con.execute("INSERT INTO market.prices SELECT * FROM prices")
        con.execute("INSERT INTO market.onchain SELECT * FROM onchain")


def run_dbt(command: str, warehouse: Path, scratch: Path, project_dir: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    """Run one dbt command on the project against ``warehouse``, keeping dbt's target and logs in ``scratch``."""
    env = {**os.environ, "QUANT_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [str(DBT), "--no-version-check", command, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
         "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")],
        env=env, capture_output=True, text=True, check=False,
    )
