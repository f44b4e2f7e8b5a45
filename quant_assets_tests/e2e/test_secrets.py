"""A planted POLYGON_API_KEY runs the pipeline against loopback providers (market ingest through Polygon, Coinbase
and Coin Metrics with a rate limit and error bodies that quote the key; a window's plan and a fit tracked in
MLflow; and a failing run), then every place a secret could end up is searched: zero hits.

The features come from a synthetic panel written to the warehouse rather than from dbt, which takes most of a
minute and is given no secret (its profile reads only QUANT_WAREHOUSE)."""

import functools
import logging
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import pytest
from dagster._serdes import serialize_value
from mlflow.entities import ViewType

from quant_assets.lib.market.providers import coinbase, coinmetrics, polygon
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.support.runs import planned_runs, failure_messages
from quant_assets_tests.support.loopback import LoopbackServer, Reply, Request, json_reply
from quant_assets_tests.support.synthetic import labels_known_on, synthetic_market

KEY = "pk-PLANTED-5e1f0c9a7b3d"
FIRST, TODAY = date(2024, 5, 1), date(2024, 6, 28)
WINDOW = "2021-03-01"  # inside the synthetic feature panel


def close_on(symbol: str, day: date) -> float:
    """A deterministic wandering price, different per symbol."""
    i = (day - FIRST).days
    return round(50.0 * (1 + len(symbol)) * math.exp(0.0004 * i + 0.05 * math.sin(i / (3 + len(symbol)))), 4)


def days_between(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first[:10]), date.fromisoformat(last[:10])
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class Providers:
    """Polygon, Coinbase and Coin Metrics on one loopback server. Polygon answers each symbol's first request
    with a 429 whose body quotes the key; ``refuse`` makes it answer every request with an error status that
    quotes the key, as an over-helpful API might."""

    def __init__(self) -> None:
        self.asked: set[str] = set()
        self.refuse = False

    def __call__(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["v2", "aggs", "ticker"]:
            return self.polygon(request, parts[3], parts[7], parts[8])
        if parts[0] == "products":
            days = days_between(request.query["start"], request.query["end"])
            return json_reply([[int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()), close_on("BTC", d) * 0.99,
                                close_on("BTC", d) * 1.01, close_on("BTC", d), close_on("BTC", d), 1000.0]
                               for d in reversed(days)])
        if parts[-1] == "asset-metrics":
            metrics = request.query["metrics"].split(",")
            return json_reply({"data": [{"asset": "btc", "time": f"{d}T00:00:00.000000000Z",
                                         **{m: str(1000 + i) for i, m in enumerate(metrics)}}
                                        for d in days_between(request.query["start_time"], request.query["end_time"])]})
        return Reply(404)

    def polygon(self, request: Request, symbol: str, first: str, last: str) -> Reply:
        if request.query.get("apiKey") != KEY:
            return json_reply({"status": "ERROR", "error": "Unknown API Key"}, 401)
        if self.refuse:
            return json_reply({"status": "NOT_AUTHORIZED", "message": f"key {KEY} is not entitled to {symbol}"})
        if symbol not in self.asked:
            self.asked.add(symbol)
            return json_reply({"status": "ERROR", "error": f"too many requests for apiKey={KEY}"}, 429,
                              {"Retry-After": "0"})
        bars = [{"o": close_on(symbol, d), "h": close_on(symbol, d) * 1.01, "l": close_on(symbol, d) * 0.99,
                 "c": close_on(symbol, d), "v": 1e6, "t": int(datetime(d.year, d.month, d.day, 5, tzinfo=UTC).timestamp() * 1000)}
                for d in days_between(first, last) if d.weekday() < 5]
        return json_reply({"ticker": symbol, "status": "OK", "resultsCount": len(bars), "results": bars})


@pytest.fixture
def pipeline_env(quant_home, monkeypatch):
    for name, value in {"QUANT_PROVIDER": "polygon", "POLYGON_API_KEY": KEY, "QUANT_UNIVERSE": "AAPL,MSFT,SP500,BTC",
                        "QUANT_HISTORY_START": str(FIRST), "QUANT_TODAY": str(TODAY), "QUANT_WF_START": WINDOW,
                        "QUANT_WF_END": "2021-04-01", "QUANT_WF_TRAIN_YEARS": "2"}.items():
        monkeypatch.setenv(name, value)
    providers = Providers()
    with LoopbackServer(providers) as server:
        for module, name in ((polygon, "fetch_polygon_prices"), (coinbase, "fetch_coinbase_candles"),
                             (coinmetrics, "fetch_coinmetrics")):
            monkeypatch.setattr(module, name, functools.partial(getattr(module, name), base_url=server.url))
        yield server, providers


