"""The market assets with QUANT_SAMPLE_SYMBOLS: the widened sample reaches market.prices, read with DuckDB."""

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.vocabulary import DEFAULT_UNIVERSE, synthetic_symbols
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize


def test_a_small_sample_symbols_materializes_every_symbol(quant_home, monkeypatch):
    monkeypatch.delenv("QUANT_UNIVERSE")
    monkeypatch.setenv("QUANT_SAMPLE_SYMBOLS", str(len(DEFAULT_UNIVERSE) + 3))
    monkeypatch.setenv("QUANT_HISTORY_START", "2021-01-01")
    assert materialize("key:market/prices").success
    stored = Warehouse(Settings().warehouse_path).query(
        "SELECT symbol, any_value(source) AS source, count(*) AS n FROM market.prices GROUP BY symbol ORDER BY symbol")
    assert sorted(stored["symbol"]) == sorted((*DEFAULT_UNIVERSE, *synthetic_symbols(3)))
    synthetic = stored[stored.symbol.str.startswith("SYN")]
    assert set(synthetic["source"]) == {"synthetic"} and (synthetic["n"] > 100).all()
