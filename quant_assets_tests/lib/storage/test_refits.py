"""What a restatement leaves stale (issue #21, item 1): the first stored day whose return it changes, the fits,
ensembles and advice days whose inputs reach it, and the writes that refresh them once the features are rebuilt."""

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.lib.market.adjustments import mark_propagated, returns_changed_from
from quant_assets.lib.storage import refits
from quant_assets.lib.storage.warehouse import Warehouse, replace_in

DAYS = [date(2022, 3, 1) + timedelta(days=i) for i in range(10)]


def history(closes: list[float], symbol: str = "ACME") -> pl.DataFrame:
    return pl.DataFrame({"symbol": symbol, "date": DAYS[:len(closes)], "close": closes, "volume": [1e6] * len(closes)})


def restated(frame: pl.DataFrame, closes: dict[date, float], volume_divisor: float = 1.0) -> pl.DataFrame:
    rows = frame.filter(pl.col("date").is_in(list(closes)))
    return rows.with_columns(pl.col("date").replace_strict(closes, return_dtype=pl.Float64).alias("close"),
                             pl.col("volume") / volume_divisor)


def changed_from(old: pl.DataFrame, new: pl.DataFrame):
    return returns_changed_from(old, new).row(0, named=True)["returns_changed_from"]


def test_a_factor_over_the_whole_stored_history_changes_no_return():
    old = history([100.0, 101.0, 99.0, 102.0])
    new = restated(old, {d: 0.25 * c for d, c in zip(DAYS, [100.0, 101.0, 99.0, 102.0])}, volume_divisor=0.25)
    assert changed_from(old, new) is None


def test_an_adjustment_of_the_days_before_a_stored_ex_date_changes_the_ex_date_return():
    old = history([100.0, 101.0, 99.0, 97.0, 98.0])
    # The dividend's ex-date is DAYS[3]: the provider now scales the days before it by 0.98, the rest stays.
    new = restated(old, {d: 0.98 * c for d, c in zip(DAYS[:3], [100.0, 101.0, 99.0])})
    assert changed_from(old, new) == DAYS[3]


def test_a_corrected_print_changes_its_own_day():
    old = history([100.0, 101.0, 150.0, 102.0, 103.0])
    assert changed_from(old, restated(old, {DAYS[2]: 101.5})) == DAYS[2]


def test_a_volume_correction_alone_counts():
    old = history([100.0, 101.0, 102.0])
    new = old.filter(pl.col("date") == DAYS[1]).with_columns(pl.col("volume") * 3)
    assert changed_from(old, new) == DAYS[1]


def stored_outputs(path):
    """Two windows of fits and ensembles (March and April), and three advice days."""
    def predictions(window: date, last: date, model: str) -> pd.DataFrame:
        dates = pd.date_range(window, last).date
        return pd.DataFrame({"window_start": window, "model": model, "symbol": "ACME", "date": dates, "horizon": "1w",
                             "mean": 0.0})

    march, april = date(2022, 3, 1), date(2022, 4, 1)
    fits = pd.concat([predictions(w, last, m) for w, last in ((march, date(2022, 3, 31)), (april, date(2022, 4, 20)))
                      for m in ("lightgbm", "ridge")])
    ensemble = fits[fits["model"] == "ridge"].drop(columns="model")
    advice = pd.DataFrame({"as_of": [date(2022, 4, 5), date(2022, 4, 19), date(2022, 4, 20)], "symbol": "ACME",
                           "rank": 1, "asset_class": "equity", "kelly_weight": 0.1, "half_kelly_weight": 0.05})
    warehouse = Warehouse(path)
    with warehouse.writer() as con:
        replace_in(con, "forecasts.predictions", fits, None)
        replace_in(con, "forecasts.ensemble", ensemble, None)
        replace_in(con, "projections.allocations", advice, None)
    return warehouse, march, april


