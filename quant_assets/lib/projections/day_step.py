"""From the ensemble to decisions: Monte Carlo bands, scenario-Kelly allocations, and the decision backtest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from quant_assets.lib.models.base import QUANTILE_COLUMNS
from quant_assets.lib.projections.backtest import held_backtest
from quant_assets.lib.projections.kelly import cap_binding_share, half_kelly, scenario_kelly, shrink_expected_returns
from quant_assets.lib.projections.montecarlo import Scenarios, bands, fan_chart_png, simulate
from quant_assets.lib.projections.projector import install_projector
from quant_assets.lib.storage.memo import content_key
from quant_assets.lib.storage.warehouse import Warehouse, replace_in
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.outcomes import ensure_columns
from quant_assets.render.report import markdown_table

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

    def __post_init__(self) -> None:
        if self.horizon not in HORIZON_LABELS:
            raise ValueError(f"sizing horizon {self.horizon!r} is not one of {', '.join(HORIZON_LABELS)}")


@dataclass
class Decision:
    """One as-of date's scenarios, candidates and weights, all at ``policy.horizon``.

    ``expected_return`` is each symbol's simple expected return at the sizing horizon after shrinkage (what
    Kelly bet on), ``confidence`` its confidence there, ``shrinkage`` the factor applied to its log mean's departure from the prior.
    """

    as_of: date
    marginals: pd.DataFrame
    scenarios: Scenarios
    eligible: list[str]
    kelly: dict[str, float]
    policy: SizingPolicy = field(default_factory=SizingPolicy)
    expected_return: dict[str, float] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    shrinkage: dict[str, float] = field(default_factory=dict)
    cap_binding: float = float("nan")
    drives_sizing: bool = True

    @property
    def half_kelly(self) -> dict[str, float]:
        return half_kelly_weights(self.kelly)


def half_kelly_weights(kelly: dict[str, float]) -> dict[str, float]:
    return dict(zip(kelly, half_kelly(np.array(list(kelly.values())))))


def decide(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> Decision:
    """Simulate joint scenarios from ``marginals`` (ensemble rows: symbol, horizon, quantiles, mean, confidence and,
    when stored, ``sizing_mean`` / ``mean_uncertainty`` / ``sizing_prior``) and size long-only scenario-Kelly
    weights at the policy's horizon over the symbols whose expected simple return is positive and whose
    probability of a gain (the confidence of an up call, one less that of a down call) passes the gate.

    Before Kelly, each symbol's scenarios at the sizing horizon are shifted so their mean gross return is that of
    the sizing mean with its departure from the prior shrunk by its uncertainty (``kelly.shrink_expected_returns``):
    the prior is what the random walk says without information, and only a forecast that has shown skill out of
    sample moves the sizing mean off it (see ``build_ensemble``).
    """
    scenarios = simulate(marginals[["symbol", "horizon", *QUANTILE_COLUMNS]], residuals,
                         n_scenarios=policy.n_scenarios, seed=policy.seed)
    at_horizon = marginals[marginals["horizon"] == policy.horizon].set_index("symbol")
    missing = [s for s in scenarios.symbols if s not in at_horizon.index]
    if missing:
        raise ValueError(f"decide: no ensemble row at the sizing horizon {policy.horizon} for {', '.join(missing)}")
    rows = at_horizon.loc[scenarios.symbols]
    sizing_mean = _column(rows, "sizing_mean", rows["mean"])
    prior = _column(rows, "sizing_prior", 0.0)
    uncertainty = _column(rows, "mean_uncertainty", 0.0)
    departure, factor, _ = shrink_expected_returns((sizing_mean - prior).to_numpy(), uncertainty.to_numpy())
    # The target is a log expected gross return, the log mean plus half the row's variance: the scenarios are
    # shifted to exactly that mean gross return, whatever their tails (the row's std and the quantiles' spread
    # differ), so symbols the prior gives one arithmetic return get it in the scenarios too.
    target = prior.to_numpy() + departure + 0.5 * rows["std"].to_numpy(dtype="float64") ** 2
    log_returns = scenarios.returns[policy.horizon]
    log_returns = log_returns + (target - np.log(np.exp(log_returns).mean(axis=0)))[None, :]
    simple = np.expm1(log_returns)
    expected = dict(zip(scenarios.symbols, (float(x) for x in simple.mean(axis=0))))
    confidence = dict(zip(scenarios.symbols, (float(x) for x in rows["confidence"])))
    calls_up = dict(zip(scenarios.symbols, (bool(x) for x in rows["mean"].to_numpy(dtype="float64") > 0)))
    gain_probability = {s: c if calls_up[s] else 1.0 - c for s, c in confidence.items()}
    eligible = [s for s in scenarios.symbols if expected[s] > 0 and gain_probability[s] >= policy.min_confidence]
    kelly = {s: 0.0 for s in scenarios.symbols}
    if eligible:
        columns = [scenarios.symbols.index(s) for s in eligible]
        weights = scenario_kelly(simple[:, columns], cap=policy.cap, max_total=policy.max_total)
        kelly.update(dict(zip(eligible, (float(w) for w in weights))))
    drives = bool(rows["beats_reference"].fillna(True).astype(bool).all()) if "beats_reference" in rows else True
    return Decision(as_of, marginals, scenarios, eligible, kelly, policy, expected, confidence,
                    dict(zip(scenarios.symbols, (float(x) for x in factor))),
                    cap_binding_share(list(kelly.values()), policy.cap), drives)


def _column(rows: pd.DataFrame, name: str, default) -> pd.Series:
    """``rows[name]`` as floats with gaps filled from ``default`` (a column an older warehouse lacks is all default)."""
    fallback = default if isinstance(default, pd.Series) else pd.Series(default, index=rows.index, dtype="float64")
    if name not in rows:
        return fallback.astype("float64")
    return rows[name].astype("float64").fillna(fallback)


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
    """One as-of day's advice: bands, allocations and the summary metadata."""

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
            ["rank", "symbol", "confidence", "kelly_weight", "half_kelly_weight", f"expected_return_{policy.horizon}"]]),
        "sizing_horizon": policy.horizon, "cap_binding_share": decision.cap_binding,
        "drives_sizing": decision.drives_sizing,
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


