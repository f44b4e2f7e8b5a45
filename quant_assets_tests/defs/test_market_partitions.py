"""Daily market partitions through the warehouse IO manager: a day replaces its own slice, never duplicates,
and a symbol the provider leaves out keeps what is stored for it."""

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize

PRICES = "key:market/prices"


def rows_per_day():
    frame = Warehouse(Settings().warehouse_path).query(
        "SELECT date, count(*) n, count(DISTINCT symbol) s FROM market.prices GROUP BY date ORDER BY date")
    return {str(d.date()): (n, s) for d, n, s in zip(frame["date"], frame["n"], frame["s"])}


def test_day_one_day_two_day_one_again_replaces_not_duplicates(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_TODAY", "2022-06-16")
    materialize(PRICES, days="2022-06-15")
    assert rows_per_day() == {"2022-06-15": (5, 5)}
    materialize(PRICES, days="2022-06-16")
    materialize(PRICES, days="2022-06-15")
    assert rows_per_day() == {"2022-06-15": (5, 5), "2022-06-16": (5, 5)}
    # A weekend holds the crypto day only; a range is one run.
    result = materialize(PRICES, days=("2022-06-11", "2022-06-12"))
    assert len(result.get_asset_materialization_events()) == 2
    assert rows_per_day()["2022-06-11"] == (1, 1)


def test_the_clock_day_is_the_last_partition_and_nothing_after_it_is_stored(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_TODAY", "2022-06-15")
    materialize(PRICES, days=("2022-06-13", "2022-06-15"))
    assert max(rows_per_day()) == "2022-06-15"


def test_a_symbol_absent_from_the_answer_keeps_its_stored_rows(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_TODAY", "2022-06-16")
    materialize(PRICES, days=("2022-06-15", "2022-06-16"))
    monkeypatch.setenv("QUANT_UNIVERSE", "AAPL,JNJ,SP500,BTC")  # MSFT missing from the provider's answer
    result = materialize(PRICES, days=("2022-06-15", "2022-06-16"))
    assert rows_per_day() == {"2022-06-15": (5, 5), "2022-06-16": (5, 5)}
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["symbols_kept_from_storage"].value == ["MSFT"]
