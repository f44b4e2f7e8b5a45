"""The person's own data lives apart from what the pipeline rebuilds: plays survive deleting the warehouse, go out
and back in as CSV through `quant plays`, and `quant backup` copies both files whole."""

import subprocess
import sys
from pathlib import Path

import duckdb
from fastapi.testclient import TestClient

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig
from quant_assets.lib.storage.personal import PLAYS
from quant_assets.lib.storage.warehouse import Warehouse, ensure_table
from quant_assets_tests.support.runs import materialize

SLICE = ("2022-12-01", "2022-12-09")
PLAY = {"symbol": "AAPL", "shares": 10, "entry_price": 130.5, "entry_date": "2022-11-01", "note": "core"}


def quant(home, *args):
    return subprocess.run([sys.executable, "-m", "quant_assets.cli", *args], capture_output=True, text=True,
                          env={"QUANT_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=60)


def api(home):
    return TestClient(create_app(ApiConfig(warehouse_path=home / "warehouse.duckdb")), base_url="http://127.0.0.1")


def plays_over_http(home):
    with api(home) as client:
        return client.get("/api/plays").json()["plays"]


def test_plays_outlive_the_warehouse_deleted_and_rebuilt(quant_home):
    assert materialize("key:market/prices", days=SLICE).success
    with api(quant_home) as client:
        assert client.post("/api/plays", json=PLAY).status_code == 201
    with duckdb.connect(str(quant_home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'portfolio'").fetchone()[0] == 0

    # Starting over: the warehouse goes, the pipeline rebuilds a slice of it.
    (quant_home / "warehouse.duckdb").unlink()
    assert materialize("key:market/prices", days=SLICE).success

    plays = plays_over_http(quant_home)
    assert [(p["symbol"], p["shares"], p["entry_price"], p["note"]) for p in plays] == [("AAPL", 10.0, 130.5, "core")]
    exported = quant(quant_home, "plays", "export")
    assert exported.returncode == 0
    assert exported.stdout.splitlines() == ["play_id,symbol,shares,entry_price,entry_date,note",
                                            "1,AAPL,10.0,130.5,2022-11-01,core"]


def test_plays_go_out_and_back_in_as_csv_and_a_bad_file_adds_nothing(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    source = tmp_path / "plays.csv"
    source.write_text("\ufeffSymbol,Shares,Entry_Price,Entry_Date,Note\nmsft,3,250,2022-06-01,\"long, patient\"\n"
                      "BTC,0.25,20000,2022-07-01,\n")
    done = quant(first, "plays", "import", str(source))
    assert done.returncode == 0 and done.stdout.strip() == f"imported 2 plays from {source}"
    exported = tmp_path / "exported.csv"
    exported.write_text(quant(first, "plays", "export").stdout)
    assert quant(second, "plays", "import", str(exported)).returncode == 0
    assert quant(second, "plays", "export").stdout == quant(first, "plays", "export").stdout
    assert '1,MSFT,3.0,250.0,2022-06-01,"long, patient"' in exported.read_text()

    before = quant(second, "plays", "export").stdout
    for rows, complaint in [("AAPL,1,100,03/01/2022", "line 3: entry_date '03/01/2022' is not a date written YYYY-MM-DD"),
                            ("AAPL,-1,100,2022-03-01", "line 3: shares must be a positive number, got -1.0"),
                            ("AAPL,one,100,2022-03-01", "line 3: shares 'one' is not a number"),
                            ("AAPL,1,100,2999-03-01", "line 3: entry_date 2999-03-01 is in the future")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(f"symbol,shares,entry_price,entry_date\nKO,5,60,2022-01-03\n{rows}\n")
        refused = quant(second, "plays", "import", str(bad))
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.startswith(f"quant: {bad} {complaint}") and len(refused.stderr.splitlines()) == 1
    assert quant(second, "plays", "export").stdout == before


def test_plays_an_older_warehouse_held_are_copied_once_into_their_own_file(tmp_path):
    old = Warehouse(tmp_path / "warehouse.duckdb")
    with old.writer() as con:
        ensure_table(con, PLAYS)
        con.execute(f"INSERT INTO {PLAYS} VALUES (7, 'JNJ', 2, 170, DATE '2022-05-02', 'old', now(), now())")
    plays = plays_over_http(tmp_path)
    assert [(p["play_id"], p["symbol"], p["note"]) for p in plays] == [(7, "JNJ", "old")]
    assert (tmp_path / "personal.duckdb").exists()
    assert old.query(f"SELECT count(*) n FROM {PLAYS}")["n"][0] == 1  # the warehouse's rows are left as they were


def test_a_backup_copies_the_warehouse_and_the_plays_whole(quant_home, tmp_path):
    assert materialize("key:market/prices", days=SLICE).success
    source = tmp_path / "plays.csv"
    source.write_text("symbol,shares,entry_price,entry_date\nAAPL,1,120,2022-01-03\n")
    assert quant(quant_home, "plays", "import", str(source)).returncode == 0
    done = quant(quant_home, "backup", "--to", str(tmp_path / "copy"))
    assert done.returncode == 0
    assert sorted(line.rsplit("/", 1)[1] for line in done.stdout.splitlines()) == ["personal.duckdb", "warehouse.duckdb"]
    for name, table in (("warehouse.duckdb", "market.prices"), ("personal.duckdb", PLAYS)):
        with duckdb.connect(str(quant_home / name), read_only=True) as live, \
                duckdb.connect(str(tmp_path / "copy" / name), read_only=True) as copy:
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert copy.execute(query).fetchall() == live.execute(query).fetchall()
    assert quant(tmp_path / "empty", "backup").returncode == 1


def test_the_readme_attach_line_shows_the_plays_beside_the_warehouse(tmp_path):
    home = tmp_path / ".quant"
    source = tmp_path / "plays.csv"
    source.write_text("symbol,shares,entry_price,entry_date\nAAPL,1,120,2022-01-03\n")
    assert quant(home, "plays", "import", str(source)).returncode == 0
    with Warehouse(home / "warehouse.duckdb").writer() as con:
        con.execute("CREATE SCHEMA market")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(line.strip() for line in readme.splitlines() if "ATTACH '~/.quant/personal.duckdb'" in line)
    shown = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60,
                           env={"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert shown.returncode == 0, shown.stderr
    assert "AAPL" in shown.stdout and "120.0" in shown.stdout
