"""Corporate actions (issue #21, item 1): a loopback Polygon server that starts answering a 4:1 split and, two
sessions late, a 2% dividend adjustment mid-history. The daily runs' overlap finds both, restates the stored history
(no -75% day remains), records them in market.adjustments, and the restatements_propagated check fails until the
features have been rebuilt and the advice of the days that read the dividend's ex-date (whose stored return the late
adjustment changed) has been re-materialized, which the restatement_refits sensor requests; the rebuilt features and
labels equal a full reload's."""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from quant_assets.lib.market.providers import polygon
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.settings import Settings
from quant_assets_tests.defs.test_advice_ledger import synthetic_ensemble
from quant_assets_tests.defs.test_incremental_features import assert_same_tables, model_tables
from quant_assets_tests.support.loopback import LoopbackServer, Request, json_reply
from quant_assets_tests.support.runs import materialize

FIRST, SPLIT, DIVIDEND = date(2020, 1, 6), date(2022, 3, 8), date(2022, 3, 10)
DIVIDEND_KNOWN = date(2022, 3, 14)  # the provider adjusts for the dividend two sessions after its ex-date
RUN_DAYS = [date(2022, 3, 7) + timedelta(days=i) for i in range(10) if (date(2022, 3, 7) + timedelta(days=i)).weekday() < 5]
SYMBOLS = ("ACME", "BETA", "SP500")
EVENTS = {"ACME": (SPLIT, SPLIT, 0.25), "BETA": (DIVIDEND, DIVIDEND_KNOWN, 0.98)}  # effective, known from, factor
PRICES = "key:market/prices"
MARKET = "key:market/prices or key:market/onchain"  # the features read both (no crypto here: on-chain is empty)
# Advice given before the dividend's adjustment was known: the last two days read the ex-date's stored return.
ADVICE_DAYS = (date(2022, 3, 9), DIVIDEND, date(2022, 3, 11))


def weekdays(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1) if (first + timedelta(days=i)).weekday() < 5]


def traded(symbol: str, day: date) -> float:
    """The close as traded: a smooth path, cut by 4 on the split and by 2% on the dividend's ex-date."""
    i = (day - FIRST).days
    close = (40 + 10 * SYMBOLS.index(symbol)) * math.exp(0.0004 * i + 0.02 * math.sin(i / 9 + SYMBOLS.index(symbol)))
    effective, _, factor = EVENTS.get(symbol, (None, None, 1.0))
    return close * factor if effective is not None and day >= effective else close


def adjusted(symbol: str, day: date, as_of: date) -> float:
    """What the provider answers on ``as_of``: the traded close, adjusted for every event it knows of."""
    effective, known, factor = EVENTS.get(symbol, (None, None, 1.0))
    return traded(symbol, day) * (factor if effective is not None and as_of >= known and day < effective else 1.0)


class Provider:
    """Polygon's aggregates endpoint answering as the provider would on the day the clock is at."""

    def __init__(self) -> None:
        self.as_of = FIRST

    def __call__(self, request: Request):
        parts = request.path.split("/")
        symbol, first, last = parts[4], date.fromisoformat(parts[8]), date.fromisoformat(parts[9])
        bars = []
        for day in weekdays(first, min(last, self.as_of)):
            c = adjusted(symbol, day, self.as_of)
            stamp = int(datetime(day.year, day.month, day.day, 5, tzinfo=UTC).timestamp() * 1000)
            bars.append({"o": c * 1.001, "h": c * 1.01, "l": c * 0.99, "c": c, "v": 1e6 / c, "t": stamp})
        return json_reply({"ticker": symbol, "status": "OK", "results": bars})


@pytest.fixture
def provider(quant_home, monkeypatch):
    for name, value in {"QUANT_PROVIDER": "polygon", "POLYGON_API_KEY": "pk-restatements", "QUANT_UNIVERSE": ",".join(SYMBOLS),
                        "QUANT_HISTORY_START": str(FIRST)}.items():
        monkeypatch.setenv(name, value)
    answers = Provider()
    with LoopbackServer(answers) as server:
        monkeypatch.setattr(polygon, "fetch_polygon_prices", functools.partial(
            polygon.fetch_polygon_prices, base_url=server.url, sleep=lambda s: None))
        yield answers, server


def on(day: date, answers: Provider, monkeypatch) -> None:
    answers.as_of = day
    monkeypatch.setenv("QUANT_TODAY", str(day))


def stored_prices() -> pl.DataFrame:
    frame = pl.from_pandas(Warehouse(Settings().warehouse_path).query("SELECT * FROM market.prices ORDER BY symbol, date"))
    return frame.with_columns(pl.col("date").cast(pl.Date))


def check_result(result, name="restatements_propagated"):
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert len(evaluations) == 1
    return evaluations[0]


def materialize_features(day: date):
    """The dbt assets for the days up to ``day`` as the daemon runs them (one run), without the lookahead audit."""
    from quant_assets.definitions import build_definitions

    defs = build_definitions()
    features = dg.AssetSelection.groups("features").without_checks()
    return dg.materialize([*defs.assets, *(defs.asset_checks or [])], selection=features,
                          resources=defs.resources, tags={"dagster/asset_partition_range_start": str(day),
                                                          "dagster/asset_partition_range_end": str(day)})


