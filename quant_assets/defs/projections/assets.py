"""Group ``projections``: the advice ledger (Monte Carlo bands, fractional-Kelly allocations and the trade plan per
as-of day), the advice scorecard, and the decision backtest."""

from datetime import date

import dagster as dg
import pandas as pd
from pydantic import Field

from quant_assets.defs.automation import FOLLOW_UPSTREAM, REFRESH_AFTER_UPSTREAM
from quant_assets.defs.ensemble.assets import ENSEMBLE_KEY
from quant_assets.defs.features.assets import LABELS_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.partitions import daily_partitions
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.projections.day_step import project_day
from quant_assets.lib.projections.decision_backtest import decision_backtest
from quant_assets.lib.projections.scorecard import build_scorecard, load_scorecard_inputs, scorecard_summary, write_scorecard
from quant_assets.lib.projections.sizing import SizingPolicy
from quant_assets.render.charts import fan_chart_png, growth_chart_png
from quant_assets.render.report import markdown_table
from quant_assets.settings import Settings

PERIODS_PER_YEAR = {"weekly": 52.0, "monthly": 12.0, "quarterly": 4.0}


class SizingConfig(dg.Config):
    """Sizing choices a user may change at launch time; the defaults are the sizing policy's own."""

    horizon: str = Field(SizingPolicy.horizon, description="the horizon the weights are solved at (1w, 1m, 3m, 1y)")
    kelly_fraction: float = Field(SizingPolicy.kelly_fraction, description="f: the CRRA investor of risk aversion 1/f")
    position_cap: float = Field(SizingPolicy.cap, description="the largest weight of one position")
    min_confidence: float = Field(SizingPolicy.min_confidence, description="the probability of a gain a position needs")
    n_scenarios: int = Field(SizingPolicy.n_scenarios, description="Monte Carlo scenarios per horizon")
    cost_bp: float = Field(10.0, description="the backtest's trading cost per side, in basis points")


def _policy(config: SizingConfig, seed: int) -> SizingPolicy:
    return SizingPolicy(horizon=config.horizon, cap=config.position_cap, min_confidence=config.min_confidence,
                        n_scenarios=config.n_scenarios, seed=seed, kelly_fraction=config.kelly_fraction)


def _metadata(summary: dict[str, object], **charts: bytes) -> dict[str, object]:
    """A lib summary as Dagster metadata: its frames as markdown tables, and the charts drawn for it."""
    rendered = {k: markdown_table(v) if isinstance(v, pd.DataFrame) else v for k, v in summary.items()}
    return as_dagster_metadata({**rendered, **charts})


def build_projection_defs(settings: Settings) -> list[dg.AssetsDefinition]:
    """The advice ledger (projections and allocations per as-of day), the scorecard and the decision backtest."""
    days = daily_partitions(settings)

    @dg.multi_asset(
        specs=[
            dg.AssetSpec("projections", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"numpy", "duckdb"},
                         automation_condition=FOLLOW_UPSTREAM,
                         description="P10-P90 bands of log returns per symbol and for the fractional-Kelly "
                                     "portfolio, 4 horizons, one partition per as-of day (history kept), from the "
                                     "scenarios the weights were solved on."),
            dg.AssetSpec("allocations", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"cvxpy", "duckdb"},
                         automation_condition=FOLLOW_UPSTREAM,
                         description="Full-Kelly and fractional-Kelly weights (f = ½ by default: the CRRA investor "
                                     "of risk aversion 1/f) and the day's trade plan behind projector(amount) / "
                                     "projector_at(amount, as_of)."),
        ],
        partitions_def=days,
    )
    def projections_and_allocations(context: dg.AssetExecutionContext, config: SizingConfig,
                                    warehouse: WarehouseResource, settings: SettingsResource):
        # One simulation feeds both tables: the portfolio band needs the weights, the weights need the scenarios.
        as_of = date.fromisoformat(context.partition_key)
        projection = project_day(warehouse.get(), as_of, _policy(config, settings.get().seed))
        if projection is None:
            skipped = {"as_of": str(as_of), "skipped": f"no completed session on {as_of}; nothing written"}
            context.log.info(skipped["skipped"])
            yield dg.MaterializeResult(asset_key="projections", metadata=skipped)
            yield dg.MaterializeResult(asset_key="allocations", metadata=skipped)
            return
        metadata = _metadata(projection.summary, fan_chart=fan_chart_png(projection.bands))
        yield dg.MaterializeResult(asset_key="projections", metadata=metadata)
        yield dg.MaterializeResult(asset_key="allocations", metadata={
            k: metadata[k] for k in ("as_of", "eligible", "weights", "kelly_fraction", "invested_fractional_kelly")})

    return [projections_and_allocations, advice_scorecard_asset, decision_backtest_asset]


# The scorecard reads the labels, but it is rebuilt after the day's advice, not also when the features run before it.
@dg.asset(name="advice_scorecard", group_name="projections", deps=["projections", "allocations", LABELS_KEY],
          kinds={"duckdb"}, automation_condition=REFRESH_AFTER_UPSTREAM.ignore(dg.AssetSelection.assets(LABELS_KEY)),
          description="Every past as-of day's advice (positions and portfolio) against what happened once each "
                      "horizon passed: P10/P50/P90 of the value and whether the realized value fell inside.")
def advice_scorecard_asset(warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    store = warehouse.get()
    card = build_scorecard(load_scorecard_inputs(store, settings.get().clock_today))
    write_scorecard(store, card)
    return dg.MaterializeResult(metadata=_metadata(scorecard_summary(card)))


@dg.asset(name="decision_backtest", group_name="projections", deps=[ENSEMBLE_KEY], kinds={"cvxpy", "duckdb"},
          automation_condition=REFRESH_AFTER_UPSTREAM,
          description="Fractional Kelly (½) vs full Kelly, equal weight, inverse volatility and the index held window by "
                      "window from each symbol's first close after the decision, net of costs, with Sharpe standard "
                      "errors, the probabilistic Sharpe ratio over equal weight and the deflated Sharpe ratio over the "
                      "settings tried (a window's Kelly problem is solved again only when its ensemble or sizing changed).")
def decision_backtest_asset(config: SizingConfig, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    current = settings.get()
    result = decision_backtest(warehouse.get(), _policy(config, current.seed), PERIODS_PER_YEAR[current.wf_cadence],
                               config.cost_bp)
    return dg.MaterializeResult(metadata=_metadata(result.summary, growth_chart=growth_chart_png(result.periods)))
