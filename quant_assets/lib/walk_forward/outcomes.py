"""Realized outcomes read from ``labels.forward_returns`` when they are needed, never frozen at fit time.

A window is fitted when its labels may not exist yet (the system runs forward in time: a new window each
month, fitted before its horizons pass). Its ``forecasts.predictions`` rows are therefore read with their
outcomes joined from the labels as they stand now (``predictions_with_outcomes``), and the stored
``realized`` / ``label_end`` columns and ``forecasts.scores`` are brought up to date by ``refresh_outcomes``,
which the ensemble step runs each time: a window fitted before its labels existed is scored once they do,
without being refitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import pandas as pd

from quant_assets.lib.storage.warehouse import has_table, replace_in
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.scoring import score_predictions

ENSEMBLE = "ensemble"
# One row per (symbol, date, horizon) with the label's value and the date it is realized on.
OUTCOMES_SQL = " UNION ALL ".join(
    f"SELECT symbol, date, '{h.label}' AS horizon, fwd_{h.label} AS realized, end_{h.label} AS label_end "
    f"FROM labels.forward_returns WHERE fwd_{h.label} IS NOT NULL AND end_{h.label} IS NOT NULL"
    for h in HORIZONS
)


def predictions_with_outcomes(
    con: duckdb.DuckDBPyConnection,
    *,
    models: Sequence[str],
    window_start: date | None = None,
    before_window: date | None = None,
    known_before: date | None = None,
) -> pd.DataFrame:
    """``forecasts.predictions`` rows of ``models`` with ``realized`` and ``label_end`` from the labels now.

    ``window_start`` selects one window; ``before_window`` the windows starting before that date;
    ``known_before`` keeps only rows whose label exists and ends strictly before that date (what an
    ensemble standing at that date may learn from). The stored ``realized`` is ignored.
    """
    clauses, params = [f"p.model IN ({', '.join('?' for _ in models)})"], [*models]
    if window_start is not None:
        clauses.append("p.window_start = ?")
        params.append(window_start)
    if before_window is not None:
        clauses.append("p.window_start < ?")
        params.append(before_window)
    if known_before is not None:
        clauses.append("o.label_end < ?")
        params.append(known_before)
    return con.execute(
        f"""SELECT p.* EXCLUDE (realized, label_end), o.realized, o.label_end
            FROM forecasts.predictions p LEFT JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)
            WHERE {' AND '.join(clauses)}""",
        params,
    ).df()


def refresh_outcomes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Fill ``realized`` / ``label_end`` of ``forecasts.predictions`` and ``forecasts.ensemble`` from the
    labels and re-score every (window, model) whose outcomes changed, in the caller's transaction.

    Returns the number of prediction and ensemble rows updated and of score groups rewritten.
    """
    counts = {"prediction_rows": 0, "ensemble_rows": 0, "rescored": 0}
    if not has_table(con, "labels.forward_returns"):
        return counts
    stale = []
    for table, model, key in (("forecasts.predictions", "p.model", "prediction_rows"),
                              ("forecasts.ensemble", f"'{ENSEMBLE}'", "ensemble_rows")):
        if not has_table(con, table):
            continue
        changed = f"""FROM {table} p LEFT JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)
                      WHERE p.realized IS DISTINCT FROM o.realized OR p.label_end IS DISTINCT FROM o.label_end"""
        groups = con.execute(f"SELECT DISTINCT p.window_start, {model} AS model {changed}").df()
        counts[key] = int(con.execute(f"SELECT count(*) {changed}").fetchone()[0])
        if counts[key]:
            con.execute(
                f"""UPDATE {table} AS t SET realized = o.realized, label_end = o.label_end
                    FROM {table} p LEFT JOIN ({OUTCOMES_SQL}) o USING (symbol, date, horizon)
                    WHERE t.window_start = p.window_start AND t.symbol = p.symbol AND t.date = p.date
                      AND t.horizon = p.horizon {'AND t.model = p.model' if table.endswith('predictions') else ''}
                      AND (p.realized IS DISTINCT FROM o.realized OR p.label_end IS DISTINCT FROM o.label_end)"""
            )
        stale.append(groups)
    for group in pd.concat(stale, ignore_index=True).itertuples() if stale else ():
        rescore(con, group.window_start.date(), group.model)
        counts["rescored"] += 1
    return counts


def rescore(con: duckdb.DuckDBPyConnection, window_start: date, model: str) -> pd.DataFrame:
    """Rewrite the ``forecasts.scores`` rows of one (window, model) from its stored outcomes."""
    if model == ENSEMBLE:
        frame = con.execute("SELECT *, 'ensemble' AS model FROM forecasts.ensemble WHERE window_start = ?",
                            [window_start]).df()
    else:
        frame = con.execute("SELECT * FROM forecasts.predictions WHERE window_start = ? AND model = ?",
                            [window_start, model]).df()
    scores = score_predictions(frame).assign(window_start=window_start)
    replace_in(con, "forecasts.scores", scores, {"window_start": window_start, "model": model})
    return scores
