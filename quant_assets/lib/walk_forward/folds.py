"""The walk-forward assets' work without Dagster: store a window's plan, fit and track a fold, audit both."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

import pandas as pd

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.walk_forward.model_store import copy_models, save_window_models
from quant_assets.lib.walk_forward.plan import (
    WindowPlan,
    WindowRules,
    audit_training_rows,
    eval_mask,
    plan_window,
    training_mask,
)
from quant_assets.lib.walk_forward.tracking import TrackingStore, complete_run, discard_run, reserve_run
from quant_assets.lib.walk_forward.training import FoldResult, load_panel, panel_span, run_fold, store_fold

LABELS_SQL = "SELECT * FROM labels.forward_returns ORDER BY symbol, date"


def plan_and_store(warehouse: Warehouse, rules: WindowRules, window_start: date, window_end: date) -> dict[str, object]:
    """Write the window's plan (one row per horizon) to ``forecasts.plans``; fails if the window has no data."""
    plans = plan_window(window_start, window_end, embargo_days=rules.embargo_days, train_years=rules.train_years,
                        mode=rules.mode)
    labels = warehouse.query(LABELS_SQL)
    eval_rows = int(eval_mask(labels, plans[0]).sum())
    if eval_rows == 0:
        last = labels["date"].max()
        raise ValueError(f"window {window_start}..{window_end} has no feature rows to predict; the data ends on {last:%Y-%m-%d}")
    rows = []
    for plan in plans:
        used = training_mask(labels, plan)
        rows.append({
            "window_start": plan.window_start, "window_end": plan.window_end, "horizon": plan.horizon,
            "train_start": plan.train_start, "train_label_end_before": plan.train_end,
            "embargo_days": plan.embargo_days, "mode": plan.mode, "train_rows": int(used.sum()),
            "eval_rows": eval_rows,
            "latest_train_label_end": _date_or_none(labels.loc[used, f"end_{plan.horizon}"].max()),
        })
    frame = pd.DataFrame(rows)
    warehouse.replace("forecasts.plans", frame, where={"window_start": window_start})
    return {"eval_rows": eval_rows, "train_rows": {r["horizon"]: r["train_rows"] for r in rows},
            "table_summary": frame.drop(columns=["window_start", "window_end"])}


def stored_plans(warehouse: Warehouse, window_start: date) -> list[WindowPlan]:
    """The plans the fits of a window train by, as stored by the plan asset."""
    frame = warehouse.query("SELECT * FROM forecasts.plans WHERE window_start = ? ORDER BY horizon", [window_start])
    if frame.empty:
        raise ValueError(f"no plan stored for window {window_start}; materialize walk_forward_plan for it first")
    return [
        WindowPlan(window_start=r.window_start.date(), window_end=r.window_end.date(), embargo_days=int(r.embargo_days),
                   train_start=_date_or_none(r.train_start), train_end=r.train_label_end_before.date(),
                   horizon=r.horizon, mode=r.mode)
        for r in frame.itertuples()
    ]


def audit_plan(warehouse: Warehouse, window_start: date, min_embargo_days: int) -> list[str]:
    """Violations of the stored plan: training label intervals that reach into the window or its embargo.

    The rows are re-derived from the labels with the stored plan's own bounds, and judged against the
    true window and an embargo of at least ``min_embargo_days``, so a plan that is wrong anywhere fails.
    """
    labels = warehouse.query(LABELS_SQL)
    violations: list[str] = []
    for plan in stored_plans(warehouse, window_start):
        used = labels[training_mask(labels, plan)]
        rows = used[["symbol", "date"]].assign(end=used[f"end_{plan.horizon}"])
        judged = WindowPlan(**{**asdict(plan), "embargo_days": max(plan.embargo_days, min_embargo_days)})
        violations += audit_training_rows(rows, judged)
    return violations


