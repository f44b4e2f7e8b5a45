"""One day's step on its loaded inputs alone: the bands and allocations the warehouse got, the one distribution they
share, and the day's refusals."""

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.models.base import QUANTILE_COLUMNS
from quant_assets.lib.projections.day_step import STALE_DAYS, latest_marginals, project_and_allocate, write_projection
from quant_assets.lib.projections.kelly import scenario_kelly
from quant_assets.lib.projections.montecarlo import PORTFOLIO, simulate
from quant_assets.lib.projections.sizing import decide
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets_tests.lib.projections.conftest import SURFACE_POLICY


def test_the_days_bands_and_allocations_come_from_its_loaded_frames_as_the_warehouse_got_them(surface):
    projection = project_and_allocate(surface.projection, SURFACE_POLICY)
    stored = surface.tables["allocations"].sort_values("rank", ignore_index=True)
    assert projection.allocations["symbol"].tolist() == stored["symbol"].tolist()
    for column in ("rank", "kelly_weight", "half_kelly_weight", "confidence", "last_price", "expected_return_1m"):
        np.testing.assert_array_equal(projection.allocations[column], stored[column])
    keys = ["symbol", "horizon"]
    bands = projection.bands.merge(surface.tables["bands"], on=keys, suffixes=("", "_stored"))
    assert len(bands) == len(projection.bands) == len(surface.tables["bands"])
    for column in ("p10", "p25", "p50", "p75", "p90", "prob_loss"):
        np.testing.assert_array_equal(bands[column], bands[f"{column}_stored"])
    # The summary holds data, never renderings: its tables are frames, and nothing is drawn.
    summary = projection.summary
    held = projection.allocations[projection.allocations["half_kelly_weight"] > 0]
    pd.testing.assert_frame_equal(summary["weights"].reset_index(drop=True),
                                  held[summary["weights"].columns].reset_index(drop=True))
    assert summary["table_summary"]["horizon"].tolist() == ["1w", "1m", "3m", "1y"]
    kelly_held = projection.allocations[projection.allocations["kelly_weight"] > 0]
    assert set(summary["eligible"]) == set(kelly_held["symbol"]) and set(held["symbol"]) <= set(summary["eligible"])
    assert summary["kelly_fraction"] == 0.5
    assert summary["invested_fractional_kelly"] == pytest.approx(held["half_kelly_weight"].sum(), abs=1e-4)
    assert not any(isinstance(v, bytes) for v in summary.values())
    assert PORTFOLIO in set(projection.bands["symbol"])


def test_a_day_without_a_session_gives_nothing_and_stale_or_missing_forecasts_are_named(surface):
    inputs = surface.projection
    assert project_and_allocate(dataclasses.replace(inputs, has_session=False), SURFACE_POLICY) is None
    later = dataclasses.replace(inputs, as_of=inputs.as_of + timedelta(days=STALE_DAYS + 1))
    with pytest.raises(ValueError, match=rf"has no rows within {STALE_DAYS} days of .*its latest rows are of"):
        project_and_allocate(later, SURFACE_POLICY)
    with pytest.raises(ValueError, match="no ensemble for a window containing"):
        project_and_allocate(dataclasses.replace(inputs, window=None), SURFACE_POLICY)


