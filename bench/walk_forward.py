"""Benchmark: walk-forward fit+predict time per window for every model, and our LightGBM walk-forward
against Nixtla's mlforecast ``cross_validation`` on the same features, windows and booster parameters.

Data: the sample warehouse (market + features assets materialized into a temporary QUANT_HOME; the full
default universe, or ``--symbols``), or an existing ``--home``. Windows are monthly, named by their first
date (``--windows 2022-10-01..2022-12-01`` = October, November and December 2022), planned with the
settings' embargo, training span and mode.

Part 1 times ``run_fold`` (one model, one window, all four horizons: fit on purged rows, predict the window
and its context, score) for each model and prints seconds per window and rows trained.

Part 2 compares, at horizon 1m (21 sessions) on equities only (one trading calendar), our LightGBM
walk-forward with mlforecast's. mlforecast gets our dbt features as dynamic exogenous columns (no lags or
lag transforms of its own), ``y`` = the 1m forward return, integer ``ds`` = session number (``freq=1``),
``refit=True``, and ``LGBMRegressor``s built from the exact parameters of our fitted boosters. Two mlforecast
set-ups are timed:
  - native: its own convention, trained on every target dated up to the cutoff (the last session before the
    window) within the same rolling span (``input_size``). A 1m target dated in the last 21 sessions before
    the cutoff is realized inside the window, so this trains on labels we purge: a difference in leakage
    control, not in speed.
  - purged: the same rows ours trains on, one ``cross_validation`` call per window on those rows plus the
    window, with the purged sessions taken out of the integer calendar (mlforecast refuses null targets, and
    without lags nothing depends on adjacent sessions): the like-for-like comparison.
Ours is timed from the panel to the window's predictions (training mask, fit, predict), once for the q50
booster alone and once for the whole seven-quantile model; mlforecast with the matching one or seven models.
Agreement (Pearson, Spearman, mean and max absolute difference) is on the common (symbol, date) rows.

Run: ``.venv/bin/python bench/walk_forward.py`` (about 10 minutes on 2 shared cores; single-threaded work).
"""

from __future__ import annotations

import os

# Single-threaded numerics: the machine is shared and both sides of the comparison get the same one core.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quant_assets.lib.models import BASELINE, MODEL_NAMES, make_model, model_entry  # noqa: E402
from quant_assets.lib.models.base import (  # noqa: E402
    QUANTILE_COLUMNS,
    QUANTILE_LEVELS,
    TARGET,
    FeaturePrep,
    feature_columns,
    training_rows,
)
from quant_assets.lib.walk_forward.training import LABEL_COLUMNS, load_panel, panel_span, run_fold  # noqa: E402
from quant_assets.lib.walk_forward.plan import WindowPlan, eval_mask, plan_window, training_mask  # noqa: E402
from quant_assets.lib.storage.warehouse import Warehouse  # noqa: E402
from quant_assets.settings import Settings  # noqa: E402

HORIZON = "1m"
STEPS = 21  # sessions in the 1m horizon for equities
Q50 = QUANTILE_LEVELS.index(0.5)

