"""Why this trade on the surface warehouse: the members' forecasts, their spread, the skill, the probability of a
gain and the weight's limit are what the warehouse stores."""

from datetime import date

import numpy as np
import pytest

from quant_assets.demo.surface import build_surface_warehouse
from quant_assets.lib.projections.day_step import project_day
from quant_assets.lib.projections.sizing import SizingPolicy
from quant_assets.lib.projections.why import NoWhy, load_why_inputs, why


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return build_surface_warehouse(tmp_path_factory.mktemp("why") / "warehouse.duckdb")


def test_each_position_shows_the_stored_members_skill_probability_and_limit(warehouse):
    with warehouse.reader() as con:
        inputs = load_why_inputs(con)
        [answer] = why(inputs, "AAPL")
        members = con.execute(
            """SELECT model, mean, q10, q90 FROM forecasts.predictions WHERE symbol = 'AAPL' AND horizon = '1m'
               AND model <> 'baseline' AND window_start = ? AND date <= ?
               QUALIFY date = max(date) OVER (PARTITION BY model) ORDER BY model""", [inputs.window, inputs.as_of]).df()
        stored = con.execute("SELECT * FROM projections.allocations WHERE symbol = 'AAPL' AND as_of = ?",
                             [inputs.as_of]).df().iloc[0]
        crps = dict(con.execute("SELECT model, crps FROM forecasts.scores WHERE window_start = ? AND horizon = '1m'",
                                [inputs.window]).fetchall())
    assert answer["as_of"] == inputs.as_of and answer["horizon"] == "1m"
    assert [m["model"] for m in answer["members"]] == members["model"].tolist() == ["garch", "lightgbm", "ridge"]
    assert [m["mean"] for m in answer["members"]] == members["mean"].tolist()
    assert [m["p10"] for m in answer["members"]] == members["q10"].tolist()
    assert answer["member_spread"] == pytest.approx(np.std(members["mean"]))
    assert answer["skill"] == pytest.approx(1 - crps["ensemble"] / crps["baseline"]) and answer["skill"] > 0
    assert answer["prob_gain"] == stored["prob_gain"] and answer["confidence"] == stored["confidence"]
    assert answer["prob_gain_base_rate"] == stored["prob_gain_base_rate"] == 0.54
    assert answer["confidence_source"] == "calibrated"
    assert answer["weight"] == stored["half_kelly_weight"]
    assert answer["weight_limit"] == stored["weight_limit"] and answer["weight_limit"] in {"cap", "budget", "utility"}
    assert answer["prior"] == 0.0 and answer["shrinkage"] == 1.0


def test_every_position_has_a_limit_and_unknown_days_and_symbols_are_named(warehouse):
    with warehouse.reader() as con:
        inputs = load_why_inputs(con)
        answers = why(inputs)
        assert {a["symbol"] for a in answers} == set(inputs.allocations["symbol"])
        assert all(a["weight_limit"] in {"cap", "budget", "utility", "not eligible"} for a in answers)
        assert any(a["weight_limit"] == "not eligible" and "not positive" in a["weight_limit_reason"] for a in answers)
        with pytest.raises(NoWhy, match="no advice on TSLA stored for"):
            why(inputs, "TSLA")
        with pytest.raises(NoWhy, match="no advice stored for 2001-01-02"):
            load_why_inputs(con, date(2001, 1, 2))


def test_an_older_warehouse_without_the_limit_columns_answers_and_gains_them_on_the_next_write(tmp_path):
    warehouse = build_surface_warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.writer() as con:
        for column in ("weight_limit", "weight_limit_reason", "shrinkage"):
            con.execute(f"ALTER TABLE projections.allocations DROP COLUMN {column}")
    with warehouse.reader() as con:
        [old] = why(load_why_inputs(con), "AAPL")
    assert old["weight_limit"] is None and old["shrinkage"] is None and len(old["members"]) == 3
    as_of = old["as_of"]
    project_day(warehouse, as_of, SizingPolicy(n_scenarios=2000))
    with warehouse.reader() as con:
        [new] = why(load_why_inputs(con), "AAPL")
    assert new["weight_limit"] == "cap" and new["shrinkage"] == 1.0
