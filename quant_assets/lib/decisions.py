"""From the ensemble to decisions: Monte Carlo bands, scenario-Kelly allocations, and the decision backtest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from quant_assets.lib.backtest import run_backtest
from quant_assets.lib.kelly import half_kelly, scenario_kelly
from quant_assets.lib.models.base import HORIZONS, QUANTILE_COLUMNS
from quant_assets.lib.montecarlo import Scenarios, bands, fan_chart_png, simulate
from quant_assets.lib.projector import install_projector
from quant_assets.lib.report import markdown_table
from quant_assets.lib.warehouse import Warehouse, replace_in

HORIZON_LABELS = [h.label for h in HORIZONS]
# Recent daily returns, demeaned per symbol, stand in for the residuals whose correlation couples the scenarios.
RESIDUAL_DAYS = 252
# A symbol whose latest ensemble row is older than this at the as-of date is not a candidate.
STALE_DAYS = 7


@dataclass(frozen=True)
class SizingPolicy:
    """How scenarios become weights."""

    horizon: str = "1m"
    cap: float = 0.25
    max_total: float = 1.0
    min_confidence: float = 0.5
    n_scenarios: int = 10_000
    seed: int = 7


@dataclass
class Decision:
    """One as-of date's scenarios, candidates and weights."""

    as_of: date
    marginals: pd.DataFrame
    scenarios: Scenarios
    eligible: list[str]
    kelly: dict[str, float]

    @property
    def half_kelly(self) -> dict[str, float]:
        return dict(zip(self.kelly, half_kelly(np.array(list(self.kelly.values())))))