def record_event(warehouse: Warehouse, changed: date | None, recorded_at: datetime) -> int:
    event = pd.DataFrame({"symbol": ["ACME"], "effective_date": [changed or date(2022, 4, 19)], "factor": [0.98],
                          "detected_on": [date(2022, 4, 21)], "restated_from": [date(2021, 1, 4)],
                          "restated_to": [date(2022, 4, 18)], "rows_restated": [300], "source": ["polygon"],
                          "recorded_at": [recorded_at], "propagated_at": [None], "returns_changed_from": [changed]})
    with warehouse.writer() as con:
        replace_in(con, "market.adjustments", event, None)
        con.register("events", event)
        return refits.mark_restated_reads(con, "events")


def test_what_reads_a_changed_day_is_marked_and_refreshed_only_after_the_features(tmp_path):
    warehouse, march, april = stored_outputs(tmp_path / "w.duckdb")
    recorded = datetime(2022, 4, 21, 22)
    assert record_event(warehouse, date(2022, 4, 19), recorded) == 2 + 1 + 2  # April's two fits and ensemble, two days
    pending = refits.pending_refits(warehouse)
    first = pending.iloc[0]
    assert list(first["symbols"]) == ["ACME"] and first["returns_changed_from"] == date(2022, 4, 19)
    assert first["recorded_at"] == pd.Timestamp(recorded)
    assert sorted(map(tuple, pending[["stage", "model", "partition_date"]].values.tolist())) == [
        ("advice", "", date(2022, 4, 19)), ("advice", "", date(2022, 4, 20)), ("ensemble", "", april),
        ("fit", "lightgbm", april), ("fit", "ridge", april)]
    # Only April's fits can run first; its ensemble waits for them, the advice for every window.
    assert refits.runnable_refits(pending) == [("fit", april)]

    # A refit on the old features (before the features run marked the event propagated) refreshes nothing.
    with warehouse.writer() as con:
        refits.refresh(con, refits.FIT, april, ["lightgbm", "ridge"])
    assert len(refits.pending_refits(warehouse)) == 5

    mark_propagated(warehouse, recorded)
    with warehouse.writer() as con:
        refits.refresh(con, refits.FIT, april, ["lightgbm"])
    assert refits.runnable_refits(refits.pending_refits(warehouse)) == [("fit", april)]
    with warehouse.writer() as con:
        refits.refresh(con, refits.FIT, april, ["ridge"])
    assert refits.runnable_refits(refits.pending_refits(warehouse)) == [("ensemble", april)]
    with warehouse.writer() as con:
        refits.refresh(con, refits.ENSEMBLE, april)
    pending = refits.pending_refits(warehouse)
    assert refits.runnable_refits(pending) == [("advice", date(2022, 4, 19)), ("advice", date(2022, 4, 20))]
    for day in (date(2022, 4, 19), date(2022, 4, 20)):
        with warehouse.writer() as con:
            refits.refresh(con, refits.ADVICE, day)
    assert refits.pending_refits(warehouse).empty
    assert march not in set(warehouse.query("SELECT partition_date FROM market.restatement_refits")["partition_date"].dt.date)


def test_a_restatement_that_changes_no_stored_return_marks_nothing(tmp_path):
    warehouse, _, _ = stored_outputs(tmp_path / "w.duckdb")
    assert record_event(warehouse, None, datetime(2022, 4, 21, 22)) == 0
    assert refits.pending_refits(warehouse).empty and refits.runnable_refits(refits.pending_refits(warehouse)) == []


def test_windows_wait_in_order_for_their_ensembles():
    pending = pd.DataFrame({"stage": ["fit", "ensemble", "ensemble", "advice"], "model": ["ridge", "", "", ""],
                            "partition_date": [date(2022, 5, 1), date(2022, 4, 1), date(2022, 5, 1), date(2022, 5, 3)]})
    # April's ensemble can run (no fit of April or earlier waits); May's waits for its fits and for April's.
    assert refits.runnable_refits(pending) == [("fit", date(2022, 5, 1)), ("ensemble", date(2022, 4, 1))]
    assert np.all(pending["stage"].isin(refits.STAGES))
