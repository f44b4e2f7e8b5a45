"""A partial answer never deletes (issue #21, item 2): a stored row is replaced only by a valid new version of its
own key, (symbol, date) or (asset, metric, date); the days an answer left out keep their stored values and the
asset's metadata names them."""

from datetime import date, timedelta

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import materialize

MARKET = "key:market/prices or key:market/onchain"
DAYS = [date(2021, 1, 4) + timedelta(days=i) for i in range(10)]
METRICS = ("AdrActCnt", "TxCnt")


def stored(table: str, order: str):
    return Warehouse(Settings().warehouse_path).query(f"SELECT * FROM {table} ORDER BY {order}")


def write_files(tmp_path, monkeypatch, *, shift: float, acme_days, metrics=METRICS):
    """Prices for ACME (on ``acme_days``), BETA and COIN (every day), BTC metrics for ``metrics``; every value
    moved by ``shift`` so that a replaced row is told apart from a kept one."""
    prices = ["symbol,date,close,volume,asset_class"]
    for day in DAYS:
        for symbol, base, asset_class in (("ACME", 100, "equity"), ("BETA", 50, "equity"), ("COIN", 10, "crypto")):
            if symbol != "ACME" or day in acme_days:
                prices.append(f"{symbol},{day},{base + day.day + shift},{1000 + day.day},{asset_class}")
    onchain = ["asset,metric,date,value"]
    onchain += [f"BTC,{metric},{day},{day.day + shift}" for metric in metrics for day in DAYS]
    (tmp_path / "prices.csv").write_text("\n".join(prices) + "\n")
    (tmp_path / "onchain.csv").write_text("\n".join(onchain) + "\n")
    monkeypatch.setenv("QUANT_PRICES_FILE", str(tmp_path / "prices.csv"))
    monkeypatch.setenv("QUANT_ONCHAIN_FILE", str(tmp_path / "onchain.csv"))
    monkeypatch.setenv("QUANT_HISTORY_START", str(DAYS[0]))
    monkeypatch.setenv("QUANT_TODAY", str(DAYS[-1] + timedelta(days=2)))  # every day of the files is final


def metadata_of(result, key_path):
    for event in result.get_asset_materialization_events():
        if event.asset_key.path == key_path:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {key_path}")


def test_half_the_days_and_one_metric_missing_keep_their_stored_values(quant_home, tmp_path, monkeypatch):
    write_files(tmp_path, monkeypatch, shift=0.0, acme_days=DAYS)
    assert materialize(MARKET).success
    prices_before, onchain_before = stored("market.prices", "symbol, date"), stored("market.onchain", "asset, metric, date")

    # ACME answered on half its days, the TxCnt metric not at all; everything answered is a new version.
    answered = DAYS[::2]
    write_files(tmp_path, monkeypatch, shift=0.5, acme_days=answered, metrics=("AdrActCnt",))
    result = materialize(MARKET)
    assert result.success
    prices, onchain = stored("market.prices", "symbol, date"), stored("market.onchain", "asset, metric, date")

    assert len(prices) == len(prices_before) and len(onchain) == len(onchain_before)
    was = prices_before.set_index(["symbol", "date"])["close"]
    now = prices.set_index(["symbol", "date"])["close"]
    for day in DAYS:
        key = ("ACME", str(day))
        expected = was.loc[key] + (0.5 if day in answered else 0.0)
        assert now.loc[key] == expected, key
    assert (now.drop("ACME", level="symbol") == was.drop("ACME", level="symbol") + 0.5).all()
    was_metric = onchain_before.set_index(["metric", "date"])["value"]
    now_metric = onchain.set_index(["metric", "date"])["value"]
    assert (now_metric.loc["TxCnt"] == was_metric.loc["TxCnt"]).all()
    assert (now_metric.loc["AdrActCnt"] == was_metric.loc["AdrActCnt"] + 0.5).all()

    # The metadata names the days that were not answered, per symbol and per asset and metric.
    price_meta, onchain_meta = metadata_of(result, ["market", "prices"]), metadata_of(result, ["market", "onchain"])
    assert price_meta["symbols_kept_from_storage"] == ["ACME"]
    missing = [d for d in DAYS if d not in answered]
    assert price_meta["days_kept_from_storage"] == {"ACME": [str(d) for d in missing]}
    assert onchain_meta["symbols_kept_from_storage"] == ["BTC/TxCnt"]
    assert onchain_meta["days_kept_from_storage"] == {"BTC/TxCnt": [f"{DAYS[0]}..{DAYS[-1]} (10 days)"]}
