"""Benchmark: the dbt-duckdb price features against a plain pandas groupby-rolling implementation.

Data: skfolio's bundled daily closes of 20 S&P 500 stocks and the S&P 500 index (as SP500), 1990-2022
(~175k rows), loaded into a temporary warehouse. skfolio ships no volumes, so a seeded lognormal volume
is attached to the stocks (the index keeps none) to exercise volume_z_21. No crypto, so no on-chain columns.

Both sides compute the same formulas (see dbt_features/models/features/*.sql); the script checks they
agree to 1e-9 per column, then prints rows/second for:
  - dbt run (process)       `dbt run --select +features` wall time, process start-up and parsing included
  - dbt run (models)        the same run's model execution times from run_results.json (no start-up)
  - compiled SQL (1 thread) the compiled models executed in-process on one DuckDB thread, from the prices
                            frame to the features frame (as pandas: frame in, frame out)
  - pandas                  groupby-rolling on the in-memory frame (best of 3)
and the ratio of each dbt figure to pandas. Run: `.venv/bin/python bench/features.py` (`--scale 10` repeats
the stocks ten times under new names, ~1.7M rows, to see how the ratio moves with size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quant_assets.lib.features.dbt_runner import DbtFeatureBuilder  # noqa: E402

PROJECT_DIR = REPO / "dbt_features"
DBT = Path(sys.executable).parent / "dbt"
INDEX = "SP500"
SEED = 7
TOLERANCE = 1e-9


def load_prices() -> pd.DataFrame:
    """The skfolio sample as market.prices rows, with seeded synthetic volumes on the stocks."""
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    wide = load_sp500_dataset().join(load_sp500_index(), how="outer")
    long = wide.rename_axis("date").reset_index().melt(id_vars="date", var_name="symbol", value_name="close")
    long = long.dropna(subset=["close"]).sort_values(["symbol", "date"], ignore_index=True)
    rng = np.random.default_rng(SEED)
    volume = rng.lognormal(15.0, 0.4, len(long))
    long["volume"] = np.where(long["symbol"] == INDEX, np.nan, volume)
    long["date"] = long["date"].dt.date
    long["asset_class"] = "equity"
    for column in ("open", "high", "low"):
        long[column] = long["close"]
    long["source"] = "skfolio"
    return long[["symbol", "date", "asset_class", "open", "high", "low", "close", "volume", "source"]]


def empty_onchain() -> pd.DataFrame:
    return pd.DataFrame({
        "asset": pd.Series(dtype=str), "metric": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[us]"),
        "value": pd.Series(dtype=float), "known_at": pd.Series(dtype="datetime64[us, UTC]"),
        "source": pd.Series(dtype=str),
    })


def pandas_features(prices: pd.DataFrame) -> pd.DataFrame:
    """The price features of features.features with pandas groupby-rolling (same formulas as the SQL)."""
    df = prices[["symbol", "date", "asset_class", "close", "volume"]].sort_values(["symbol", "date"], ignore_index=True)
    by = df.groupby("symbol", sort=False)
    close = df["close"]
    lag = {n: by["close"].shift(n) for n in (1, 5, 21, 63, 252)}
    out = df[["symbol", "date", "asset_class"]].copy()
    for n in (1, 5, 21, 63, 252):
        # ln(a / b), not ln(a) - ln(b): equal price ratios must give bit-equal returns, or ties in the
        # cross-sectional ranks break differently from the SQL.
        out[f"ret_{n}d"] = np.log(close / lag[n])

    def rolling(column: pd.Series, n: int, how: str) -> pd.Series:
        grouped = column.groupby(df["symbol"], sort=False).rolling(n, min_periods=n)
        return getattr(grouped, how)().reset_index(level=0, drop=True)

    out["vol_21d"] = rolling(out["ret_1d"], 21, "std")
    out["vol_63d"] = rolling(out["ret_1d"], 63, "std")
    out["mom_12_1"] = np.log(lag[21] / lag[252])
    for n in (20, 50, 200):
        out[f"ma_gap_{n}"] = np.log(close / rolling(close, n, "mean"))
    change = close - lag[1]
    avg_gain = rolling(change.clip(lower=0), 14, "mean")
    avg_loss = rolling((-change).clip(lower=0), 14, "mean")
    total = avg_gain + avg_loss
    out["rsi_14"] = np.where(total > 0, 100 * avg_gain / total.where(total > 0), np.where(total.notna(), 50.0, np.nan))
    out["drawdown"] = np.log(close / by["close"].cummax())

    market = out.loc[out["symbol"] == INDEX, ["date", "ret_1d"]].dropna().rename(columns={"ret_1d": "market_ret"})
    paired = out[["symbol", "date", "ret_1d"]].merge(market, on="date", how="inner").sort_values(["symbol", "date"])
    pairs = paired.groupby("symbol", sort=False)
    cov = pairs[["ret_1d", "market_ret"]].rolling(63, min_periods=63).cov().xs("market_ret", level=2)["ret_1d"]
    var = pairs["market_ret"].rolling(63, min_periods=63).var()
    paired["beta_63"] = (cov / var).to_numpy()
    out = out.merge(paired[["symbol", "date", "beta_63"]], on=["symbol", "date"], how="left")

    mean, std = rolling(df["volume"], 21, "mean"), rolling(df["volume"], 21, "std")
    out["volume_z_21"] = ((df["volume"] - mean) / std.where(std > 0)).to_numpy()

    groups = [out["date"], out["asset_class"]]
    for column in ("ret_21d", "vol_21d", "mom_12_1"):
        rank = out[column].groupby(groups).rank(method="min")
        count = out[column].groupby(groups).transform("count")
        out[f"rank_{column}"] = ((rank - 1) / (count - 1).where(count > 1)).where(count > 1, 0.0).where(rank.notna())
    return out


def run_dbt(warehouse: Path, scratch: Path) -> tuple[float, dict]:
    env = {**os.environ, "QUANT_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        str(DBT), "--quiet", "--no-version-check", "run", "--select", "+features",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs"),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"dbt run failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds, json.loads((scratch / "target" / "run_results.json").read_text())


def best_of(n: int, fn) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(n):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def compare(sql: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    keys = ["symbol", "date"]
    sql = sql.assign(date=pd.to_datetime(sql["date"]).astype("datetime64[ns]")).sort_values(keys, ignore_index=True)
    reference = reference.assign(date=pd.to_datetime(reference["date"]).astype("datetime64[ns]"))
    reference = reference.sort_values(keys, ignore_index=True)
    if not sql[keys].equals(reference[keys]):
        raise SystemExit("dbt and pandas produced different (symbol, date) rows.")
    diffs = {}
    for column in reference.columns.drop(["symbol", "date", "asset_class"]):
        a = sql[column].to_numpy(dtype=float, na_value=np.nan)
        b = reference[column].to_numpy(dtype=float, na_value=np.nan)
        b[~np.isfinite(b)] = np.nan
        if not (np.isnan(a) == np.isnan(b)).all():
            raise SystemExit(f"{column}: dbt and pandas disagree on which rows are null.")
        diffs[column] = float(np.nanmax(np.abs(a - b))) if (~np.isnan(a)).any() else 0.0
    return diffs


def replicate(prices: pd.DataFrame, copies: int) -> pd.DataFrame:
    """The stocks repeated under new names (AAPL, AAPL_2, ...), the index once: a larger panel, same calendar.
    Each copy's closes get seeded 0.5% noise, so that the copies do not tie in the cross-sectional ranks."""
    stocks = prices[prices["symbol"] != INDEX]
    rng = np.random.default_rng(SEED)
    extra = [stocks.assign(symbol=stocks["symbol"] + f"_{i}", close=stocks["close"] * np.exp(rng.normal(0, 0.005, len(stocks))))
             for i in range(2, copies + 1)]
    return pd.concat([prices, *extra], ignore_index=True).sort_values(["symbol", "date"], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="repeat the stocks this many times (default 1)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    prices = replicate(load_prices(), args.scale)
    rows = len(prices)
    print(f"universe: {prices['symbol'].nunique()} symbols, {rows:,} rows, {prices['date'].min()} .. {prices['date'].max()}")

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        scratch = Path(tmp)
        warehouse = scratch / "warehouse.duckdb"
        onchain = empty_onchain()
        with duckdb.connect(str(warehouse)) as con:
            con.execute("CREATE SCHEMA market")
            con.execute("CREATE TABLE market.prices AS SELECT * FROM prices")
            con.execute("CREATE TABLE market.onchain AS SELECT * FROM onchain")
        run_dbt(warehouse, scratch)  # first run parses the whole project; later runs parse partially
        process_seconds, run_results = run_dbt(warehouse, scratch)
        model_seconds = sum(r["execution_time"] for r in run_results["results"])
        with duckdb.connect(str(warehouse), read_only=True) as con:
            dbt_frame = con.execute("SELECT * FROM features.features").df()
            # dbt-duckdb leaves DuckDB's thread count at its default, as does this fresh connection.
            duckdb_threads = con.execute("SELECT current_setting('threads')").fetchone()[0]

    builder = DbtFeatureBuilder(PROJECT_DIR, threads=1, tables=["features"])
    builder.compile()
    sql_seconds, built = best_of(3, lambda: builder(prices, onchain))
    pandas_seconds, reference = best_of(3, lambda: pandas_features(prices))

    diffs = compare(dbt_frame.drop(columns=[c for c in dbt_frame if c.startswith("oc_")]), reference)
    compare(built["features"].drop(columns=[c for c in built["features"] if c.startswith("oc_")]), reference)
    worst = max(diffs, key=diffs.get)
    print(f"agreement: max abs diff over {len(diffs)} columns = {diffs[worst]:.2e} ({worst})")
    for column, diff in diffs.items():
        print(f"  {column:<14} {diff:.2e}")
    if diffs[worst] > TOLERANCE:
        raise SystemExit(f"dbt and pandas disagree beyond {TOLERANCE:g} on {worst}.")

    print(f"\n{'implementation':<34}{'seconds':>9}{'rows/s':>14}{'vs pandas':>11}")
    figures = [
        ("dbt run, process (start-up incl.)", process_seconds),
        (f"dbt run, models ({duckdb_threads} DuckDB threads)", model_seconds),
        ("compiled SQL in-process, 1 thread", sql_seconds),
        ("pandas groupby-rolling", pandas_seconds),
    ]
    for name, seconds in figures:
        print(f"{name:<34}{seconds:>9.3f}{rows / seconds:>14,.0f}{pandas_seconds / seconds:>10.2f}x")
    ratio = pandas_seconds / min(model_seconds, sql_seconds)
    verdict = "met" if ratio >= 5 else "NOT met"
    print(f"\ngoal dbt-duckdb >= 5x pandas without process start-up: {verdict} (best {ratio:.2f}x)")


if __name__ == "__main__":
    main()
