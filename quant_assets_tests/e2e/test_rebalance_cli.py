"""`quant rebalance`, `quant alerts` and `quant export` as a person meets them: plays imported with `quant plays
import`, the day's stored scenarios, exit codes, one-line refusals, the settings from the environment."""

import csv
import io
import json
import math
import subprocess
import sys
from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from quant_assets.cli import main
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets_tests.support.projections import AS_OF, seed_projections, seed_sizing_scenarios

PLAYS = "symbol,shares,entry_price,entry_date\nAAPL,30,120,2022-10-03\nJNJ,10,170,2022-10-03\nOLDCO,4,12,2021-05-03\n"
TERMS = {"QUANT_REBALANCE_COST_BP": "8", "QUANT_REBALANCE_MIN_FEE": "2", "QUANT_REBALANCE_MIN_TRADE": "30",
         "QUANT_REBALANCE_TOLERANCE": "0.03"}


def quant(*args, home, **env):
    return subprocess.run([sys.executable, "-m", "quant_assets.cli", *args], capture_output=True, text=True,
                          env={"QUANT_HOME": str(home), "PATH": "/usr/bin:/bin", **env}, timeout=120)


@pytest.fixture
def home(tmp_path, monkeypatch):
    seed_projections(tmp_path / "warehouse.duckdb")
    seed_sizing_scenarios(tmp_path / "warehouse.duckdb")
    (tmp_path / "plays.csv").write_text(PLAYS)
    # In process (`quant plays import`'s own function): each subprocess costs seconds on a busy machine.
    monkeypatch.setenv("QUANT_HOME", str(tmp_path))
    assert main(["plays", "import", str(tmp_path / "plays.csv")]) == 0
    return tmp_path


def test_rebalance_with_cash_added_trades_within_the_settings_and_keeps_what_is_not_covered(home):
    result = quant("rebalance", "--cash", "1,000", "--json", home=home, **TERMS)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    summary, lines = answer["summary"], {line["symbol"]: line for line in answer["lines"]}
    assert summary["terms"] == {"cost_bp": 8.0, "min_fee": 2.0, "min_trade": 30.0, "tolerance": 0.03,
                                "turnover_cap": 1.0, "fractional_shares": False}
    # 30 AAPL at $130 and 10 JNJ at $177 plus $1,000: the book the weights are fractions of.
    assert summary["total"] == pytest.approx(30 * 130 + 10 * 177 + 1000)
    assert lines["OLDCO"]["side"] == "HOLD" and not lines["OLDCO"]["covered"] and "kept" in lines["OLDCO"]["note"]
    assert summary["uncovered_symbols"] == ["OLDCO"]
    traded = [line for line in lines.values() if line["side"] != "HOLD"]
    assert traded
    for line in traded:
        assert line["cost"] == pytest.approx(max(2.0, 8e-4 * line["dollars"]))
        assert line["dollars"] >= 30
        if line["asset_class"] == "equity":
            assert line["shares"] == int(line["shares"])
    flows = sum(line["dollars"] * (1 if line["side"] == "BUY" else -1) + line["cost"] for line in traded)
    assert summary["cash_left"] == pytest.approx(1000 - flows, abs=0.01) and summary["cash_left"] >= 0
    assert summary["total_cost"] == pytest.approx(sum(line["cost"] for line in traded), abs=0.01)
    # JNJ is not eligible: it may be sold, never bought.
    assert lines["JNJ"]["side"] in ("SELL", "HOLD") and lines["JNJ"]["target_weight"] <= lines["JNJ"]["current_weight"]


def test_a_position_within_the_tolerance_gets_no_trade(home, capsys):
    free = ["--cost-bp", "0", "--min-fee", "0", "--min-trade", "0"]

    def aapl(tolerance: float) -> dict:
        assert main(["rebalance", "--json", "--tolerance", f"{tolerance:.4f}", *free]) == 0
        return next(line for line in json.loads(capsys.readouterr().out)["lines"] if line["symbol"] == "AAPL")

    first = aapl(0.0)
    gap = abs(first["current_weight"] - first["target_weight"])
    assert gap > 0.01 and first["side"] != "HOLD"
    held = aapl(gap + 0.005)
    assert held["side"] == "HOLD" and held["shares_after"] == 30 and "within" in held["note"]


def test_the_table_names_the_costs_and_the_cash_left(home):
    result = quant("rebalance", "--cash", "1000", home=home, **TERMS)
    assert result.returncode == 0, result.stderr
    assert "costs: 8 bp, minimum fee $2.00, minimum trade $30.00; tolerance ±3.0%" in result.stdout
    assert "cash left $" in result.stdout and "kept as held, not covered by the advice: OLDCO" in result.stdout


