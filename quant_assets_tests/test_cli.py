"""Every failure of the `quant` command as a person meets it: one line on stderr, exit status 2 for bad input and
1 for "nothing to show yet" or "the warehouse is busy", never a traceback; and no `assert` on a production path."""

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import quant_assets
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets_tests.support.projections import seed_projections


def quant(*args, home, **env):
    return subprocess.run([sys.executable, "-m", "quant_assets.cli", *args], capture_output=True, text=True,
                          env={"QUANT_HOME": str(home), "PATH": "/usr/bin:/bin", **env}, timeout=120)


def assert_one_line_failure(result, status, *fragments):
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quant: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    ((), "the following arguments are required: command"),
    (("forecast", "10"), "invalid choice: 'forecast'"),
    (("project",), "the following arguments are required: amount"),
    (("project", "100", "--bogus"), "unrecognized arguments: --bogus"),
    (("project", "ten"), "amount 'ten' is not a number"),
])
def test_usage_and_amount_errors_exit_2(tmp_path, args, fragment):
    seed_projections(tmp_path / "warehouse.duckdb")
    assert_one_line_failure(quant(*args, home=tmp_path), 2, fragment)


def test_a_bad_wait_setting_is_bad_input(tmp_path):
    seed_projections(tmp_path / "warehouse.duckdb")
    result = quant("project", "100", home=tmp_path, QUANT_CLI_WAIT_SECONDS="soon")
    assert_one_line_failure(result, 2, "QUANT_CLI_WAIT_SECONDS='soon'")


def test_no_warehouse_exits_1(tmp_path):
    assert_one_line_failure(quant("project", "100", home=tmp_path), 1, "no warehouse at", "make demo")


@pytest.mark.parametrize("damage, fragment", [
    ("DROP TABLE projections.trade_plan", "projections.trade_plan is missing"),
    ("DELETE FROM projections.trade_plan", "projector: no advice stored yet"),  # the macro's own sentence
])
def test_incomplete_projections_exit_1(tmp_path, damage, fragment):
    path = tmp_path / "warehouse.duckdb"
    seed_projections(path)
    with Warehouse(path).writer() as con:
        con.execute(damage)
    assert_one_line_failure(quant("project", "100", home=tmp_path), 1, fragment)


def test_a_file_that_is_not_a_warehouse_exits_1(tmp_path):
    (tmp_path / "warehouse.duckdb").write_bytes(b"this is not a DuckDB file\n" * 100)
    assert_one_line_failure(quant("project", "100", home=tmp_path), 1, "could not be read")


def test_a_busy_warehouse_exits_1_after_the_wait(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    seed_projections(path)
    holding, release = threading.Event(), threading.Event()

    def hold_the_writer_lock():
        with Warehouse(path).writer():
            holding.set()
            release.wait(60)

    writer = threading.Thread(target=hold_the_writer_lock)
    writer.start()
    try:
        assert holding.wait(30)
        result = quant("project", "100", home=tmp_path, QUANT_CLI_WAIT_SECONDS="1")
    finally:
        release.set()
        writer.join()
    assert_one_line_failure(result, 1, "stayed locked by another process", "try again")
    assert quant("project", "100", home=tmp_path).returncode == 0  # and it answers once the write is done


def _asserts_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def test_no_assert_on_a_production_path():
    # `python -O` strips asserts: a check a user relies on must be an explicit error, never an assert.
    package = Path(quant_assets.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 30  # the whole package was searched
    assert [found for path in sources for found in _asserts_in(path)] == []
