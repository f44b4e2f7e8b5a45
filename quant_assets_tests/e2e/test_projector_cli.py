"""The Projector as a user meets it: the DuckDB macro and the `quant project` command with its exit codes."""

import json
import math
import subprocess
import sys
from datetime import date

import duckdb
import pandas as pd
import pytest

from quant_assets.lib.projections.projector import install_projector
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.vocabulary import HORIZON_LABELS
from quant_assets_tests.support.projections import AS_OF, seed_projections


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
    for h in HORIZON_LABELS:
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
    # Positions are rounded down to the cent; cash takes the rest.
    assert frame["dollars"].tolist()[:2] == [333.33, 333.33]
    assert round(frame["dollars"].iloc[:3].sum(), 2) == frame.loc[3, "dollars"] == 1000.01
    assert frame.loc[2, "weight"] == round(333.35 / 1000.01, 4)


def test_a_fully_invested_book_never_shows_negative_cash(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    seed_projections(path)
    with Warehouse(path).writer() as con:
        con.execute("UPDATE projections.allocations SET half_kelly_weight = CASE symbol WHEN 'JNJ' THEN 0.0 ELSE 0.5 END")
        install_projector(con, AS_OF)
    con = duckdb.connect(str(path), read_only=True)
    frame = con.execute("SELECT * FROM projector(10000.03)").df().set_index("symbol")
    # Rounded to the nearest cent, 5,000.015 twice would be 10,000.04: a cent more than the amount.
    assert frame.loc[["AAPL", "BTC"], "dollars"].tolist() == [5000.01, 5000.01]
    assert frame.loc["CASH", "dollars"] == 0.01 and frame.loc["TOTAL", "dollars"] == 10000.03


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
