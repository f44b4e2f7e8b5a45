"""Long walk-forward evaluation: backfill monthly windows of the sample and score the forecasts and decisions.

Builds (or reuses) its own QUANT_HOME with the sample's market and features assets, then through the library
functions (no Dagster run per window, no MLflow): plans every window, fits the ten models and the random-walk
reference per window (``--workers`` processes, one window each, one BLAS thread each; windows already fitted are
skipped, so an interrupted run resumes), builds the ensembles in window order (each learns only from labels
that ended before it; each as soon as its window and every earlier one are fitted, while later windows fit), and
runs the decision backtest.

Reports per horizon, for equities and the (synthetic) crypto separately:
  - mean cross-sectional rank IC of the ensemble mean, with a Newey-West t-statistic (HAC lags = the horizon's
    steps, since consecutive dates' labels overlap) over the per-date ICs;
  - P10-P90 and P05-P95 coverage;
  - CRPS skill of the ensemble (and of each model) against the random walk, on the same rows;
  - CRPS skill against two random walks of the raw closes (zero drift and each symbol's expanding-mean drift,
    both with trailing 252-row volatility), and against the better of the two;
  - Brier score of p_up (and of the constant base rate), AUC of the confidence for a gain;
  - at the sizing horizon, the reliability of the stated probability of a gain (deciles: stated vs realized, n),
    its Brier score against the point-in-time base rate, and its AUC;
and for the decisions: log growth, Sharpe and maximum drawdown of each strategy; and the wall time.

Run: ``nice -n 10 .venv/bin/python bench/evaluate.py --home /tmp/eval --windows 2019-01-01..2022-12-01``.
``--report-only`` re-reads a finished (or partial, even one still being filled) home and prints the figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from walk_forward import build_warehouse, load_note, parse_windows  # noqa: E402

from quant_assets.lib.models import BASELINE, MODEL_NAMES  # noqa: E402
from quant_assets.lib.models.base import QUANTILE_COLUMNS  # noqa: E402
from quant_assets.lib.storage.warehouse import Warehouse  # noqa: E402
from quant_assets.lib.vocabulary import HORIZON_BY_LABEL, HORIZONS  # noqa: E402
from quant_assets.lib.walk_forward.outcomes import OUTCOMES_SQL  # noqa: E402
from quant_assets.lib.walk_forward.reference_walks import walk_crps, walk_moments  # noqa: E402
from quant_assets.lib.walk_forward.scoring import crps_quantiles, newey_west_t  # noqa: E402

GOAL_COVERAGE = (0.75, 0.85)
GOAL_SKILL_SHORT = 0.02  # CRPS skill against the better raw-close walk at 1w and 1m


def fit_window(home: str, start: date, end: date, models: list[str]) -> tuple[str, float, dict[str, float]]:
    """Plan, fit every model of one window and store it (what the plan and fit assets do, without MLflow)."""
    os.environ["QUANT_HOME"] = home
    from quant_assets.lib.walk_forward.folds import plan_and_store, stored_plans
    from quant_assets.lib.walk_forward.training import load_panel, panel_span, run_fold, store_fold
    from quant_assets.settings import Settings

    settings = Settings()
    warehouse = Warehouse(settings.warehouse_path)
    started = time.perf_counter()
    plan_and_store(warehouse, settings.window_rules, start, end)
    plans = stored_plans(warehouse, start)
    panel = load_panel(warehouse, *panel_span(plans))
    seconds = {}
    for name in models:
        began = time.perf_counter()
        store_fold(warehouse, run_fold(name, plans, panel, seed=settings.seed))
        seconds[name] = time.perf_counter() - began
    return str(start), time.perf_counter() - started, seconds


def fitted_models(warehouse: Warehouse) -> dict[str, set[str]]:
    """Per window start, the models whose fits are stored."""
    if not warehouse.table_exists("forecasts.fits"):
        return {}
    done = warehouse.query("SELECT DISTINCT window_start, model FROM forecasts.fits")
    out: dict[str, set[str]] = {}
    for window, model in zip(done["window_start"], done["model"]):
        out.setdefault(str(window.date()), set()).add(model)
    return out


def fitted_windows(warehouse: Warehouse, models: list[str]) -> set[str]:
    return {w for w, have in fitted_models(warehouse).items() if set(models) <= have}


def backfill(home: Path, windows, models: list[str], workers: int, on_fitted=None) -> pd.DataFrame:
    """Fit the models each window lacks (all of them for a new window; a member added since, alone), ``workers``
    windows at a time; ``on_fitted()`` runs here after each one."""
    warehouse = Warehouse(home / "warehouse.duckdb")
    have = fitted_models(warehouse)
    todo = [(s, e, [m for m in models if m not in have.get(str(s), set())]) for s, e in windows]
    todo = [(s, e, missing) for s, e, missing in todo if missing]
    print(f"  fits: {len(windows) - len(todo)} window(s) already fitted, {len(todo)} to fit in {workers} process(es)",
          flush=True)
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fit_window, str(home), s, e, missing) for s, e, missing in todo]
        for future in as_completed(futures):
            start, seconds, per_model = future.result()
            rows.append({"window_start": start, "seconds": seconds, **per_model})
            print(f"    window {start}: {seconds:6.1f} s  ({load_note()})", flush=True)
            if on_fitted is not None:
                on_fitted()
    return pd.DataFrame(rows)


class Ensembles:
    """The ensembles of the windows, in order, each as soon as it and every window before it are fitted: an
    ensemble learns from the earlier windows' predictions whose labels ended before it, so it needs them all,
    and this way they are built while later windows fit instead of after the last one."""

    def __init__(self, home: Path, windows, models: list[str], *, reuse: bool = False) -> None:
        """``reuse``: count the windows whose ensemble is stored as built (a report on a home another run is
        filling: that run built each one after the windows before it were fitted)."""
        self.warehouse = Warehouse(home / "warehouse.duckdb")
        self.windows, self.models = [start for start, _ in windows], models
        stored = set()
        if reuse and self.warehouse.table_exists("forecasts.ensemble"):
            stored = {w.date() for w in self.warehouse.query(
                "SELECT DISTINCT window_start FROM forecasts.ensemble")["window_start"]}
        self.built: list[date] = [start for start in self.windows if start in stored]
        self.seconds = 0.0

    def build_ready(self) -> None:
        """Build the next ensembles whose windows, and all before them, are fitted."""
        from quant_assets.lib.ensemble.window import ensemble_window

        fitted = fitted_windows(self.warehouse, self.models)
        for start in self.windows[len(self.built):]:
            if str(start) not in fitted:
                return
            began = time.perf_counter()
            ensemble_window(self.warehouse, start)
            self.seconds += time.perf_counter() - began
            self.built.append(start)
            print(f"    ensemble {start} built ({len(self.built)} of {len(self.windows)})", flush=True)

    def build_rest(self) -> None:
        """The fitted windows not built yet (a window missing from a partial run leaves a gap), in order."""
        from quant_assets.lib.ensemble.window import ensemble_window

        fitted = fitted_windows(self.warehouse, self.models)
        for start in self.windows:
            if start not in self.built and str(start) in fitted:
                began = time.perf_counter()
                ensemble_window(self.warehouse, start)
                self.seconds += time.perf_counter() - began
                self.built.append(start)


# ---------------------------------------------------------------- figures


def rank_ic_series(frame: pd.DataFrame) -> pd.Series:
    """Per date, the Spearman correlation of ``mean`` and ``realized`` across symbols (3 symbols or more)."""
    def one(rows):
        if len(rows) < 3 or rows["mean"].nunique() < 2 or rows["realized"].nunique() < 2:
            return np.nan
        return rows["mean"].rank().corr(rows["realized"].rank())
    return frame.groupby("date").apply(one, include_groups=False).dropna()


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, score))


def forecast_figures(warehouse: Warehouse) -> pd.DataFrame:
    ensemble = warehouse.query(
        f"""SELECT e.* EXCLUDE (realized, label_end), o.realized, p.asset_class FROM forecasts.ensemble e
            JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)
            JOIN (SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY 1) p USING (symbol)""")
    preds = warehouse.query(
        f"""SELECT f.model, f.window_start, f.symbol, f.date, f.horizon, {', '.join('f.' + c for c in QUANTILE_COLUMNS)},
                   o.realized FROM forecasts.predictions f JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)""")
    preds["crps"] = crps_quantiles(preds["realized"].to_numpy(), preds[list(QUANTILE_COLUMNS)].to_numpy())
    keys = ["window_start", "symbol", "date", "horizon"]
    ensemble["crps"] = crps_quantiles(ensemble["realized"].to_numpy(), ensemble[list(QUANTILE_COLUMNS)].to_numpy())
    reference = preds[preds["model"] == BASELINE][[*keys, "crps"]].rename(columns={"crps": "crps_rw"})
    # The two random walks of the raw closes, scored on the ensemble's own rows.
    moments = walk_moments(warehouse.query("SELECT symbol, date, asset_class, close FROM market.prices"))
    ensemble = pd.concat([ensemble, walk_crps(moments, ensemble).drop(columns=["symbol", "date", "horizon"])], axis=1)
    rows = []
    for (asset_class, horizon), group in ensemble.groupby(["asset_class", "horizon"]):
        group = group.merge(reference, on=keys, how="inner")
        y = group["realized"].to_numpy()
        up = y > 0
        ics = rank_ic_series(group)
        steps = HORIZON_BY_LABEL[horizon].crypto_days if asset_class == "crypto" else HORIZON_BY_LABEL[horizon].equity_sessions
        models = preds[preds["horizon"] == horizon].merge(group[keys], on=keys).merge(reference, on=keys)
        per_model = models.groupby("model").apply(lambda m: 1.0 - m["crps"].mean() / m["crps_rw"].mean(),
                                                  include_groups=False)
        rows.append({
            "class": asset_class, "horizon": horizon, "rows": len(group), "windows": group["window_start"].nunique(),
            "rank_ic": ics.mean() if len(ics) else np.nan, "nw_t": newey_west_t(ics.to_numpy(), steps),
            "cov_80": float(np.mean((y >= group["q10"]) & (y <= group["q90"]))),
            "cov_90": float(np.mean((y >= group["q05"]) & (y <= group["q95"]))),
            "crps_skill": 1.0 - group["crps"].mean() / group["crps_rw"].mean(),
            **walk_skills(group),
            "best_model_skill": f"{per_model.drop(BASELINE, errors='ignore').idxmax()} {per_model.drop(BASELINE, errors='ignore').max():+.3f}"
            if len(per_model.drop(BASELINE, errors="ignore")) else "",
            "brier_p_up": float(np.mean((group["p_up"] - up) ** 2)),
            "brier_const": float(np.mean((up.mean() - up) ** 2)),
            "auc_conf_gain": auc(stated_gain_probability(group), up),
            "beats_rw_share": float(group["beats_reference"].mean()) if "beats_reference" in group else np.nan,
            **{f"skill {model}": skill for model, skill in per_model.drop(BASELINE, errors="ignore").items()},
        })
    order = {h.label: i for i, h in enumerate(HORIZONS)}
    frame = pd.DataFrame(rows)
    return frame.sort_values(["class", "horizon"], key=lambda c: c.map(order) if c.name == "horizon" else c)


def walk_skills(group: pd.DataFrame) -> dict[str, float]:
    """The ensemble's CRPS skill against each raw-close walk and against the better of the two, on the rows where
    both walks exist (a symbol's first year has none)."""
    rows = group[group["crps_zero_drift"].notna() & group["crps_expanding_drift"].notna()]
    if rows.empty:
        return {"walk_rows": 0, "skill_vs_zero": np.nan, "skill_vs_drift": np.nan, "skill_vs_better": np.nan,
                "better_walk": ""}
    walks = {"zero": rows["crps_zero_drift"].mean(), "drift": rows["crps_expanding_drift"].mean()}
    better = min(walks, key=walks.get)
    ensemble = rows["crps"].mean()
    return {"walk_rows": len(rows), "skill_vs_zero": 1.0 - ensemble / walks["zero"],
            "skill_vs_drift": 1.0 - ensemble / walks["drift"], "skill_vs_better": 1.0 - ensemble / walks[better],
            "better_walk": better}


def stated_gain_probability(frame: pd.DataFrame) -> np.ndarray:
    """The probability of a gain the advice stated: ``confidence`` itself; in a warehouse written before it meant
    that (no ``confidence_source``), the probability of the called direction turned into one of a gain, as sizing
    read it then."""
    confidence = frame["confidence"].to_numpy(dtype="float64")
    if "confidence_source" in frame.columns and frame["confidence_source"].notna().any():
        return confidence
    return np.where(frame["mean"].to_numpy(dtype="float64") > 0, confidence, 1.0 - confidence)


def reliability(warehouse: Warehouse, horizon: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """At ``horizon``, per asset class: the deciles of the stated probability of a gain (stated vs realized share of
    gains, rows), and the Brier score of the stated probability against the stored point-in-time base rate (where
    the warehouse has one) and the realized share of gains of the rows themselves (in sample), with the AUC."""
    frame = warehouse.query(
        f"""SELECT e.* EXCLUDE (realized, label_end), o.realized, p.asset_class FROM forecasts.ensemble e
            JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)
            JOIN (SELECT symbol, any_value(asset_class) AS asset_class FROM market.prices GROUP BY 1) p USING (symbol)
            WHERE e.horizon = ?""", [horizon])
    deciles, summary = [], []
    for asset_class, group in frame.groupby("asset_class"):
        stated = stated_gain_probability(group)
        gain = group["realized"].to_numpy(dtype="float64") > 0
        bins = pd.qcut(stated, 10, labels=False, duplicates="drop")
        table = pd.DataFrame({"stated": stated, "realized": gain, "bin": bins}).groupby("bin").agg(
            stated=("stated", "mean"), realized=("realized", "mean"), n=("realized", "size")).reset_index()
        deciles.append(table.assign(**{"class": asset_class, "gap": table["realized"] - table["stated"]}))
        base = group["prob_gain_base_rate"].to_numpy(dtype="float64") if "prob_gain_base_rate" in group else None
        shown = group["confidence_source"].value_counts(normalize=True).to_dict() if "confidence_source" in group else {}
        summary.append({
            "class": asset_class, "horizon": horizon, "rows": len(group),
            "brier_stated": float(np.mean((stated - gain) ** 2)),
            "brier_base_rate": float(np.mean((base - gain) ** 2)) if base is not None else np.nan,
            "brier_in_sample_share": float(np.mean((gain.mean() - gain) ** 2)),
            "auc_stated": auc(stated, gain),
            "auc_prob_gain": auc(group["prob_gain"].to_numpy(dtype="float64"), gain) if "prob_gain" in group else np.nan,
            "share_calibrated": shown.get("calibrated", 0.0),
            "max_decile_gap": float(np.max(np.abs(table["realized"] - table["stated"]))),
            # The same check on the probability as the page shows it (whole percent): a constant base rate is one
            # bin there, where deciles of its tiny window-to-window drift are groups of months.
            "max_gap_as_shown": _max_gap_as_shown(stated, gain),
        })
    return pd.concat(deciles, ignore_index=True), pd.DataFrame(summary)


def _max_gap_as_shown(stated: np.ndarray, gain: np.ndarray, min_rows: int = 100) -> float:
    """The largest gap between the realized share of gains and the stated probability over the groups of equal
    whole-percent stated probability with at least ``min_rows`` rows."""
    groups = pd.DataFrame({"shown": np.round(stated, 2), "stated": stated, "gain": gain}).groupby("shown")
    table = groups.agg(stated=("stated", "mean"), gain=("gain", "mean"), n=("gain", "size"))
    table = table[table["n"] >= min_rows]
    return float(np.max(np.abs(table["gain"] - table["stated"]))) if len(table) else float("nan")


def decision_figures(warehouse: Warehouse, horizon: str) -> tuple[pd.DataFrame, dict]:
    from quant_assets.lib.projections.decision_backtest import decision_backtest
    from quant_assets.lib.projections.sizing import SizingPolicy

    summary = decision_backtest(warehouse, SizingPolicy(horizon=horizon, n_scenarios=4000), 12.0, 10.0).summary
    table = warehouse.query("SELECT * FROM projections.backtest_summary ORDER BY strategy")
    return table, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the evaluation's own QUANT_HOME (created if missing)")
    parser.add_argument("--windows", default="2019-01-01..2022-12-01", help="monthly window starts FIRST..LAST")
    parser.add_argument("--workers", type=int, default=2, help="windows fitted side by side (processes)")
    parser.add_argument("--sizing-horizon", default="1m")
    parser.add_argument("--report-only", action="store_true",
                        help="fit nothing: build the ensembles of the fitted windows not stored yet and print the "
                             "figures (works on a home another run is still filling)")
    args = parser.parse_args()
    windows = parse_windows(args.windows)
    home = args.home.resolve()
    os.environ["QUANT_HOME"] = str(home)
    models = [*MODEL_NAMES, BASELINE]
    started = time.perf_counter()
    print(f"long evaluation: {len(windows)} monthly windows {windows[0][0]} .. {windows[-1][0]} in {home}; {load_note()}",
          flush=True)
    warehouse = Warehouse(home / "warehouse.duckdb")
    timings = {}
    built = Ensembles(home, windows, models, reuse=args.report_only)
    if not args.report_only:
        if not warehouse.table_exists("features.features"):
            timings["warehouse"] = build_warehouse(home, None)
            print(f"  sample warehouse built in {timings['warehouse']:.0f} s", flush=True)
        began = time.perf_counter()
        built.build_ready()
        fits = backfill(home, windows, models, args.workers, on_fitted=built.build_ready)
        timings["fits (ensembles built meanwhile)"] = time.perf_counter() - began
        if len(fits):
            per_model = fits[[m for m in models if m in fits]].mean().sort_values(ascending=False)
            print("  mean seconds per window and model (inside a worker, 2 side by side): "
                  + ", ".join(f"{m} {s:.1f}" for m, s in per_model.items()), flush=True)
            print(f"  mean seconds per window (all models): {fits['seconds'].mean():.1f}", flush=True)
    # The ensembles of every fitted window not built yet, in order (a report on a partial run builds them for
    # what is fitted).
    began = time.perf_counter()
    built.build_rest()
    timings["ensembles after the fits"] = time.perf_counter() - began
    print(f"  ensembles: {len(built.built)} built in {built.seconds:.0f} s "
          f"({timings['ensembles after the fits']:.0f} s of it after the fits)", flush=True)
    done = sorted(fitted_windows(warehouse, models))
    print(f"\nwindows fitted: {len(done)} ({done[0] if done else '-'} .. {done[-1] if done else '-'})")
    figures = forecast_figures(warehouse)
    skills = [c for c in figures.columns if c.startswith("skill ")]
    print("\nforecasts (ensemble; CRPS skill and coverage on rows with realized labels):")
    print(figures.drop(columns=skills).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nCRPS skill of each model against the random walk (the ensemble's rows):")
    print(figures[["class", "horizon", *skills]].rename(columns=lambda c: c.removeprefix("skill "))
          .to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    print("\nCRPS skill of the ensemble against the two raw-close random walks (trailing 252-row volatility; "
          "zero drift, and each symbol's expanding-mean drift), on the rows where both exist:")
    print(figures[["class", "horizon", "walk_rows", "skill_vs_zero", "skill_vs_drift", "better_walk", "skill_vs_better"]]
          .to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    deciles, calibration = reliability(warehouse, args.sizing_horizon)
    print(f"\nreliability of the stated probability of a gain at the sizing horizon {args.sizing_horizon} "
          "(deciles of stated probability: mean stated, realized share of gains, rows):")
    print(deciles[["class", "bin", "stated", "realized", "gap", "n"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nBrier of the stated probability vs the point-in-time base rate (and the rows' own share of gains, in "
          "sample), AUC:")
    print(calibration.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    began = time.perf_counter()
    table, summary = decision_figures(warehouse, args.sizing_horizon)
    timings["backtest"] = time.perf_counter() - began
    print(f"\ndecisions (sizing horizon {args.sizing_horizon}, held from decision to decision, 10 bp costs; "
          f"{summary['complete_periods']} complete periods, {summary['gaps']} gap(s), in progress: {summary['in_progress']}; "
          f"cap binding on {_share(summary['cap_binding_share'])} of held positions):")
    print(table[["strategy", "periods", "log_growth", "annual_return", "annual_volatility", "sharpe", "sharpe_se",
                 "psr_vs_equal_weight", "deflated_sharpe", "max_drawdown", "annual_turnover", "costs_paid",
                 "mean_invested", "invested_std"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"  {int(table['trials'].iloc[0])} strategies and settings tried (the deflated Sharpe counts them); entry at "
          f"each symbol's first close after the decision")
    goals(figures, table, calibration)
    timings["total"] = time.perf_counter() - started
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; {load_note()}")
    return 0


def _share(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.0%}"


def goals(figures: pd.DataFrame, table: pd.DataFrame, calibration: pd.DataFrame) -> None:
    print("\ngoals (issue 20):")
    for row in figures.itertuples():
        ok = GOAL_COVERAGE[0] <= row.cov_80 <= GOAL_COVERAGE[1]
        floor = GOAL_SKILL_SHORT if row.horizon in ("1w", "1m") else 0.0
        crps_ok = np.isfinite(row.skill_vs_better) and row.skill_vs_better >= floor
        print(f"  {row._1:<6} {row.horizon}: P10-P90 coverage {row.cov_80:.3f} {'met' if ok else 'NOT met'}; "
              f"CRPS skill vs the better walk {row.skill_vs_better:+.4f} (goal >= {floor:+.0%}) "
              f"{'met' if crps_ok else 'NOT met'}")
    for row in calibration.itertuples():
        beats = np.isfinite(row.brier_base_rate) and row.brier_stated <= row.brier_base_rate
        print(f"  {row._1:<6} {row.horizon}: every decile's realized share of gains within 5 pp of the stated "
              f"probability: largest gap {row.max_decile_gap:.3f} {'met' if row.max_decile_gap <= 0.05 else 'NOT met'}; "
              f"Brier {row.brier_stated:.4f} vs base rate {row.brier_base_rate:.4f} "
              f"({'not above it: met' if beats else 'NOT met'})")
    by = table.set_index("strategy")
    if {"half_kelly", "equal_weight"} <= set(by.index):
        fk, ew = by.loc["half_kelly"], by.loc["equal_weight"]
        ratio = fk["max_drawdown"] / ew["max_drawdown"] if ew["max_drawdown"] else float("nan")
        print(f"  issue 20: fractional-Kelly Sharpe {fk['sharpe']:.3f} vs equal weight {ew['sharpe']:.3f} "
              f"(PSR {fk['psr_vs_equal_weight']:.2f}); max drawdown {ratio:.2f} of equal weight's (goal <= 0.75): "
              f"{'met' if fk['sharpe'] >= ew['sharpe'] and ratio <= 0.75 else 'NOT met'}; invested share "
              f"{fk['mean_invested']:.2f} +- {fk['invested_std']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
