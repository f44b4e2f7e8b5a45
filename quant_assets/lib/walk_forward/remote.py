"""A window's fits on a worker that never opens the warehouse (the distributed profile): the window's inputs
exported from the warehouse as Arrow tables, and the single machine's ``fit_and_store`` and ``audit_fit`` run on a
private scratch warehouse holding them, so a worker's outputs are the single machine's to the bit."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from quant_assets.lib.storage.object_store import OUTPUT_TABLES, Frames, scratch_warehouse
from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.lib.walk_forward.folds import audit_fit, fit_and_store, stored_plans
from quant_assets.lib.walk_forward.tracking import TrackingStore
from quant_assets.lib.walk_forward.training import panel_span


def export_fold_inputs(warehouse: Warehouse, window_start: date) -> dict[str, pa.Table]:
    """The stored plans of a window and the feature and label rows its fits read (``panel_span``), as Arrow."""
    start, end = panel_span(stored_plans(warehouse, window_start))
    rows_in_span = "SELECT * FROM {} WHERE date >= ? AND date < ?"
    with warehouse.reader() as con:
        return {
            "forecasts.plans": con.sql("SELECT * FROM forecasts.plans WHERE window_start = ?", params=[window_start]).to_arrow_table(),
            **{table: con.sql(rows_in_span.format(table), params=[start, end]).to_arrow_table()
               for table in ("features.features", "labels.forward_returns")},
        }


def fit_fold(inputs: Frames, model_name: str, window_start: date, *, seed: int, models_home, tracking: TrackingStore,
             dagster_run_id: str) -> tuple[dict[str, pa.Table], dict[str, object]]:
    """``fit_and_store`` on a scratch warehouse holding the window's inputs: the fold's output tables and the fit's
    summary. The models (under ``models_home``) and the MLflow run (``tracking``) are stored as on a single machine."""
    with scratch_warehouse(inputs) as warehouse:
        summary = fit_and_store(warehouse, model_name, window_start, seed=seed, models_home=models_home,
                                tracking=tracking, dagster_run_id=dagster_run_id)
        with warehouse.reader() as con:
            outputs = {table: con.sql(f"SELECT * FROM {table}").to_arrow_table() for table in OUTPUT_TABLES}
    return outputs, summary


def audit_fold(inputs: Frames, outputs: Frames, window_start: date, model_name: str) -> list[str]:
    """``audit_fit`` of a fold's stored fit records against the window's plans, without the warehouse."""
    with scratch_warehouse({**inputs, **outputs}) as warehouse:
        return audit_fit(warehouse, window_start, model_name)
