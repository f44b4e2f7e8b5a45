"""The market assets, materialized the way a user does: sample, a user's file, and bad input (more bad input in
test_bad_input_battery.py)."""

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize

MARKET = "key:market/prices or key:market/onchain"


def warehouse():
    return Warehouse(Settings().warehouse_path)


def metadata_of(result, key_path):
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == key_path:
            return event.materialization.metadata
    raise AssertionError(f"no materialization of {key_path}")


def test_sample_fills_prices_and_onchain(quant_home):
    result = materialize(MARKET)
    assert result.success
    prices = warehouse().query("SELECT symbol, asset_class, source, count(*) n FROM market.prices GROUP BY ALL ORDER BY symbol")
    assert prices["symbol"].tolist() == ["AAPL", "BTC", "JNJ", "MSFT", "SP500"]
    assert set(prices.loc[prices.symbol == "BTC", "source"]) == {"synthetic"}
    assert set(prices.loc[prices.symbol == "AAPL", "source"]) == {"skfolio"}
    assert (prices["n"] > 1000).all()
    onchain = warehouse().query("SELECT * FROM market.onchain")
    assert set(onchain["source"]) == {"synthetic"}
    assert (onchain["known_at"] > onchain["date"].astype("datetime64[ns]")).all()
    assert metadata_of(result, ["market", "prices"])["rows_dropped"].value == 0

    # Re-materializing replaces, never duplicates.
    materialize(MARKET)
    again = warehouse().query("SELECT count(*) n FROM market.prices")["n"][0]
    assert again == prices["n"].sum()


def write_prices(path, body):
    path.write_text("symbol,date,close,volume,asset_class\n" + body)
    return path


def test_user_file_replaces_the_sample_and_bad_rows_are_counted(quant_home, tmp_path, monkeypatch):
    rows = [f"ACME,2021-01-{d:02d},{100 + d},{1000 + d},equity" for d in range(4, 29)]
    rows += [
        "ACME,2021-01-05,999,1,equity",        # duplicate of a good row: both copies go
        "BAD,2021-01-04,-3,1,equity",          # non-positive price
        "BAD,,10,1,equity",                    # empty date cell
        "BAD,2999-01-01,10,1,equity",          # future date
        "BAD,2021-01-04,10,1,bond",            # unknown asset class
        "COIN,2021-01-04,10,,crypto",
    ]
    monkeypatch.setenv("QUANT_PRICES_FILE", str(write_prices(tmp_path / "prices.csv", "\n".join(rows) + "\n")))
    result = materialize(MARKET)
    stored = warehouse().query("SELECT symbol, count(*) n FROM market.prices GROUP BY symbol ORDER BY symbol")
    assert stored.values.tolist() == [["ACME", 24], ["COIN", 1]]
    meta = metadata_of(result, ["market", "prices"])
    assert meta["rows_dropped"].value == 6
    dropped = meta["dropped_by_reason"].value
    assert dropped["duplicate (symbol, date)"] == 2 and dropped["future date"] == 1 and dropped["unknown asset_class"] == 1
    assert warehouse().query("SELECT count(*) n FROM market.onchain")["n"][0] == 0


def test_api_key_never_shows(quant_home, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "sk-very-secret-123")
    settings = Settings()
    assert settings.polygon_api_key.get_secret_value() == "sk-very-secret-123"
    assert "sk-very-secret-123" not in repr(settings) and "sk-very-secret-123" not in str(settings.model_dump())