# The market and features jobs over every daily partition (one run each, the range tags of their single-run
# backfill policy), recorded in a throwaway instance: the benchmark measures the fits, not Dagster's events.
MATERIALIZE = (
    "import dagster as dg; from quant_assets.definitions import defs; "
    "from quant_assets.defs.automation import RANGE_END, RANGE_START; "
    "days = defs.resolve_job_def('market').partitions_def.get_partition_keys(); "
    "tags = {RANGE_START: days[0], RANGE_END: days[-1]}; instance = dg.DagsterInstance.ephemeral(); "
    "ok = all(defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags).success "
    "for job in ('market', 'features')); raise SystemExit(0 if ok else 1)"
)


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def parse_windows(text: str) -> list[tuple[date, date]]:
    """``FIRST..LAST`` (monthly window starts, inclusive) or a comma list of starts; each window lasts a month."""
    try:
        if ".." in text:
            first, last = (pd.Timestamp(part.strip()) for part in text.split("..", 1))
            starts = list(pd.date_range(first, last, freq=pd.DateOffset(months=1)))
        else:
            starts = [pd.Timestamp(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise SystemExit(f"--windows {text!r}: not dates ({exc}); give e.g. 2022-10-01..2022-12-01") from exc
    if not starts:
        raise SystemExit(f"--windows {text!r} names no window; give e.g. 2022-10-01..2022-12-01")
    return [(s.date(), (s + pd.DateOffset(months=1)).date()) for s in starts]


def build_warehouse(home: Path, symbols: str | None) -> float:
    """Materialize the market and features groups into ``home``; returns the seconds it took."""
    env = {**os.environ, "QUANT_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if symbols:
        env["QUANT_UNIVERSE"] = symbols
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MATERIALIZE], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"materializing the market and features assets into {home} failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - started


def window_plans(windows: list[tuple[date, date]], settings: Settings) -> list[list[WindowPlan]]:
    return [
        plan_window(start, end, embargo_days=settings.wf_embargo_days, train_years=settings.wf_train_years,
                    mode=settings.wf_mode)
        for start, end in windows
    ]


# ---------------------------------------------------------------- part 1: every model, every window


def available_models(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Models whose module imports and which construct; the rest with the reason, to print."""
    ready, notes = [], []
    for name in names:
        try:
            make_model(name, horizon=HORIZON, seed=seed)
        except (ImportError, AttributeError) as exc:
            notes.append(f"{name}: skipped, not available ({type(exc).__name__}: {exc})")
        else:
            ready.append(name)
    return ready, notes


def warm_up(names: list[str]) -> None:
    """Load what a process loads once, not per window: the model modules (``available_models``) and torch's
    deterministic-algorithms machinery, which its first use imports (seconds)."""
    if any(model_entry(name)[0] == "deep" for name in names):
        from quant_assets.lib.models.deep_training import torch_session

        with torch_session(0):
            pass


def time_models(warehouse: Warehouse, all_plans: list[list[WindowPlan]], names: list[str], seed: int) -> bool:
    ready, notes = available_models(names, seed)
    for note in notes:
        print(f"  note: {note}")
    warm_up(ready)
    panels = []
    for plans in all_plans:
        panels.append(load_panel(warehouse, *panel_span(plans)))
        if not eval_mask(panels[-1], plans[0]).any():
            raise SystemExit(f"window {plans[0].window_start}: the warehouse has no rows to predict in it")
    rows, failed = [], False
    for name in ready:
        walls, fits, trained, predicted, crps = [], [], [], [], []
        try:
            for plans, panel in zip(all_plans, panels):
                started = time.perf_counter()
                result = run_fold(name, plans, panel, seed=seed)
                walls.append(time.perf_counter() - started)
                fits.append(float(result.fits["seconds"].sum()))
                trained.append(int(result.fits["train_rows"].sum()))
                predicted.append(len(result.predictions) // len(plans))
                crps.append(result.scores.set_index("horizon")["crps"])
        except Exception as exc:  # a benchmark reports a broken model and carries on with the others
            print(f"  note: {name}: failed in window {plans[0].window_start}: {type(exc).__name__}: {exc}")
            failed = True
            continue
        rows.append({
            "model": name, "family": model_entry(name)[2],
            "s/window mean": statistics.fmean(walls), "min": min(walls), "max": max(walls),
            "fit+predict s": statistics.fmean(fits), "rows trained (4 h)": round(statistics.fmean(trained)),
            "rows predicted": round(statistics.fmean(predicted)),
            **{f"crps {h}": v for h, v in pd.concat(crps, axis=1).mean(axis=1).items()},
        })
        print(f"  {name:<16} {statistics.fmean(walls):7.2f} s/window   ({load_note()})", flush=True)
    if rows:
        table = pd.DataFrame(rows)
        total = table["s/window mean"].sum()
        print()
        print(table.to_string(index=False, float_format=lambda v: f"{v:.5f}" if abs(v) < 1 else f"{v:.2f}"))
        if BASELINE in set(table["model"]):
            crps_columns = [c for c in table.columns if c.startswith("crps ")]
            reference = table.set_index("model").loc[BASELINE, crps_columns]
            skill = 1.0 - table.set_index("model")[crps_columns] / reference
            print("\n  CRPS skill against the random walk (1 - crps / crps_baseline; mean CRPS over the windows):")
            print(skill.to_string(float_format=lambda v: f"{v:+.4f}"))
        print(f"  all models: {total:.1f} s per window ({total / 60:.1f} min); "
              f"a window's fits of the {len(rows)} models in sequence")
    return not failed


# ---------------------------------------------------------------- part 2: LightGBM against mlforecast


@dataclass
class Window:
    plan: WindowPlan
    mask: np.ndarray  # our training rows (positions in the equity panel)
    in_window: np.ndarray  # rows predicted
    sessions: int
    cutoff: int  # ds of the last session before the window
    first_ds: int  # ds of the first session of the rolling training span


def equity_panel(warehouse: Warehouse, all_plans: list[list[WindowPlan]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The equity rows of the panel spanning every window, and the same rows in mlforecast's frame
    (``unique_id``, integer session ``ds``, ``y``, then our feature columns in our order)."""
    start = min(panel_span(plans)[0] for plans in all_plans)
    end = max(plans[0].window_end for plans in all_plans)
    panel = load_panel(warehouse, start, end)
    eq = panel[panel["asset_class"] == "equity"].reset_index(drop=True)
    if eq.empty:
        raise SystemExit("the universe has no equity: the mlforecast comparison runs on equities only")
    sessions = np.sort(eq["date"].unique())
    per_symbol = eq.groupby("symbol")["date"].nunique()
    ragged = per_symbol[per_symbol != len(sessions)]
    if not ragged.empty:
        raise SystemExit(f"equities {list(ragged.index)} miss sessions other equities trade between {start} and "
                         f"{end}; mlforecast's integer calendar needs one shared calendar")
    features = eq.drop(columns=[c for c in LABEL_COLUMNS if c in eq.columns])
    # Columns that are null for every equity (on-chain) are constant after our median fill and carry nothing.
    columns = [c for c in feature_columns(features) if eq[c].notna().any()]
    frame = pd.DataFrame({
        "unique_id": eq["symbol"].astype(str),
        "ds": np.searchsorted(sessions, eq["date"].to_numpy()).astype("int64"),
        "y": eq[f"fwd_{HORIZON}"].astype("float64"),
    })
    frame = pd.concat([frame, eq[columns].astype("float64")], axis=1)
    return eq, frame


def comparison_windows(eq: pd.DataFrame, frame: pd.DataFrame, all_plans: list[list[WindowPlan]]) -> list[Window]:
    out = []
    for plans in all_plans:
        plan = next(p for p in plans if p.horizon == HORIZON)
        in_window = eval_mask(eq, plan).to_numpy()
        ds = frame["ds"].to_numpy()
        window_ds = np.unique(ds[in_window])
        if len(window_ds) == 0:
            raise SystemExit(f"window {plan.window_start}: no equity session to predict")
        first = frame.loc[eq["date"] >= pd.Timestamp(plan.train_start), "ds"].min() if plan.train_start else 0
        out.append(Window(plan, training_mask(eq, plan), in_window, len(window_ds), int(window_ds[0]) - 1, int(first)))
    return out


def booster_params(seed: int) -> list[dict]:
    """The scikit-learn parameters of our boosters, one per quantile level, as the forecaster builds them."""
    model = make_model("lightgbm", horizon=HORIZON, seed=seed)
    return [model.booster_params(level) for level in QUANTILE_LEVELS]


def ours(eq: pd.DataFrame, window: Window, seed: int, q50_only: bool, params: dict) -> pd.DataFrame:
    """Our walk-forward step for one window: training mask, fit, predict the window (q50, or all quantiles)."""
    import lightgbm as lgb

    from quant_assets.lib.models.trees import _standardized_target

    features = eq.drop(columns=[c for c in LABEL_COLUMNS if c in eq.columns])
    mask = training_mask(eq, window.plan)
    train = features[mask].assign(**{TARGET: eq.loc[mask, f"fwd_{HORIZON}"]})
    rows = features[window.in_window]
    if not q50_only:
        return make_model("lightgbm", horizon=HORIZON, seed=seed).fit(train).predict(rows)
    # The q50 booster exactly as LightGBMForecaster fits it: its feature prep and standardized target.
    train = training_rows(train, "lightgbm")
    prep = FeaturePrep.fit(train)
    y, center, scale = _standardized_target(train)
    booster = lgb.LGBMRegressor(**params).fit(prep.raw(train), y)
    out = rows[["symbol", "date"]].reset_index(drop=True)
    out["q50"] = center + scale * booster.predict(prep.raw(rows))
    return out


def mlforecast_models(params: list[dict], q50_only: bool) -> dict:
    import lightgbm as lgb

    chosen = [params[Q50]] if q50_only else params
    names = ["q50"] if q50_only else list(QUANTILE_COLUMNS)
    return {name: lgb.LGBMRegressor(**p) for name, p in zip(names, chosen)}


def native_single_call(frame: pd.DataFrame, windows: list[Window]) -> str | None:
    """Why mlforecast's native run cannot be one cross_validation over all windows, or None if it can."""
    if len({w.sessions for w in windows}) > 1:
        return "window lengths differ: " + ", ".join(str(w.sessions) for w in windows) + " sessions"
    ds = frame["ds"].to_numpy()
    span = windows[0].cutoff - windows[0].first_ds + 1
    trained = (ds > windows[0].cutoff - span) & (ds <= windows[-1].cutoff)
    if frame.loc[trained, "y"].isna().any():
        return "some targets before the last cutoff are not yet realized, and mlforecast refuses null targets"
    return None


def mlf_native(frame: pd.DataFrame, windows: list[Window], params: list[dict], q50_only: bool) -> pd.DataFrame:
    """mlforecast's own walk-forward: one cross_validation over all windows (step = window length) when it
    can, else one call per window on its known targets plus the window."""
    from mlforecast import MLForecast

    span = windows[0].cutoff - windows[0].first_ds + 1
    ds = frame["ds"].to_numpy()
    if native_single_call(frame, windows) is None:
        h = windows[0].sessions
        df = frame[(ds > windows[0].cutoff - span) & (ds <= windows[-1].cutoff + h)]
        mlf = MLForecast(models=mlforecast_models(params, q50_only), freq=1)
        return mlf.cross_validation(df, n_windows=len(windows), h=h, step_size=h, refit=True, input_size=span,
                                    static_features=[], as_numpy=True)
    return pd.concat([
        on_rows(frame, train, w, params, q50_only) for w, train in zip(windows, native_rows(frame, windows))
    ], ignore_index=True)


def mlf_purged(frame: pd.DataFrame, eq: pd.DataFrame, windows: list[Window], params: list[dict],
               q50_only: bool) -> pd.DataFrame:
    """mlforecast trained on exactly our rows (our training mask), one cross_validation call per window."""
    return pd.concat([
        on_rows(frame, training_mask(eq, w.plan), w, params, q50_only) for w in windows
    ], ignore_index=True)


def on_rows(frame: pd.DataFrame, train: np.ndarray, w: Window, params: list[dict], q50_only: bool) -> pd.DataFrame:
    """One cross_validation window trained on the ``train`` rows and predicting the window.

    mlforecast refuses null targets and forecasts the h sessions after a series' last training row, so the
    sessions between the last training row and the window (purged, embargoed or not yet realized) are taken
    out of the integer calendar; our features are exogenous (no lags), so no feature changes.
    """
    from mlforecast import MLForecast

    df = frame[train | w.in_window].copy()
    real_ds = df["ds"].to_numpy()
    calendar = np.unique(real_ds)
    df["ds"] = np.searchsorted(calendar, real_ds)
    mlf = MLForecast(models=mlforecast_models(params, q50_only), freq=1)
    predicted = mlf.cross_validation(df, n_windows=1, h=w.sessions, refit=True, static_features=[], as_numpy=True)
    predicted["ds"] = calendar[predicted["ds"].to_numpy()]
    predicted["cutoff"] = calendar[predicted["cutoff"].to_numpy()]
    return predicted


def check_purge_is_a_date_range(eq: pd.DataFrame, windows: list[Window]) -> None:
    """The purged set-up needs our training rows to be the same contiguous run of sessions for every equity."""
    sessions = np.sort(eq["date"].unique())
    symbols = eq["symbol"].nunique()
    for w in windows:
        dates = np.unique(eq.loc[w.mask, "date"].to_numpy())
        first, last = np.searchsorted(sessions, dates[[0, -1]])
        if int(w.mask.sum()) != symbols * len(dates) or len(dates) != last - first + 1:
            raise SystemExit(f"window {w.plan.window_start}: our training rows are not one run of sessions shared by "
                             f"every equity (a label is missing somewhere), so mlforecast cannot be given the same rows")


def native_rows(frame: pd.DataFrame, windows: list[Window]) -> list[np.ndarray]:
    """Per window, the rows mlforecast's native set-up trains on (mirrors backtest_splits + its null-target drop)."""
    ds, known = frame["ds"].to_numpy(), frame["y"].notna().to_numpy()
    span = windows[0].cutoff - windows[0].first_ds + 1
    return [(ds > w.cutoff - span) & (ds <= w.cutoff) & known for w in windows]


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a - b)
    return {"pearson": float(np.corrcoef(a, b)[0, 1]), "spearman": float(stats.spearmanr(a, b).statistic),
            "mean |diff|": float(diff.mean()), "max |diff|": float(diff.max()),
            "mean |diff| / sd": float(diff.mean() / a.std())}


def as_keyed(predictions: pd.DataFrame, sessions: np.ndarray) -> pd.DataFrame:
    """mlforecast output keyed by (symbol, date), quantile columns sorted per row as ours are."""
    out = predictions.rename(columns={"unique_id": "symbol"})
    out["date"] = sessions[out["ds"].to_numpy()]
    cols = [c for c in QUANTILE_COLUMNS if c in out.columns]
    out[cols] = np.sort(out[cols].to_numpy(), axis=1)
    return out[["symbol", "date", "cutoff", *cols]]


def interleaved(runs: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """Median wall time and last result of each run, the runs taking turns so load drift hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    values: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            started = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), values[name]) for name in runs}


def format_table(rows: list[dict]) -> str:
    formats = {"s/window": "{:.3f}", "ours/this": "{:.2f}", "pearson": "{:.6f}", "spearman": "{:.6f}",
               "mean |diff|": "{:.2e}", "max |diff|": "{:.2e}", "mean |diff| / sd": "{:.2e}", "rank IC": "{:.4f}"}
    table = pd.DataFrame(rows)
    for column, fmt in formats.items():
        table[column] = [fmt.format(v) if pd.notna(v) else "" for v in table.get(column, [np.nan] * len(table))]
    return table.to_string(index=False)


def compare_mlforecast(warehouse: Warehouse, all_plans: list[list[WindowPlan]], seed: int, repeats: int) -> float:
    import mlforecast

    eq, frame = equity_panel(warehouse, all_plans)
    windows = comparison_windows(eq, frame, all_plans)
    sessions = np.sort(eq["date"].unique())
    params = booster_params(seed)
    print(f"  mlforecast {mlforecast.__version__}; equities {eq['symbol'].nunique()}; horizon {HORIZON} "
          f"({STEPS} sessions); features {frame.shape[1] - 3} dynamic exogenous columns, no lags of its own")
    p = params[Q50]
    print(f"  booster parameters (ours): objective={p['objective']} alpha={p['alpha']} "
          f"n_estimators={p['n_estimators']} learning_rate={p['learning_rate']} num_leaves={p['num_leaves']} "
          f"min_child_samples={p['min_child_samples']} subsample={p['subsample']} colsample_bytree="
          f"{p['colsample_bytree']} max_bin={p['max_bin']} n_jobs={p['n_jobs']} seed={p['random_state']}")
    check_purge_is_a_date_range(eq, windows)
    native_masks = native_rows(frame, windows)
    print("  windows:")
    for w, native in zip(windows, native_masks):
        ours_ends = eq.loc[w.mask, f"end_{HORIZON}"].max()
        native_last = sessions[w.cutoff]
        native_end = sessions[min(w.cutoff + STEPS, len(sessions) - 1)]
        extra = int((native & ~w.mask).sum())
        missing = int((w.mask & ~native).sum())
        print(f"    [{w.plan.window_start}, {w.plan.window_end}): {w.sessions} sessions, {int(w.in_window.sum())} rows "
              f"predicted; ours trains {int(w.mask.sum()):,} rows (labels end by {ours_ends:%Y-%m-%d}, before "
              f"{w.plan.train_end}); native mlforecast {int(native.sum()):,} rows up to {pd.Timestamp(native_last):%Y-%m-%d} "
              f"(labels end as late as {pd.Timestamp(native_end):%Y-%m-%d}): +{extra} rows ours purges, -{missing}")
    why_not = native_single_call(frame, windows)
    if why_not is None:
        native_how = (f"one call, n_windows={len(windows)}, h=step_size={windows[0].sessions}, "
                      f"input_size={windows[0].cutoff - windows[0].first_ds + 1}")
    else:
        native_how = f"one call per window ({why_not}), same rolling span"
    print(f"  native: cross_validation {native_how}, refit=True")
    print("  purged: cross_validation per window (n_windows=1, h=window sessions) on our training rows + the window,\n"
          "          the purged and embargoed sessions taken out of the integer calendar (mlforecast refuses null targets)")
    print(f"  timing: median of {repeats} runs, all windows; per window = total / {len(windows)}; {load_note()}")

    realized = eq.loc[np.any([w.in_window for w in windows], axis=0), ["symbol", "date", f"fwd_{HORIZON}"]]
    features = frame.columns[3:]
    used = np.any([w.mask | w.in_window for w in windows], axis=0)
    missing_cells = int(frame.loc[used, features].isna().sum().sum())
    rows, ratios, quantile_note = [], {}, ""
    for q50_only in (True, False):
        label = "q50 booster" if q50_only else "7 quantile boosters"
        results = interleaved({
            "ours": lambda: pd.concat([ours(eq, w, seed, q50_only, params[Q50]) for w in windows], ignore_index=True),
            "mlforecast purged": lambda: as_keyed(mlf_purged(frame, eq, windows, params, q50_only), sessions),
            "mlforecast native": lambda: as_keyed(mlf_native(frame, windows, params, q50_only), sessions),
        }, repeats)
        ours_seconds, ours_pred = results["ours"]
        for name, (seconds, predictions) in results.items():
            merged = ours_pred[["symbol", "date", "q50"]].merge(predictions[["symbol", "date", "q50"]],
                                                               on=["symbol", "date"], suffixes=("_ours", ""))
            scored = predictions.merge(realized, on=["symbol", "date"]).dropna(subset=[f"fwd_{HORIZON}"])
            row = {"models": label, "run": name, "s/window": seconds / len(windows),
                   "ours/this": ours_seconds / seconds, "rows": len(merged)}
            if name != "ours":
                row.update(agreement(merged["q50_ours"].to_numpy(), merged["q50"].to_numpy()))
            row["rank IC"] = float(stats.spearmanr(scored["q50"], scored[f"fwd_{HORIZON}"]).statistic)
            rows.append(row)
            if name == "mlforecast purged":
                ratios[label] = ours_seconds / seconds
        if not q50_only:
            merged = ours_pred.merge(results["mlforecast purged"][1], on=["symbol", "date"], suffixes=("_ours", ""))
            per_level = [agreement(merged[f"{c}_ours"].to_numpy(), merged[c].to_numpy()) for c in QUANTILE_COLUMNS]
            quantile_note = ", ".join(f"{c} {a['pearson']:.6f} / {a['max |diff|']:.1e}"
                                      for c, a in zip(QUANTILE_COLUMNS, per_level))
        print(f"  timed: {label} ({load_note()})", flush=True)
    print()
    print(format_table(rows))
    print(f"  agreement columns: q50 of that run against ours on the common (symbol, date) rows (sd = sd of ours); "
          f"rank IC: Spearman of q50 with the realized {HORIZON} return where it is known")
    print(f"  all seven quantiles, ours vs mlforecast purged (Pearson / max |diff|): {quantile_note}")
    nan_note = ("no feature value is missing in these rows, so that plays no part here" if missing_cells == 0
                else f"{missing_cells:,} feature values are missing in these rows")
    print("  differences that remain in the purged set-up: ours fills missing features with training medians while "
          f"mlforecast leaves NaN to LightGBM ({nan_note}); ours fits a standardized target and rescales (quantile "
          "boosting is equivariant under that, up to rounding)")
    print("  leakage control: mlforecast cross_validation has no label purge or embargo; with y = a forward return "
          "it trains on targets realized inside the window it then predicts (the native rows above). Ours trains "
          f"only on labels that end before window_start - {windows[0].plan.embargo_days} days.")
    print(f"  ours/mlforecast time ratio, like-for-like (purged): q50 booster {ratios['q50 booster']:.2f}, "
          f"7 quantile boosters {ratios['7 quantile boosters']:.2f}")
    return ratios["7 quantile boosters"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", default="2022-09-01..2022-11-01",
                        help="monthly window starts: FIRST..LAST (inclusive) or a comma list")
    parser.add_argument("--symbols", help="comma-separated universe (default: the settings' default universe)")
    parser.add_argument("--models", help=f"comma-separated models for part 1 (default: all ten and {BASELINE})")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per set-up in part 2 (median)")
    parser.add_argument("--home", type=Path, help="use this QUANT_HOME's warehouse instead of building a fresh one")
    parser.add_argument("--skip-models", action="store_true", help="skip part 1")
    parser.add_argument("--skip-mlforecast", action="store_true", help="skip part 2")
    args = parser.parse_args()
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    names = [m.strip() for m in args.models.split(",")] if args.models else [*MODEL_NAMES, BASELINE]
    for name in names:
        model_entry(name)
    settings = Settings()
    windows = parse_windows(args.windows)
    all_plans = window_plans(windows, settings)
    print(f"walk-forward benchmark: windows {', '.join(str(s) for s, _ in windows)} (monthly); embargo "
          f"{settings.wf_embargo_days} days, {settings.wf_mode} {settings.wf_train_years} years; seed {settings.seed}")
    print(f"  python {sys.version.split()[0]}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; {load_note()}")

    with tempfile.TemporaryDirectory(prefix="bench_walk_forward_") as tmp:
        home = args.home or Path(tmp)
        if args.home is None:
            seconds = build_warehouse(home, args.symbols)
            print(f"  sample warehouse built in {seconds:.0f} s (market + features assets) in a temporary QUANT_HOME")
        warehouse = Warehouse(home / "warehouse.duckdb")
        universe = warehouse.query("SELECT asset_class, count(DISTINCT symbol) AS n, min(date) AS first, "
                                   "max(date) AS last FROM features.features GROUP BY 1 ORDER BY 1")
        for row in universe.itertuples():
            print(f"  {row.asset_class}: {row.n} symbols, {row.first:%Y-%m-%d} .. {row.last:%Y-%m-%d}")

        ok = True
        if not args.skip_models:
            print(f"\n1. run_fold per model and window (fit on purged rows + predict window and context + score, "
                  f"all four horizons; {len(windows)} windows)")
            ok = time_models(warehouse, all_plans, names, settings.seed)
        if not args.skip_mlforecast:
            print(f"\n2. LightGBM walk-forward: ours against mlforecast cross_validation ({HORIZON}, equities)")
            ratio = compare_mlforecast(warehouse, all_plans, settings.seed, args.repeats)
    print(f"\n{load_note()}")
    if not args.skip_mlforecast:
        print(f"ours/mlforecast time ratio = {ratio:.2f} (goal <= 1)  [7 quantile boosters, like-for-like purged set-up]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