def run(instance, selection, partition_key=None):
    """Materialize ``selection`` on ``instance``, one run per partitions definition as the daemon would."""
    from quant_assets.definitions import build_definitions

    defs = build_definitions()
    results = []
    for keys, _, tags, key in planned_runs(defs, selection, partition_key, None):
        chosen = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
        results.append(dg.materialize([*defs.assets, *defs.asset_checks], selection=chosen, resources=defs.resources,
                                      partition_key=key, tags=tags, instance=instance, raise_on_error=False))
    return results


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_planted_key_appears_nowhere(pipeline_env, tmp_path, caplog):
    server, providers = pipeline_env
    caplog.set_level(logging.DEBUG)
    settings = Settings()
    (tmp_path / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    with instance:
        good = run(instance, "key:market/prices or key:market/onchain")
        prices, features = synthetic_market()
        warehouse = Warehouse(settings.warehouse_path)
        warehouse.replace("features.features", features)
        warehouse.replace("labels.forward_returns", labels_known_on(prices, None))
        good += run(instance, ["walk_forward_plan", "fit_baseline"], partition_key=WINDOW)
        assert all(r.success for r in good), [failure_messages(r) for r in good]
        providers.refuse = True
        failed = run(instance, "key:market/prices")
        assert not failed[0].success
        failure = failure_messages(failed[0])
        runs = instance.get_runs()
        events = [serialize_value(e) for r in runs for e in instance.all_logs(r.run_id)]

    # The searches below are not vacuous: the key was sent, and each place holds what it should.
    assert {r.query.get("apiKey") for r in server.requests if r.path.startswith("/v2/")} == {KEY}
    assert "NOT_AUTHORIZED" in failure and "key *** is not entitled" in failure
    assert "HTTP Request: GET" in caplog.text and "HTTP 429" in caplog.text
    assert len(runs) == 3 and any("ASSET_MATERIALIZATION" in e for e in events)
    assert warehouse.query("SELECT count(DISTINCT symbol) n FROM market.prices")["n"][0] == 4

    hits = []
    hits += ["caplog"] if KEY in caplog.text else []
    hits += ["failure message"] if KEY in failure else []
    hits += [f"dagster event {e[:80]}" for e in events if KEY in e]
    hits += [f"dagster file {p}" for p in files_under(tmp_path / "dagster") if KEY.encode() in p.read_bytes()]
    # QUANT_HOME: MLflow's store and artifacts, the stored models, the warehouse file and its lock files.
    home_files = files_under(settings.home)
    assert any(p.name == "mlflow.db" for p in home_files)
    hits += [f"file {p}" for p in home_files if KEY.encode() in p.read_bytes()]
    hits += mlflow_hits(settings)
    hits += warehouse_hits(warehouse)
    assert hits == []


def mlflow_hits(settings) -> list[str]:
    client = mlflow.MlflowClient(settings.mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)],
                              run_view_type=ViewType.ALL)
    assert len(runs) == 1 and runs[0].data.params["model"] == "baseline"  # the fit's run, with its params
    return [f"mlflow run {r.info.run_id} {where}" for r in runs
            for where, texts in (("params", r.data.params.items()), ("tags", r.data.tags.items()),
                                 ("metrics", ((k, "") for k in r.data.metrics)), ("name", [(r.info.run_name, "")]))
            for pair in texts if KEY in " ".join(map(str, pair))]


def warehouse_hits(warehouse) -> list[str]:
    """Every text column of every table, searched in DuckDB (the file itself is compressed)."""
    columns = warehouse.query("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                              "WHERE data_type = 'VARCHAR' AND table_catalog = current_database()")
    assert len(columns) > 10 and "market" in set(columns["table_schema"])
    hits = []
    for row in columns.itertuples():
        found = warehouse.query(f'SELECT count(*) n FROM "{row.table_schema}"."{row.table_name}" '
                                f'WHERE contains("{row.column_name}", ?)', [KEY])["n"][0]
        if found:
            hits.append(f"{row.table_schema}.{row.table_name}.{row.column_name}: {found} rows")
    return hits
