"""Group ``projections``: Monte Carlo bands and half-Kelly allocations as of the latest date, and the decision backtest."""

import dagster as dg

from quant_assets.defs.ensemble.assets import ENSEMBLE_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.decisions import SizingPolicy, decision_backtest, project_and_allocate

PERIODS_PER_YEAR = {"weekly": 52.0, "monthly": 12.0, "quarterly": 4.0}


class SizingConfig(dg.Config):
    """Sizing choices a user may change at launch time."""

    horizon: str = "1m"
    position_cap: float = 0.25
    min_confidence: float = 0.5
    n_scenarios: int = 10_000
    cost_bp: float = 10.0


def _policy(config: SizingConfig, seed: int) -> SizingPolicy:
    return SizingPolicy(horizon=config.horizon, cap=config.position_cap, min_confidence=config.min_confidence,
                        n_scenarios=config.n_scenarios, seed=seed)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("projections", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"numpy", "duckdb"},
                     description="P10-P90 bands of log returns per symbol and for the half-Kelly portfolio, 4 horizons."),
        dg.AssetSpec("allocations", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"cvxpy", "duckdb"},
                     description="Scenario-Kelly and half-Kelly weights, and the projector(amount) macro."),
    ],
)
def projections_and_allocations(config: SizingConfig, warehouse: WarehouseResource, settings: SettingsResource):
    # One simulation feeds both tables: the portfolio band needs the weights, the weights need the scenarios.
    summary = project_and_allocate(warehouse.get(), _policy(config, settings.get().seed))
    metadata = as_dagster_metadata(summary)
    yield dg.MaterializeResult(asset_key="projections", metadata=metadata)
    yield dg.MaterializeResult(asset_key="allocations", metadata={k: metadata[k] for k in ("as_of", "eligible", "weights", "invested_half_kelly")})


@dg.asset(name="decision_backtest", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"cvxpy", "duckdb"},
          description="Half-Kelly vs full Kelly vs equal weight held window by window, net of costs.")
def decision_backtest_asset(config: SizingConfig, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    current = settings.get()
    summary = decision_backtest(warehouse.get(), _policy(config, current.seed), PERIODS_PER_YEAR[current.wf_cadence], config.cost_bp)
    return dg.MaterializeResult(metadata=as_dagster_metadata(summary))