def test_the_bands_shown_are_those_of_the_scenarios_the_weights_were_solved_on(surface):
    # Sizing means a fifth of a std above the ensemble's means at every horizon, known exactly (no shrinkage): the
    # sized scenarios sit off the raw simulation, and the bands must follow them, not the raw ensemble.
    inputs = dataclasses.replace(surface.projection, marginals=surface.projection.marginals.assign(
        sizing_mean=lambda f: f["mean"] + 0.2 * f["std"], sizing_prior=0.0, mean_uncertainty=0.0))
    projection = project_and_allocate(inputs, SURFACE_POLICY)
    marginals = latest_marginals(inputs)
    decision = decide(marginals, inputs.residuals, inputs.as_of, SURFACE_POLICY)
    raw = simulate(marginals[["symbol", "horizon", *QUANTILE_COLUMNS]], inputs.residuals,
                   n_scenarios=SURFACE_POLICY.n_scenarios, seed=SURFACE_POLICY.seed)
    allocations = projection.allocations.set_index("symbol")
    rows = marginals.set_index(["symbol", "horizon"])
    symbols = decision.scenarios.symbols
    for band in projection.bands[projection.bands["symbol"] != PORTFOLIO].itertuples():
        sized = decision.scenarios.returns[band.horizon][:, symbols.index(band.symbol)]
        row = rows.loc[(band.symbol, band.horizon)]
        assert band.p50 == pytest.approx(np.median(sized), abs=1e-15)
        assert np.quantile(sized, 0.9) == pytest.approx(band.p90, abs=1e-15)
        # Shifted to the sizing mean at every horizon, so the P50 moved off the raw simulation's by the shift.
        assert np.log(np.exp(sized).mean()) == pytest.approx(row["sizing_mean"] + row["std"] ** 2 / 2, abs=1e-12)
        assert band.p50 - np.median(raw.returns[band.horizon][:, symbols.index(band.symbol)]) == pytest.approx(
            sized[0] - raw.returns[band.horizon][0, symbols.index(band.symbol)], abs=1e-12)
        assert abs(sized[0] - raw.returns[band.horizon][0, symbols.index(band.symbol)]) > 0.1 * row["std"]
        assert allocations.loc[band.symbol, f"expected_return_{band.horizon}"] == pytest.approx(np.expm1(sized).mean())
    # The advised weights are the fractional-Kelly solution on those scenarios, and the portfolio band is theirs.
    weights = allocations["half_kelly_weight"].reindex(symbols).to_numpy()
    held = [symbols.index(s) for s in decision.eligible]
    solved = scenario_kelly(np.expm1(decision.scenarios.returns[SURFACE_POLICY.horizon][:, held]),
                            cap=SURFACE_POLICY.cap, fraction=SURFACE_POLICY.kelly_fraction)
    np.testing.assert_allclose(weights[held], solved, atol=1e-12)
    assert weights.sum() > 0
    for band in projection.bands[projection.bands["symbol"] == PORTFOLIO].itertuples():
        portfolio = np.log1p(np.expm1(decision.scenarios.returns[band.horizon]) @ weights)
        np.testing.assert_allclose([band.p10, band.p50, band.p90], np.quantile(portfolio, [0.1, 0.5, 0.9]), atol=1e-15)


def test_the_projector_shows_the_expected_return_at_the_policys_horizon(surface, tmp_path):
    week = dataclasses.replace(SURFACE_POLICY, horizon="1w")
    projection = project_and_allocate(surface.projection, week)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    write_projection(warehouse, surface.projection.as_of, projection)
    plan = warehouse.query("SELECT symbol, expected_return FROM projector(10000) WHERE rank IS NOT NULL")
    allocations = warehouse.query("SELECT symbol, sizing_horizon, expected_return_1w, expected_return_1m "
                                  "FROM projections.allocations").set_index("symbol")
    assert len(plan) > 0 and (allocations["sizing_horizon"] == "1w").all()
    for row in plan.itertuples():
        assert row.expected_return == pytest.approx(round(allocations.loc[row.symbol, "expected_return_1w"], 4))
        assert row.expected_return != pytest.approx(round(allocations.loc[row.symbol, "expected_return_1m"], 4))


def test_growth_contributions_by_hand():
    from quant_assets.lib.projections.day_step import growth_contributions

    # Two equally likely scenarios: +10% / -5% for A, +2% / +4% for B, held 50% / 30%.
    r = np.array([[0.10, 0.02], [-0.05, 0.04]])
    w = np.array([0.5, 0.3])
    wealth = [1 + 0.5 * 0.10 + 0.3 * 0.02, 1 - 0.5 * 0.05 + 0.3 * 0.04]
    expected = [0.5 * (0.10 / wealth[0] - 0.05 / wealth[1]) / 2, 0.3 * (0.02 / wealth[0] + 0.04 / wealth[1]) / 2]
    np.testing.assert_allclose(growth_contributions(r, w), expected, rtol=1e-12)
    assert growth_contributions(r, np.array([0.0, 0.3]))[0] == 0.0


def test_trades_are_ranked_by_weight_then_by_contribution_to_expected_log_growth_and_carry_the_gain_probability(surface):
    projection = project_and_allocate(surface.projection, SURFACE_POLICY)
    ranked = projection.allocations.sort_values("rank")
    keys = list(zip(-ranked["half_kelly_weight"], -ranked["growth_contribution"], ranked["symbol"]))
    assert keys == sorted(keys) and ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    # On the surface several positions sit at the cap: the tie is broken by what each adds to the log growth, not by
    # the confidence (a base rate for some of them).
    capped = ranked[ranked["half_kelly_weight"] == ranked["half_kelly_weight"].max()]
    assert len(capped) >= 2 and capped["growth_contribution"].is_monotonic_decreasing
    marginals = latest_marginals(surface.projection)
    at_horizon = marginals[marginals["horizon"] == SURFACE_POLICY.horizon].set_index("symbol")
    for row in ranked.itertuples():
        source = at_horizon.loc[row.symbol, "confidence_source"]
        assert row.confidence_source == source and row.prob_gain == at_horizon.loc[row.symbol, "prob_gain"]
        assert row.confidence == (row.prob_gain if source == "calibrated" else row.prob_gain_base_rate)
