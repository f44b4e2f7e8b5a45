"""One as-of day's step, from the ensemble to advice: load its inputs, size scenario-Kelly allocations on the sized
Monte Carlo scenarios and take the bands from those same scenarios (pure), write the bands, allocations and trade
plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from quant_assets.lib.projections.limits import weight_limits
from quant_assets.lib.projections.montecarlo import PORTFOLIO, bands
from quant_assets.lib.projections.projector import install_projector
from quant_assets.lib.projections.rebalance_book import SCENARIOS, scenario_rows
from quant_assets.lib.projections.sizing import Decision, SizingPolicy, decide
from quant_assets.lib.storage import refits
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns, replace_in
from quant_assets.lib.vocabulary import HORIZON_LABELS

# Recent daily returns, demeaned per symbol, stand in for the residuals whose correlation couples the scenarios.
RESIDUAL_DAYS = 252
# The calendar days that hold RESIDUAL_DAYS sessions.
RESIDUAL_SPAN = timedelta(days=int(RESIDUAL_DAYS * 1.5))
# The columns projections.allocations gained after it was first written, added to older warehouses before a write.
ALLOCATION_ADDED_COLUMNS = {"prob_gain": "DOUBLE", "prob_gain_base_rate": "DOUBLE", "confidence_source": "VARCHAR",
                            "growth_contribution": "DOUBLE", "sizing_horizon": "VARCHAR",
                            "weight_limit": "VARCHAR", "weight_limit_reason": "VARCHAR", "shrinkage": "DOUBLE"}
# A symbol whose latest ensemble row is older than this at the as-of date is not a candidate.
STALE_DAYS = 7


@dataclass
class ProjectionInputs:
    """Everything one as-of day's projection reads from the warehouse, loaded in one visit."""

    as_of: date
    has_session: bool
    window: date | None
    marginals: pd.DataFrame
    residuals: pd.DataFrame
    prices: pd.DataFrame
    latest_ensemble_date: date | None


@dataclass
class Projection:
    """One as-of day's advice: bands, allocations and the summary metadata (its tables as frames, for people
    to be shown rendered)."""

    bands: pd.DataFrame
    allocations: pd.DataFrame
    summary: dict[str, object]
    # The sized scenarios at the sizing horizon, which a rebalance solves its cost-aware target on (None: not kept).
    scenarios: pd.DataFrame | None = None