def project_day(warehouse: Warehouse, as_of: date, policy: SizingPolicy) -> dict[str, object]:
    """Load day ``as_of``'s inputs, project and allocate, write the day; its summary (``skipped`` when no session)."""
    projection = project_and_allocate(load_projection_inputs(warehouse, as_of), policy)
    if projection is None:
        return {"as_of": str(as_of), "skipped": f"no completed session on {as_of}; nothing written"}
    write_projection(warehouse, as_of, projection)
    return projection.summary


def _allocation_rows(prices: pd.DataFrame, decision: Decision, half: dict[str, float]) -> pd.DataFrame:
    prices = prices.set_index("symbol")
    confidence = decision.marginals[decision.marginals["horizon"] == decision.policy.horizon].set_index("symbol")["confidence"]
    rows = []
    for i, symbol in enumerate(decision.scenarios.symbols):
        # At the sizing horizon, the shrunk expected return Kelly bet on; elsewhere the scenarios' mean.
        expected = {f"expected_return_{h}": decision.expected_return[symbol] if h == decision.policy.horizon
                    else float(np.expm1(decision.scenarios.returns[h][:, i]).mean()) for h in HORIZON_LABELS}
        rows.append({"as_of": decision.as_of, "symbol": symbol, "asset_class": prices.loc[symbol, "asset_class"],
                     "confidence": float(confidence.get(symbol, np.nan)), "kelly_weight": decision.kelly[symbol],
                     "half_kelly_weight": half[symbol], "last_price": float(prices.loc[symbol, "last_price"]), **expected})
    frame = pd.DataFrame(rows).sort_values(["half_kelly_weight", "confidence"], ascending=False, ignore_index=True)
    return frame.assign(rank=np.arange(1, len(frame) + 1))


