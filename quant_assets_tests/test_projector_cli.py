"""The Projector as a user meets it: the DuckDB macro and the `quant project` command with its exit codes."""

import json
import math
import subprocess
import sys
from datetime import date

import duckdb
import pandas as pd
import pytest

from quant_assets.lib.projector import install_projector
from quant_assets.lib.warehouse import Warehouse, replace_in

AS_OF = date(2022, 12, 28)
HORIZONS = ("1w", "1m", "3m", "1y")


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
        for h, years in zip(HORIZONS, (1 / 52, 1 / 12, 0.25, 1.0)):
            s = vol * math.sqrt(years)
            rows.append({"as_of": AS_OF, "symbol": symbol, "horizon": h, "p10": -1.28 * s, "p25": -0.67 * s,
                         "p50": 0.01 * years, "p75": 0.67 * s, "p90": 1.28 * s, "prob_loss": 0.48})
    with Warehouse(path).writer() as con:
        replace_in(con, "projections.allocations", allocations, None)
        replace_in(con, "projections.bands", pd.DataFrame(rows), None)
        install_projector(con, AS_OF)


def quant(*args, home):
    return subprocess.run([sys.executable, "-m", "quant_assets.cli", *args], capture_output=True, text=True,
                          env={"QUANT_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_macro_ranks_trades_and_adds_cash_and_total(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    frame = con.execute("SELECT * FROM projector(10000)").df()
    assert frame["symbol"].tolist() == ["AAPL", "BTC", "CASH", "TOTAL"]
    trades = frame.iloc[:2]
    assert trades["dollars"].tolist() == [2500.0, 3500.0]
    assert trades["shares"].round(4).tolist() == [round(2500 / 130, 4), round(3500 / 16500, 4)]
    assert frame.loc[2, "dollars"] == 4000.0 and frame.loc[3, "dollars"] == 10000.0
    for h in HORIZONS:
        assert (frame[f"p10_{h}"] <= frame[f"p50_{h}"]).all() and (frame[f"p50_{h}"] <= frame[f"p90_{h}"]).all()
    assert frame.loc[0, "p90_1y"] == pytest.approx(2500 * math.exp(1.28 * 0.3), abs=0.01)
    with pytest.raises(duckdb.Error, match="positive finite number"):
        con.execute("SELECT * FROM projector(-5)").fetchall()


def test_macro_lines_add_up_to_the_cent_and_follow_the_latest_allocations(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    seed_projections(path)
    with Warehouse(path).writer() as con:
        # A newer as-of date with weights that do not split a dollar amount evenly.
        con.execute("INSERT INTO projections.allocations SELECT * REPLACE (DATE '2022-12-29' AS as_of, "
                    "CASE symbol WHEN 'JNJ' THEN 0.0 ELSE 1 / 3 END AS half_kelly_weight) FROM projections.allocations")
        con.execute("INSERT INTO projections.bands SELECT * REPLACE (DATE '2022-12-29' AS as_of) FROM projections.bands")
        install_projector(con, date(2022, 12, 29))
    con = duckdb.connect(str(path), read_only=True)
    frame = con.execute("SELECT * FROM projector(1000.01)").df()
    assert frame["symbol"].tolist() == ["AAPL", "BTC", "CASH", "TOTAL"]
    assert frame["dollars"].tolist()[:2] == [333.34, 333.34]
    assert round(frame["dollars"].iloc[:3].sum(), 2) == frame.loc[3, "dollars"] == 1000.01
    assert frame.loc[2, "weight"] == round(333.33 / 1000.01, 4)


def test_cli_table_and_json_match_the_macro(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    table = quant("project", "10000", home=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "AAPL" in table.stdout and "TOTAL" in table.stdout and "CASH" in table.stdout
    as_json = quant("project", "10000", "--json", home=tmp_path)
    records = json.loads(as_json.stdout)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    expected = con.execute("SELECT * FROM projector(10000)").df()
    assert [r["symbol"] for r in records] == expected["symbol"].tolist()
    assert [r["dollars"] for r in records] == expected["dollars"].tolist()
    assert [r["p50_3m"] for r in records] == pytest.approx(expected["p50_3m"].tolist())


@pytest.mark.parametrize("amount", ["0", "-10", "nan", "inf", "ten", "2e12", ""])
def test_cli_refuses_bad_amounts_with_exit_2_and_writes_nothing(tmp_path, amount):
    seed_projections(tmp_path / "warehouse.duckdb")
    before = (tmp_path / "warehouse.duckdb").read_bytes()
    result = quant("project", amount, home=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "warehouse.duckdb").read_bytes() == before


def test_cli_without_projections_says_so(tmp_path):
    result = quant("project", "10000", home=tmp_path)
    assert result.returncode == 1 and "make demo" in result.stderr
    Warehouse(tmp_path / "warehouse.duckdb").replace("market.prices", pd.DataFrame({"symbol": ["A"], "date": [AS_OF],
        "asset_class": ["equity"], "close": [1.0], "source": ["t"]}))
    result = quant("project", "10000", home=tmp_path)
    assert result.returncode == 1 and "no projections materialized yet" in result.stderr


def test_cli_imports_neither_dagster_nor_torch(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    code = ("import sys; from quant_assets.cli import main; main(['project', '100']); "
            "print(sorted(m for m in ('dagster', 'torch', 'lightgbm', 'xgboost', 'sklearn', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"QUANT_HOME": str(tmp_path)}, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"