def run_check():
    """The restatements_propagated check on its own, as a person re-runs it in the UI."""
    from quant_assets.definitions import build_definitions

    defs = build_definitions()
    key = dg.AssetCheckKey(dg.AssetKey(["market", "prices"]), "restatements_propagated")
    return dg.materialize([*defs.assets, *(defs.asset_checks or [])], resources=defs.resources,
                          selection=dg.AssetSelection.checks(key))


def advise(days) -> None:
    """Each day's advice through its Dagster partition, on a synthetic ensemble whose rows end before the ex-date (so
    no window reads it: the days after it advise from the latest rows, as a window's last days do)."""
    warehouse = Warehouse(Settings().warehouse_path)
    warehouse.replace("forecasts.ensemble", synthetic_ensemble(warehouse.query(
        "SELECT symbol, date FROM features.features WHERE date >= DATE '2022-03-01' AND date < ? ORDER BY ALL",
        [DIVIDEND])))
    for day in days:
        assert materialize(["projections", "allocations"], partition_key=str(day)).success


def sensor_requests():
    """The restatement_refits sensor's run requests, evaluated as the daemon would."""
    from quant_assets.definitions import build_definitions

    defs = build_definitions()
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs,
                                          resources={"warehouse": defs.resources["warehouse"]})
        return defs.get_sensor_def("restatement_refits")(context)


def test_a_split_and_a_late_dividend_are_restated_recorded_and_propagated(provider, monkeypatch, tmp_path):
    answers, server = provider
    on(RUN_DAYS[0], answers, monkeypatch)
    assert materialize(MARKET).success
    assert materialize_features(RUN_DAYS[0]).success
    before = stored_prices().height

    checks = {}
    for day in RUN_DAYS[1:]:
        on(day, answers, monkeypatch)
        result = materialize(PRICES, days=str(day))
        assert result.success
        checks[day] = check_result(result).passed
        assert server.requests[-1].path.endswith(f"/{day}")
        # Each daily fetch reached back over the last stored sessions (the overlap).
        assert date.fromisoformat(server.requests[-1].path.split("/")[8]) < day - timedelta(days=4)
        if day == ADVICE_DAYS[-1]:
            assert materialize_features(day).success
            advise(ADVICE_DAYS)
    assert checks[SPLIT] is False and checks[DIVIDEND_KNOWN] is False

    prices = stored_prices()
    assert prices.height == before + len(SYMBOLS) * (len(RUN_DAYS) - 1) == len(SYMBOLS) * len(weekdays(FIRST, RUN_DAYS[-1]))
    returns = prices.with_columns((pl.col("close") / pl.col("close").shift(1)).over("symbol").log().alias("r"))
    assert returns["r"].min() > -0.5
    # Stored history is what the provider answers today for all of it, to float precision.
    expected = np.array([adjusted(s, d, RUN_DAYS[-1]) for s, d in prices.select("symbol", "date").iter_rows()])
    np.testing.assert_allclose(prices["close"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(prices["volume"].to_numpy() * prices["close"].to_numpy(), 1e6, rtol=1e-9)

    events = pl.from_pandas(Warehouse(Settings().warehouse_path).query(
        "SELECT symbol, effective_date, factor, detected_on, restated_from, returns_changed_from, propagated_at "
        "FROM market.adjustments ORDER BY symbol"))
    assert events["symbol"].to_list() == ["ACME", "BETA"]
    assert [d.date() for d in events["effective_date"]] == [SPLIT, DIVIDEND]
    assert [d.date() for d in events["detected_on"]] == [SPLIT, DIVIDEND_KNOWN]
    np.testing.assert_allclose(events["factor"].to_numpy(), [0.25, 0.98], rtol=1e-12)
    assert [d.date() for d in events["restated_from"]] == [FIRST, FIRST]
    # The split was found on the fetch that brought it (no stored return changed); the dividend's adjustment came
    # after its ex-date was stored, changing that day's return. The features run of the advice propagated the split.
    assert [None if d is None else d.date() for d in events["returns_changed_from"]] == [None, DIVIDEND]
    assert events["propagated_at"].is_null().to_list() == [False, True]

    # The features run rebuilds from the earliest restated day; the check then passes.
    assert materialize_features(RUN_DAYS[-1]).success
    assert not Warehouse(Settings().warehouse_path).query(
        "SELECT propagated_at FROM market.adjustments")["propagated_at"].isna().any()
    # The advice that read the ex-date waits for its re-materialization, which the sensor requests.
    waiting = check_result(run_check())
    assert not waiting.passed and "advice 2022-03-10" in waiting.description and "2022-03-09" not in waiting.description
    requests = sensor_requests()
    assert [(r.job_name, r.partition_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in requests] == [
        ("projections", str(day), ["allocations", "projections"]) for day in ADVICE_DAYS[1:]]
    for request in requests:
        assert materialize(request.asset_selection, partition_key=request.partition_key).success
    assert check_result(run_check()).passed
    assert sensor_requests().skip_message == "nothing read restated prices"
    incremental = model_tables(Settings().warehouse_path)

    # A full reload: a fresh home loading everything the provider answers today, then one features build.
    monkeypatch.setenv("QUANT_HOME", str(tmp_path / "reload"))
    assert materialize(MARKET).success
    assert materialize_features(RUN_DAYS[-1]).success
    assert_same_tables(incremental, model_tables(Settings().warehouse_path))
