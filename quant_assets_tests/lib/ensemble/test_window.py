"""The window's ensemble is load, pure build, write: the build runs on frames in memory, with no warehouse."""

import json

import duckdb
import numpy as np
import pandas as pd

from quant_assets.lib.ensemble.build import build_class_ensembles
from quant_assets.lib.ensemble.confidence import CONFIDENCE_COLUMNS
from quant_assets.lib.ensemble.window import WindowInputs, build_window_ensemble
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS
from quant_assets_tests.lib.ensemble.test_ensemble import history_windows, synthetic_window, with_reference

CLASSES = {"AAA": "equity", "BBB": "equity", "CCC": "crypto", "DDD": "crypto"}


def test_the_window_ensemble_is_built_from_frames_alone_without_duckdb(monkeypatch):
    rng = np.random.default_rng(51)
    start = pd.Timestamp("2024-01-01")
    current = with_reference(synthetic_window(rng, start, 20, models=("good", "biased")), rng)
    current.loc[current["date"] >= start + pd.Timedelta(days=14), ["realized", "label_end"]] = [np.nan, pd.NaT]
    history = history_windows(52, n_windows=3, n_dates=150, models=("good", "biased"))
    history = pd.concat([with_reference(w, rng) for _, w in history.groupby("window_start")], ignore_index=True)
    inputs = WindowInputs(start.date(), current, history, CLASSES, drift_days={"1w": 400.0},
                          class_growth={"equity": 0.0004, "crypto": 0.001})

    def no_database(*args, **kwargs):
        raise AssertionError("the pure window build opened a DuckDB connection")

    monkeypatch.setattr(duckdb, "connect", no_database)
    result = build_window_ensemble(inputs)

    # The rows forecasts.ensemble holds: one per key of the window, named by its window_start.
    keys = ["symbol", "date", "horizon"]
    assert list(result.ensemble.columns) == ["window_start", *keys, *DISTRIBUTION_COLUMNS, *CONFIDENCE_COLUMNS, "sizing_mean",
                                             "mean_uncertainty", "sizing_prior", "beats_reference", "realized", "label_end"]
    assert len(result.ensemble) == len(current.drop_duplicates(keys)) and result.window_start == start.date()
    assert (result.ensemble["window_start"] == start.date()).all()
    # They are the class-by-class ensemble against the random walk, with the outcomes known now.
    expected, info = build_class_ensembles(current, history, start.date(), CLASSES, reference="baseline",
                                           reference_drift_days={"1w": 400.0},
                                           class_growth={"equity": 0.0004, "crypto": 0.001})
    pd.testing.assert_frame_equal(result.ensemble[expected.columns.drop("window_start")],
                                  expected.drop(columns="window_start"))
    assert json.dumps(result.info) == json.dumps(info) and set(result.info) == {"equity", "crypto"}
    # Its scores count only the realized rows.
    realized = int(result.ensemble["realized"].notna().sum())
    assert 0 < realized < len(result.ensemble)
    assert result.scores[["model", "horizon", "n"]].to_dict("records") == [{"model": "ensemble", "horizon": "1w",
                                                                          "n": realized}]
    assert (result.scores["window_start"] == start.date()).all()


def test_the_long_run_share_of_gains_counts_only_the_labels_the_window_trained_on(tmp_path):
    from datetime import date

    from quant_assets.lib.ensemble.window import class_gain_rates
    from quant_assets.lib.storage.warehouse import Warehouse, replace_in

    rng = np.random.default_rng(8)
    dates = pd.bdate_range("2019-01-01", "2021-03-01")
    labels = pd.concat([pd.DataFrame({"symbol": s, "date": dates, "asset_class": c,
                                      "fwd_1w": rng.normal(mu, 0.02, len(dates)), "end_1w": dates + pd.Timedelta(days=7)})
                        for s, c, mu in (("AAA", "equity", 0.005), ("CCC", "crypto", -0.005))], ignore_index=True)
    for h in ("1m", "3m", "1y"):
        labels[f"fwd_{h}"], labels[f"end_{h}"] = np.nan, pd.NaT
    window, train_start, cut = date(2021, 2, 1), date(2019, 6, 3), date(2021, 1, 25)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS labels")
        con.register("frame", labels)
        con.execute("CREATE TABLE labels.forward_returns AS SELECT * FROM frame")
        replace_in(con, "market.prices", labels[["symbol", "date", "asset_class"]].assign(close=1.0, source="test"), None)
        replace_in(con, "forecasts.plans", pd.DataFrame([{
            "window_start": window, "window_end": date(2021, 3, 1), "horizon": "1w", "train_start": train_start,
            "train_label_end_before": cut, "embargo_days": 5, "mode": "rolling"}]), None)
    rates = class_gain_rates(warehouse, window)
    used = labels[(labels["date"] >= pd.Timestamp(train_start)) & (labels["end_1w"] < pd.Timestamp(cut))]
    expected = (used["fwd_1w"] > 0).groupby(used["asset_class"]).mean()
    assert rates == {"equity": {"1w": expected["equity"]}, "crypto": {"1w": expected["crypto"]}}