def decide(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> Decision:
    """Simulate joint scenarios from ``marginals`` (ensemble rows: symbol, horizon, quantiles, mean, confidence)
    and size long-only scenario-Kelly weights over the symbols predicted up with enough confidence."""
    scenarios = simulate(marginals[["symbol", "horizon", *QUANTILE_COLUMNS]], residuals,
                         n_scenarios=policy.n_scenarios, seed=policy.seed)
    at_horizon = marginals[marginals["horizon"] == policy.horizon].set_index("symbol")
    eligible = [s for s in scenarios.symbols
                if at_horizon.loc[s, "mean"] > 0 and at_horizon.loc[s, "confidence"] >= policy.min_confidence]
    kelly = {s: 0.0 for s in scenarios.symbols}
    if eligible:
        columns = [scenarios.symbols.index(s) for s in eligible]
        simple = np.expm1(scenarios.returns[policy.horizon][:, columns])
        weights = scenario_kelly(simple, cap=policy.cap, max_total=policy.max_total)
        kelly.update(dict(zip(eligible, (float(w) for w in weights))))
    return Decision(as_of, marginals, scenarios, eligible, kelly)


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
    """One as-of day's advice: bands, allocations, the decision behind them and its summary metadata."""

    bands: pd.DataFrame
    allocations: pd.DataFrame
    summary: dict[str, object]


def residual_returns(warehouse: Warehouse, as_of: date) -> pd.DataFrame:
    """A wide date x symbol frame of the last year's demeaned daily log returns up to ``as_of``."""
    with warehouse.reader() as con:
        return demeaned_returns(_residual_rows(con, as_of))


def demeaned_returns(daily_returns: pd.DataFrame) -> pd.DataFrame:
    """A wide date x symbol frame of demeaned daily log returns from long ``symbol, date, ret_1d`` rows."""
    wide = daily_returns.pivot(index="date", columns="symbol", values="ret_1d")
    return wide - wide.mean()


def _residual_rows(con, as_of: date) -> pd.DataFrame:
    return con.execute(
        "SELECT symbol, date, ret_1d FROM features.features WHERE date > ? AND date <= ? AND ret_1d IS NOT NULL",
        [as_of - timedelta(days=int(RESIDUAL_DAYS * 1.5)), as_of]).df()


def load_projection_inputs(warehouse: Warehouse, as_of: date) -> ProjectionInputs:
    """Read, in one read-only visit, what the projection of day ``as_of`` may know: the ensemble window
    containing it with each symbol's latest row at or before ``as_of``, the last year's daily returns and the
    last closes up to ``as_of`` (never a row after it)."""
    with warehouse.reader() as con:
        has_session = con.execute("SELECT count(*) FROM market.prices WHERE date = ?", [as_of]).fetchone()[0] > 0
        window = con.execute("SELECT max(window_start) FROM forecasts.ensemble WHERE window_start <= ?", [as_of]).fetchone()[0]
        marginals = con.execute(
            """SELECT * FROM forecasts.ensemble WHERE window_start = ? AND date <= ?
               QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [window, as_of]).df()
        latest = con.execute("SELECT max(date) FROM forecasts.ensemble WHERE window_start = ?", [window]).fetchone()[0]
        residuals = _residual_rows(con, as_of)
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
    half = decision.half_kelly
    band_frame = bands(decision.scenarios, weights=half).assign(as_of=inputs.as_of)
    allocations = _allocation_rows(inputs.prices, decision, half)
    portfolio = band_frame[band_frame["symbol"] == "PORTFOLIO"][["horizon", "p10", "p50", "p90", "prob_loss"]]
    summary = {
        "as_of": str(inputs.as_of), "ensemble_window": str(inputs.window), "scenarios": policy.n_scenarios,
        "candidates": len(decision.scenarios.symbols), "eligible": decision.eligible,
        "invested_half_kelly": round(sum(half.values()), 4),
        "weights": markdown_table(allocations[allocations["half_kelly_weight"] > 0][
            ["rank", "symbol", "confidence", "kelly_weight", "half_kelly_weight", "expected_return_1m"]]),
        "table_summary": markdown_table(portfolio),
        "fan_chart": fan_chart_png(band_frame),
        "uncorrelated_symbols": decision.scenarios.uncorrelated,
    }
    return Projection(band_frame, allocations, summary)


def write_projection(warehouse: Warehouse, as_of: date, projection: Projection) -> None:
    """Replace day ``as_of`` of the bands, allocations and trade plan in one transaction (other days kept)."""
    with warehouse.writer() as con:
        replace_in(con, "projections.bands", projection.bands, {"as_of": as_of})
        replace_in(con, "projections.allocations", projection.allocations, {"as_of": as_of})
        install_projector(con, as_of)


def _allocation_rows(prices: pd.DataFrame, decision: Decision, half: dict[str, float]) -> pd.DataFrame:
    prices = prices.set_index("symbol")
    confidence = decision.marginals[decision.marginals["horizon"] == SizingPolicy.horizon].set_index("symbol")["confidence"]
    rows = []
    for i, symbol in enumerate(decision.scenarios.symbols):
        expected = {f"expected_return_{h}": float(np.expm1(decision.scenarios.returns[h][:, i]).mean()) for h in HORIZON_LABELS}
        rows.append({"as_of": decision.as_of, "symbol": symbol, "asset_class": prices.loc[symbol, "asset_class"],
                     "confidence": float(confidence.get(symbol, np.nan)), "kelly_weight": decision.kelly[symbol],
                     "half_kelly_weight": half[symbol], "last_price": float(prices.loc[symbol, "last_price"]), **expected})
    frame = pd.DataFrame(rows).sort_values(["half_kelly_weight", "confidence"], ascending=False, ignore_index=True)
    return frame.assign(rank=np.arange(1, len(frame) + 1))


def decision_backtest(warehouse: Warehouse, policy: SizingPolicy, periods_per_year: float, cost_bp: float) -> dict[str, object]:
    """Hold, over each ensemble window, the portfolio its first day's information recommended; compare
    half-Kelly, full Kelly and equal weight net of costs, and store per-window and summary rows."""
    # A window's decision is taken on the first date by which every symbol has had a session in it: a window
    # opening on a weekend has only crypto rows on its first date, and deciding then would leave the
    # equities out. Each symbol contributes its latest forecast up to that date.
    windows = warehouse.query(
        """SELECT window_start, max(first) AS first FROM (
               SELECT window_start, symbol, min(date) AS first FROM forecasts.ensemble GROUP BY ALL)
           GROUP BY window_start ORDER BY window_start""")
    if windows.empty:
        raise ValueError("no ensemble windows to backtest; materialize meta_ensemble first")
    weights: dict[str, list[dict[str, float]]] = {"half_kelly": [], "full_kelly": [], "equal_weight": []}
    realized = []
    for row in windows.itertuples():
        first = row.first.date()
        marginals = warehouse.query(
            """SELECT * FROM forecasts.ensemble WHERE window_start = ? AND date <= ?
               QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [row.window_start, first])
        decision = decide(marginals, residual_returns(warehouse, first), first, policy)
        weights["full_kelly"].append(decision.kelly)
        weights["half_kelly"].append(decision.half_kelly)
        weights["equal_weight"].append({s: 1.0 / len(decision.scenarios.symbols) for s in decision.scenarios.symbols})
        realized.append(_window_returns(warehouse, row.window_start.date(), first, decision.scenarios.symbols))
    index = pd.Index([w.date() for w in windows["window_start"]], name="window_start")
    asset_returns = pd.DataFrame(realized, index=index)
    periods, summary = run_backtest(asset_returns, {k: pd.DataFrame(v, index=index) for k, v in weights.items()},
                                    periods_per_year=periods_per_year, cost_bp=cost_bp)
    with warehouse.writer() as con:
        replace_in(con, "projections.backtest", periods, None)
        replace_in(con, "projections.backtest_summary", summary, None)
    return {"windows": len(windows), "table_summary": markdown_table(summary), "growth_chart": growth_chart_png(periods)}


def _window_returns(warehouse: Warehouse, window_start: date, first: date, symbols: list[str]) -> dict[str, float]:
    """Each symbol's simple return from its close on the decision date to its last close in the window (NaN if
    unknown: the backtest refuses to hold a position whose outcome it cannot see)."""
    frame = warehouse.query(
        """SELECT p.symbol, arg_min(close, date) AS entry, arg_max(close, date) AS exit FROM market.prices p
           JOIN forecasts.plans w ON w.window_start = ? AND w.horizon = '1w'
           WHERE p.date >= ? AND p.date < w.window_end GROUP BY p.symbol""", [window_start, first])
    frame = frame.set_index("symbol")
    return {s: float(frame.loc[s, "exit"] / frame.loc[s, "entry"] - 1.0) if s in frame.index else np.nan for s in symbols}


def growth_chart_png(periods: pd.DataFrame) -> bytes:
    """Cumulative log growth per strategy across the windows."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    try:
        for strategy, rows in periods.groupby("strategy"):
            ax.plot([str(d) for d in rows["window_start"]], rows["cumulative_log_growth"], marker="o", label=strategy)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel("cumulative log growth")
        ax.set_title("Decision backtest (net of costs)")
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()