def decision_backtest(warehouse: Warehouse, policy: SizingPolicy, periods_per_year: float, cost_bp: float) -> dict[str, object]:
    """Hold money continuously: decide at each ensemble window's first session, hold until the next decision,
    and compare half-Kelly, full Kelly, equal weight and S&P 500 buy-and-hold net of costs.

    A window followed by the next window holds until that window's decision; a window followed by a gap
    (windows not backfilled) holds until its own last session, and the gap is reported, not compounded; the
    window still in progress (its end after the last price) is reported with its return so far, outside the
    compounded figures. Summary statistics are over the complete periods; the annual return uses the time
    actually held.
    """
    windows = _decision_dates(warehouse)
    if windows.empty:
        raise ValueError("no ensemble windows to backtest; materialize meta_ensemble first")
    closes = _closes(warehouse)
    last_close = closes.index.max()
    strategies = ("half_kelly", "full_kelly", "equal_weight", *([BENCHMARK] if BENCHMARK_SYMBOL in closes.columns else []))
    weights: dict[str, list[dict[str, float]]] = {k: [] for k in strategies}
    realized, periods, cap_binding = [], [], []
    decided, fresh = _stored_decisions(warehouse), {}
    for i, row in enumerate(windows.itertuples()):
        first, window_end = row.first.date(), row.window_end.date()
        following = windows.iloc[i + 1] if i + 1 < len(windows) else None
        consecutive = following is not None and following["window_start"].date() == window_end
        in_progress = pd.Timestamp(window_end) > last_close + pd.Timedelta(days=1)
        exit_day = following["first"] if consecutive else min(pd.Timestamp(window_end) - pd.Timedelta(days=1), last_close)
        status = "in_progress" if in_progress else ("complete" if consecutive or following is None else "before_gap")
        marginals = warehouse.query(
            """SELECT * FROM forecasts.ensemble WHERE window_start = ? AND date <= ?
               QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [row.window_start, first])
        residuals = residual_returns(warehouse, first)
        inputs = decision_inputs_key(marginals, residuals, first, policy)
        kelly, binding = decided.get((row.window_start.date(), inputs)) or _decide_anew(marginals, residuals, first, policy)
        fresh[row.window_start.date()] = (inputs, kelly, binding)
        weights["full_kelly"].append(kelly)
        weights["half_kelly"].append(half_kelly_weights(kelly))
        weights["equal_weight"].append({s: 1.0 / len(kelly) for s in kelly})
        if BENCHMARK in weights:
            weights[BENCHMARK].append({BENCHMARK_SYMBOL: 1.0})
        cap_binding.append(binding)
        entry, exit_ = closes.asof(pd.Timestamp(first)), closes.asof(pd.Timestamp(exit_day))
        realized.append((exit_ / entry - 1.0).to_dict())
        gap_days = (following["window_start"].date() - window_end).days if following is not None and not consecutive else 0
        periods.append({"window_start": row.window_start.date(), "period_start": first,
                        "period_end": pd.Timestamp(exit_day).date(), "status": status, "gap_days_after": gap_days})
    index = pd.Index([p["window_start"] for p in periods], name="window_start")
    info = pd.DataFrame(periods).set_index("window_start")
    asset_returns = pd.DataFrame(realized, index=index)
    table, summary = held_backtest(asset_returns, {k: pd.DataFrame(v, index=index) for k, v in weights.items()},
                                   info, periods_per_year=periods_per_year, cost_bp=cost_bp)
    with warehouse.writer() as con:
        ensure_columns(con, "projections.backtest", {"period_start": "DATE", "period_end": "DATE", "status": "VARCHAR",
                                                     "gap_days_after": "INTEGER"})
        ensure_columns(con, "projections.backtest_summary", {"years_held": "DOUBLE", "gaps": "INTEGER",
                                                             "gap_days": "INTEGER", "in_progress_return": "DOUBLE"})
        replace_in(con, "projections.backtest", table, None)
        replace_in(con, "projections.backtest_summary", summary, None)
        replace_in(con, "projections.backtest_decisions", _decision_rows(fresh), None)
    binding = np.asarray(cap_binding, dtype="float64")
    return {"windows": len(windows), "complete_periods": int((info["status"] != "in_progress").sum()),
            "gaps": int((info["gap_days_after"] > 0).sum()), "in_progress": info.index[info["status"] == "in_progress"].astype(str).tolist(),
            "sizing_horizon": policy.horizon,
            "cap_binding_share": float(np.nanmean(binding)) if np.isfinite(binding).any() else None,
            "benchmark": BENCHMARK if BENCHMARK in weights else f"no {BENCHMARK_SYMBOL} prices: no benchmark row",
            "table_summary": markdown_table(summary), "growth_chart": growth_chart_png(table)}


BENCHMARK, BENCHMARK_SYMBOL = "sp500_buy_hold", "SP500"


def decision_inputs_key(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> str:
    """A digest of everything ``decide`` reads: equal keys, equal decisions (the simulation is seeded)."""
    return content_key(str(as_of), repr(policy), marginals.sort_values(["symbol", "horizon"], ignore_index=True),
                       residuals.sort_index(axis=1))


def _decide_anew(marginals: pd.DataFrame, residuals: pd.DataFrame, as_of: date, policy: SizingPolicy) -> tuple[dict[str, float], float]:
    decision = decide(marginals, residuals, as_of, policy)
    return decision.kelly, decision.cap_binding


def _stored_decisions(warehouse: Warehouse) -> dict[tuple[date, str], tuple[dict[str, float], float]]:
    """The windows' Kelly weights from the last backtest, by window and inputs key: a window's decision is solved
    again only when what it reads changed, so a daily backtest solves the new window's Kelly problem, not all."""
    if not warehouse.table_exists("projections.backtest_decisions"):
        return {}
    rows = warehouse.query("SELECT * FROM projections.backtest_decisions ORDER BY window_start, position")
    return {(pd.Timestamp(window).date(), inputs): (dict(zip(group["symbol"], group["kelly_weight"].astype(float))),
                                                    float(group["cap_binding"].iloc[0]))
            for (window, inputs), group in rows.groupby(["window_start", "inputs"], sort=False)}


def _decision_rows(decisions: dict[date, tuple[str, dict[str, float], float]]) -> pd.DataFrame:
    rows = [{"window_start": window, "inputs": inputs, "position": i, "symbol": symbol, "kelly_weight": weight,
             "cap_binding": binding}
            for window, (inputs, kelly, binding) in decisions.items() for i, (symbol, weight) in enumerate(kelly.items())]
    return pd.DataFrame(rows, columns=["window_start", "inputs", "position", "symbol", "kelly_weight", "cap_binding"])


def _decision_dates(warehouse: Warehouse) -> pd.DataFrame:
    """Per ensemble window: its end, and the first date by which every symbol has had a session in it (a window
    opening on a weekend has only crypto rows on its first date; deciding then would leave the equities out)."""
    return warehouse.query(
        """SELECT e.window_start, p.window_end, e.first FROM (
               SELECT window_start, max(first) AS first FROM (
                   SELECT window_start, symbol, min(date) AS first FROM forecasts.ensemble GROUP BY ALL)
               GROUP BY window_start) e
           JOIN forecasts.plans p ON p.window_start = e.window_start AND p.horizon = '1w'
           ORDER BY e.window_start""")


def _closes(warehouse: Warehouse) -> pd.DataFrame:
    """Wide date x symbol closes, each carried forward over the days its market was shut."""
    prices = warehouse.query("SELECT symbol, date, close FROM market.prices")
    return prices.pivot(index="date", columns="symbol", values="close").sort_index().ffill()


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
