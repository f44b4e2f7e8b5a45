"""The surface warehouse's inputs, loaded once and then deleted: what the pure parts compute from them, they compute
from frames alone."""

import shutil
from dataclasses import dataclass

import pandas as pd
import pytest

from quant_assets.demo.surface import build_surface_warehouse
from quant_assets.lib.projections.day_step import ProjectionInputs, load_projection_inputs
from quant_assets.lib.projections.decision_backtest import BacktestInputs, load_backtest_inputs
from quant_assets.lib.projections.sizing import SizingPolicy

# The policy the surface warehouse was projected and backtested with.
SURFACE_POLICY = SizingPolicy(n_scenarios=2000)


@dataclass
class Surface:
    projection: ProjectionInputs
    backtest: BacktestInputs
    tables: dict[str, pd.DataFrame]


@pytest.fixture(scope="session")
def surface(tmp_path_factory) -> Surface:
    """The latest day's projection inputs and the backtest's inputs (with the decisions it stored), and the
    ``projections.*`` tables the real functions wrote from them."""
    folder = tmp_path_factory.mktemp("surface")
    warehouse = build_surface_warehouse(folder / "warehouse.duckdb")
    as_of = warehouse.query("SELECT max(as_of) AS d FROM projections.allocations")["d"][0].date()
    loaded = Surface(load_projection_inputs(warehouse, as_of), load_backtest_inputs(warehouse),
                     {t: warehouse.query(f"SELECT * FROM projections.{t}") for t in ("bands", "allocations", "backtest")})
    shutil.rmtree(folder)
    return loaded