@pytest.mark.parametrize(("args", "env", "status", "says"), [
    (("rebalance", "--cash", "-99999"), {}, 2, "a withdrawal of $99,999.00 is beyond the $5,670.00"),
    (("rebalance", "--cash", "lots"), {}, 2, "cash 'lots' is not a number"),
    (("rebalance", "--slippage", "3"), {}, 2, "unrecognized arguments: --slippage"),
    (("rebalance", "--tolerance", "1.5"), {}, 2, "tolerance must be 0 to below 1"),
    (("rebalance",), {"QUANT_REBALANCE_COST_BP": "cheap"}, 2, "QUANT_REBALANCE_COST_BP"),
    (("rebalance", "--as-of", "2022-12-01"), {}, 1, "no advice with sizing scenarios stored for 2022-12-01"),
])
def test_bad_input_is_one_line(home, args, env, status, says, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(list(args)) == status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in err, err


def test_without_stored_scenarios_rebalance_says_what_to_do(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    result = quant("rebalance", "--cash", "100", home=tmp_path)
    assert result.returncode == 1 and "materialize the projections partition" in result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def test_alerts_name_the_band_and_the_day(home, capsys):
    # A close the day after the advice far above AAPL's 1w P90 (the advice's close times exp(1.28 · 0.3 · √(1/52))).
    next_day = AS_OF + timedelta(days=1)
    with Warehouse(home / "warehouse.duckdb").writer() as con:
        con.execute("INSERT INTO market.prices (symbol, date, asset_class, close, source) "
                    "VALUES ('AAPL', ?, 'equity', 150.0, 'sample')", [next_day])
    result = quant("alerts", "--json", home=home, QUANT_REBALANCE_TOLERANCE="0.05")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    band = [a for a in found if a["kind"] == "band"]
    assert [a["symbol"] for a in band] == ["AAPL"]
    p90 = 130.0 * math.exp(1.28 * 0.3 * math.sqrt(1 / 52))
    assert band[0]["p90"] == pytest.approx(p90) and band[0]["horizon"] == "1w"
    assert f"on {next_day}" in band[0]["message"] and f"the advice of {AS_OF}" in band[0]["message"]
    # Held: AAPL 30 × $130 and JNJ 10 × $177 (the advice's closes): 68.8% and 31.2% against 25% and 0% advised.
    drift = {a["symbol"]: a for a in found if a["kind"] == "drift"}
    assert set(drift) == {"AAPL", "BTC", "JNJ"}
    assert drift["AAPL"]["held_weight"] == pytest.approx(3900 / 5670) and "±5.0% tolerance" in drift["AAPL"]["message"]
    assert main(["alerts"]) == 0 and "P10–P90 band" in capsys.readouterr().out


def test_export_writes_the_trades_and_the_ledgers(home, capsys, monkeypatch):
    with Warehouse(home / "warehouse.duckdb").writer() as con:
        replace_in(con, "projections.scorecard", pd.DataFrame({"as_of": [AS_OF], "symbol": ["AAPL"], "horizon": ["1w"],
                                                               "weight": [0.25], "p10": [-0.05]}), None)
    result = quant("export", "--cash", "1000", "--to", str(home / "out"), home=home, **TERMS)
    assert result.returncode == 0, result.stderr
    trades = list(csv.DictReader(io.StringIO((home / "out" / "trades.csv").read_text())))
    for name, value in TERMS.items():
        monkeypatch.setenv(name, value)
    assert main(["rebalance", "--cash", "1000", "--json"]) == 0
    rebalanced = json.loads(capsys.readouterr().out)
    orders = [line for line in rebalanced["lines"] if line["side"] != "HOLD"]
    assert [(t["symbol"], t["side"], float(t["quantity"]), float(t["limit_price"])) for t in trades] == \
        [(o["symbol"], o["side"], pytest.approx(o["shares"], rel=1e-5), o["last_price"]) for o in orders]
    assert list(trades[0]) == ["symbol", "side", "quantity", "limit_price", "note"]
    ledger = duckdb.sql(f"SELECT count(*) FROM '{home / 'out' / 'advice_ledger.parquet'}'").fetchall()
    assert [ledger[0][0]] == Warehouse(home / "warehouse.duckdb").query("SELECT count(*) AS n FROM projections.trade_plan")[
        "n"].tolist() and ledger[0][0] > 0
    assert duckdb.sql(f"SELECT symbol FROM '{home / 'out' / 'scorecard.parquet'}'").fetchall() == [("AAPL",)]


def test_the_book_commands_import_neither_dagster_nor_torch(home):
    code = ("import sys; from quant_assets.cli import main; main(['rebalance', '--cash', '100']); main(['alerts']); "
            "print(sorted(m for m in ('dagster', 'torch', 'lightgbm', 'xgboost', 'sklearn', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"QUANT_HOME": str(home)}, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_the_rebalance_macros_answer_what_the_command_prints(home, capsys, monkeypatch):
    from quant_assets.book_commands import book_connection

    for name, value in TERMS.items():
        monkeypatch.setenv(name, value)
    assert main(["rebalance", "--cash", "1000", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with book_connection(home) as con:
        cursor = con.execute("SELECT * FROM rebalance(1000)")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        earlier = con.execute(f"SELECT symbol, side, shares FROM rebalance_at(1000, DATE '{AS_OF}')").fetchall()
        with pytest.raises(duckdb.Error, match="withdrawal of"):
            con.execute("SELECT * FROM rebalance(-1e6)").fetchall()
    assert [r["symbol"] for r in rows] == [line["symbol"] for line in printed["lines"]] + ["CASH"]
    for row, line in zip(rows, printed["lines"]):
        assert (row["side"], row["shares"], row["cost"]) == (line["side"], pytest.approx(line["shares"]), line["cost"])
    assert rows[-1]["dollars"] == printed["summary"]["cash_left"] and rows[-1]["cost"] == printed["summary"]["total_cost"]
    assert earlier == [(r["symbol"], r["side"], r["shares"]) for r in rows]
