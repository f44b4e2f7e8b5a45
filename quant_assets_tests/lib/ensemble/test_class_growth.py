"""The classes' long-run growth the sizing prior assumes, over the window's training span in both modes, by hand."""

import math
from datetime import date

import pandas as pd
import pytest

from quant_assets.lib.ensemble.window import class_growth
from quant_assets.lib.storage.warehouse import Warehouse, replace_in

WINDOW = date(2022, 7, 1)


def _warehouse(path, train_start):
    features = pd.DataFrame({
        "symbol": ["A", "A", "A", "B", "C", "C"],
        "asset_class": ["equity", "equity", "equity", "equity", "crypto", "crypto"],
        "date": [date(2019, 6, 3), date(2021, 6, 1), date(2022, 6, 30), date(2021, 6, 2), date(2019, 6, 3),
                 date(2022, 7, 2)],  # C's second row is inside the window: never part of the training span
        "ret_1d": [0.03, 0.01, -0.02, 0.005, 0.10, 0.50]})
    plans = pd.DataFrame({"window_start": [WINDOW], "window_end": [date(2022, 8, 1)], "horizon": ["1w"],
                          "train_start": [train_start], "train_label_end_before": [date(2022, 6, 24)],
                          "embargo_days": [7], "mode": ["rolling" if train_start else "expanding"]})
    warehouse = Warehouse(path)
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS features")
        con.register("f", features)
        con.execute("CREATE TABLE features.features AS SELECT * FROM f")
        replace_in(con, "forecasts.plans", plans.astype({"train_start": "datetime64[ns]"}), None)
    return warehouse


def test_class_growth_in_rolling_and_expanding_mode(tmp_path):
    rolling = class_growth(_warehouse(tmp_path / "rolling.duckdb", date(2020, 7, 1)), WINDOW)
    assert rolling["equity"] == pytest.approx(math.log((math.exp(0.01) + math.exp(-0.02) + math.exp(0.005)) / 3))
    assert "crypto" not in rolling  # its only training-span row is before 2020-07-01
    expanding = class_growth(_warehouse(tmp_path / "expanding.duckdb", None), WINDOW)
    assert expanding["equity"] == pytest.approx(
        math.log((math.exp(0.03) + math.exp(0.01) + math.exp(-0.02) + math.exp(0.005)) / 4))
    assert expanding["crypto"] == pytest.approx(0.10)