def audit_fit(warehouse: Warehouse, window_start: date, model: str) -> list[str]:
    """Violations of a fit: the latest label it actually trained on must end before the window minus embargo."""
    fits = warehouse.query(
        """SELECT f.horizon, f.latest_train_label_end, p.embargo_days FROM forecasts.fits f
           JOIN forecasts.plans p USING (window_start, horizon) WHERE f.window_start = ? AND f.model = ?""",
        [window_start, model],
    )
    if fits.empty:
        return [f"no fit record for {model} in window {window_start}"]
    out = []
    for row in fits.itertuples():
        limit = window_start - timedelta(days=int(row.embargo_days))
        if row.latest_train_label_end.date() >= limit:
            out.append(f"{model} {row.horizon}: trained on a label ending {row.latest_train_label_end:%Y-%m-%d}, "
                       f"not before {limit} (window {window_start} minus embargo)")
    return out


def fit_and_store(warehouse: Warehouse, model_name: str, window_start: date, *, seed: int, models_home,
                  tracking: TrackingStore, dagster_run_id: str) -> dict[str, object]:
    """Fit one model for one window by its stored plan, store its outputs, and track the fold in MLflow.

    The models are kept under ``models_home`` (QUANT_HOME, or the object store in the cluster profile) for the
    daily step, which predicts each new day of the window with them."""
    plans = stored_plans(warehouse, window_start)
    panel = load_panel(warehouse, *panel_span(plans))
    result = run_fold(model_name, plans, panel, seed=seed)
    fits = result.fits
    stored = save_window_models(models_home, window_start, model_name, result.models)
    params = {**next(iter(result.models.values())).params(), "model": model_name,
              "eval_interval": f"[{plans[0].window_start}, {plans[0].window_end})",
              **{f"train_interval_{p.horizon}": f"[{p.train_start}, labels ending before {p.train_end})" for p in plans},
              **{f"train_rows_{r.horizon}": r.train_rows for r in fits.itertuples()}}
    run_id = store_then_track(
        warehouse, result, tracking, run_name=f"{model_name}@{window_start}",
        tags={"dagster_run_id": dagster_run_id, "window": str(window_start), "model": model_name},
        params=params, save_artifacts=lambda folder: copy_models(stored, folder),
    )
    scores = result.scores[["horizon", "n", "ic", "rank_ic", "crps", "coverage_80", "brier"]].round(4)
    return {"mlflow_run_id": run_id, "dagster/row_count": len(result.predictions),
            "seconds": round(float(fits["seconds"].sum()), 2), "skill": scores,
            "latest_train_label_end": {r.horizon: str(r.latest_train_label_end) for r in fits.itertuples()}}


def store_then_track(warehouse: Warehouse, result: FoldResult, tracking: TrackingStore, *, run_name: str, tags: dict[str, str],
                     params: dict[str, object], save_artifacts) -> str:
    """Store a fold in the warehouse, then complete its MLflow run; returns the run id the fit rows carry.

    The fit rows carry the id of a run reserved beforehand (empty, RUNNING): it is deleted if the store fails,
    and completed (params, metrics, model files; the fold's earlier runs deleted) only after the commit. So a
    fit row always points at a live run, and MLflow never shows figures for rows that were not stored.
    """
    mlflow_store = dict(tracking_uri=tracking.uri, lock_path=tracking.lock_path)
    run_id = reserve_run(**mlflow_store, artifact_root=tracking.artifact_root, run_name=run_name, tags=tags)
    result.fits = result.fits.assign(mlflow_run_id=run_id)
    try:
        store_fold(warehouse, result)
    except BaseException as error:
        try:
            discard_run(**mlflow_store, run_id=run_id)
        except Exception as cleanup:  # noqa: BLE001 - the store's error is the one to raise
            error.add_note(f"the reserved MLflow run {run_id} could not be deleted either: {cleanup}")
        raise
    try:
        complete_run(**mlflow_store, artifact_root=tracking.artifact_root, run_id=run_id, params=params,
                     metrics=result.metrics(), save_artifacts=save_artifacts)
    except Exception as error:
        error.add_note(f"the fold's rows are stored and point at MLflow run {run_id}, which is live but incomplete; "
                       "materialize the fit again to complete its record")
        raise
    return run_id


def _date_or_none(value) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()