def residual_returns(daily_returns: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """A wide date x symbol frame of the last year's demeaned daily log returns up to ``as_of``, from long
    ``symbol, date, ret_1d`` rows that may cover a longer span (``residual_rows``)."""
    dates = pd.to_datetime(daily_returns["date"])
    return demeaned_returns(daily_returns[(dates > pd.Timestamp(as_of - RESIDUAL_SPAN)) & (dates <= pd.Timestamp(as_of))])


def demeaned_returns(daily_returns: pd.DataFrame) -> pd.DataFrame:
    """A wide date x symbol frame of demeaned daily log returns from long ``symbol, date, ret_1d`` rows."""
    wide = daily_returns.pivot(index="date", columns="symbol", values="ret_1d")
    return wide - wide.mean()


def residual_rows(con, first: date, last: date) -> pd.DataFrame:
    """Long daily-return rows covering the residual year of every as-of day from ``first`` through ``last``."""
    return con.execute(
        "SELECT symbol, date, ret_1d FROM features.features WHERE date > ? AND date <= ? AND ret_1d IS NOT NULL",
        [first - RESIDUAL_SPAN, last]).df()


def ensemble_rows_at(con, window_start, as_of: date) -> pd.DataFrame:
    """Each symbol's latest rows at or before ``as_of`` in the ensemble of window ``window_start``."""
    return con.execute(
        """SELECT * FROM forecasts.ensemble WHERE window_start = ? AND date <= ?
           QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [window_start, as_of]).df()


def load_projection_inputs(warehouse: Warehouse, as_of: date) -> ProjectionInputs:
    """Read, in one read-only visit, what the projection of day ``as_of`` may know: the ensemble window
    containing it with each symbol's latest row at or before ``as_of``, the last year's daily returns and the
    last closes up to ``as_of`` (never a row after it)."""
    with warehouse.reader() as con:
        has_session = con.execute("SELECT count(*) FROM market.prices WHERE date = ?", [as_of]).fetchone()[0] > 0
        window = con.execute("SELECT max(window_start) FROM forecasts.ensemble WHERE window_start <= ?", [as_of]).fetchone()[0]
        marginals = ensemble_rows_at(con, window, as_of)
        latest = con.execute("SELECT max(date) FROM forecasts.ensemble WHERE window_start = ?", [window]).fetchone()[0]
        residuals = residual_rows(con, as_of, as_of)
        prices = con.execute(
            """SELECT symbol, asset_class, close AS last_price FROM market.prices WHERE date <= ?
               QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [as_of]).df()
    return ProjectionInputs(as_of, has_session, window, marginals, demeaned_returns(residuals), prices, latest)


def latest_marginals(inputs: ProjectionInputs) -> pd.DataFrame:
    """Each symbol's latest ensemble rows at ``inputs.as_of``, kept only if at most ``STALE_DAYS`` old."""
    as_of = inputs.as_of
    if inputs.window is None:
        raise ValueError(f"no ensemble for a window containing {as_of}; materialize meta_ensemble for that window first")
    fresh = inputs.marginals[inputs.marginals["date"] >= pd.Timestamp(as_of - timedelta(days=STALE_DAYS))]
    if fresh.empty:
        hint = (f"its latest rows are of {inputs.latest_ensemble_date}: materialize the projections partition of that "
                f"day, or meta_ensemble for the window containing {as_of}") if inputs.latest_ensemble_date else \
            f"materialize meta_ensemble for the window containing {as_of}"
        raise ValueError(f"the ensemble of window {inputs.window} has no rows within {STALE_DAYS} days of {as_of}; {hint}")
    return fresh


def project_and_allocate(inputs: ProjectionInputs, policy: SizingPolicy) -> Projection | None:
    """The day's bands and allocations from its loaded inputs (pure), or None when no session completed that day."""
    if not inputs.has_session:
        return None
    marginals = latest_marginals(inputs)
    decision = decide(marginals, inputs.residuals, inputs.as_of, policy)
    # The bands are the quantiles of the scenarios the weights were solved on, the portfolio's of the advised weights.
    band_frame = bands(decision.scenarios, weights=decision.fractional).assign(as_of=inputs.as_of)
    allocations = _allocation_rows(inputs.prices, decision)
    portfolio = band_frame[band_frame["symbol"] == PORTFOLIO][["horizon", "p10", "p50", "p90", "prob_loss"]]
    summary = {
        "as_of": str(inputs.as_of), "ensemble_window": str(inputs.window), "scenarios": policy.n_scenarios,
        "candidates": len(decision.scenarios.symbols), "eligible": decision.eligible,
        "kelly_fraction": policy.kelly_fraction, "invested_fractional_kelly": round(sum(decision.fractional.values()), 4),
        "weights": allocations[allocations["half_kelly_weight"] > 0][
            ["rank", "symbol", "confidence", "kelly_weight", "half_kelly_weight", f"expected_return_{policy.horizon}"]],
        "sizing_horizon": policy.horizon, "cap_binding_share": decision.cap_binding,
        "drives_sizing": decision.drives_sizing,
        "table_summary": portfolio,
        "uncorrelated_symbols": decision.scenarios.uncorrelated,
    }
    horizon = policy.horizon
    scenarios = scenario_rows(inputs.as_of, horizon, decision.scenarios.symbols,
                              np.expm1(decision.scenarios.returns[horizon]), decision.eligible, policy.cap,
                              policy.max_total, policy.kelly_fraction)
    return Projection(band_frame, allocations, summary, scenarios)


def write_projection(warehouse: Warehouse, as_of: date, projection: Projection) -> None:
    """Replace day ``as_of`` of the bands, allocations and trade plan in one transaction (other days kept)."""
    with warehouse.writer() as con:
        replace_in(con, "projections.bands", projection.bands, {"as_of": as_of})
        ensure_columns(con, "projections.allocations", ALLOCATION_ADDED_COLUMNS)
        replace_in(con, "projections.allocations", projection.allocations, {"as_of": as_of})
        if projection.scenarios is not None:
            replace_in(con, SCENARIOS, projection.scenarios, {"as_of": as_of})
        refits.refresh(con, refits.ADVICE, as_of)
        install_projector(con, as_of)


def project_day(warehouse: Warehouse, as_of: date, policy: SizingPolicy) -> Projection | None:
    """Load day ``as_of``'s inputs, project and allocate, write the day; the projection, or None (nothing written)
    when no session completed that day."""
    projection = project_and_allocate(load_projection_inputs(warehouse, as_of), policy)
    if projection is not None:
        write_projection(warehouse, as_of, projection)
    return projection


def growth_contributions(simple_returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each position's contribution to the portfolio's expected log growth ``G(w) = mean(log(1 + R w))`` over the
    scenarios (rows of ``simple_returns``): ``w_i dG/dw_i = w_i mean(R_i / (1 + R w))``, zero for a position not held."""
    wealth = 1.0 + simple_returns @ weights
    return weights * (simple_returns / wealth[:, None]).mean(axis=0)


def _allocation_rows(prices: pd.DataFrame, decision: Decision) -> pd.DataFrame:
    prices = prices.set_index("symbol")
    at_horizon = decision.marginals[decision.marginals["horizon"] == decision.policy.horizon].set_index("symbol")
    weights = np.array([decision.fractional[s] for s in decision.scenarios.symbols])
    contribution = growth_contributions(np.expm1(decision.scenarios.returns[decision.policy.horizon]), weights)
    limits = weight_limits(decision)
    rows = []
    for i, symbol in enumerate(decision.scenarios.symbols):
        # The sized scenarios' mean: at the sizing horizon, the shrunk expected return the weights bet on.
        expected = {f"expected_return_{h}": float(np.expm1(decision.scenarios.returns[h][:, i]).mean())
                    for h in HORIZON_LABELS}
        # half_kelly_weight keeps its stored name and holds the fractional-Kelly (CRRA, risk aversion 1/f) weight;
        # confidence is the probability of a gain at the sizing horizon shown (prob_gain or its base rate).
        rows.append({"as_of": decision.as_of, "symbol": symbol, "asset_class": prices.loc[symbol, "asset_class"],
                     "confidence": decision.confidence[symbol], **_gain_columns(at_horizon, symbol),
                     "kelly_weight": decision.kelly[symbol], "half_kelly_weight": decision.fractional[symbol],
                     "growth_contribution": float(contribution[i]),
                     "last_price": float(prices.loc[symbol, "last_price"]), **expected,
                     "sizing_horizon": decision.policy.horizon,
                     "weight_limit": limits[symbol][0], "weight_limit_reason": limits[symbol][1],
                     "shrinkage": decision.shrinkage[symbol]})
    # Ranked by what the advice does (its weight), then by what the position adds to expected log growth; the
    # symbol breaks the remaining ties so the same inputs give the same ranks.
    frame = pd.DataFrame(rows).sort_values(["half_kelly_weight", "growth_contribution", "symbol"],
                                           ascending=[False, False, True], ignore_index=True)
    return frame.assign(rank=np.arange(1, len(frame) + 1))


def _gain_columns(at_horizon: pd.DataFrame, symbol: str) -> dict[str, object]:
    """The symbol's calibrated probability of a gain, its base rate and which of the two its confidence is (empty
    for ensemble rows written before these columns existed)."""
    return {c: at_horizon.loc[symbol, c] for c in ("prob_gain", "prob_gain_base_rate", "confidence_source")
            if c in at_horizon.columns}
