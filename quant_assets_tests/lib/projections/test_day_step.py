"""One day's step on its loaded inputs alone: the bands and allocations the warehouse got, and the day's refusals."""

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.projections.day_step import STALE_DAYS, project_and_allocate
from quant_assets.lib.projections.montecarlo import PORTFOLIO
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
    assert set(summary["eligible"]) == set(held["symbol"])
    assert summary["invested_half_kelly"] == pytest.approx(held["half_kelly_weight"].sum(), abs=1e-4)
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
