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
