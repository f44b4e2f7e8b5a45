"""What `make demo` prints: the tables a user reads, summarized from the warehouse."""

from __future__ import annotations

from pathlib import Path

from quant_assets.lib.storage.warehouse import Warehouse
from quant_assets.render.report import format_table

DEMO_AMOUNT = 10_000


def _section(title: str, frame) -> str:
    return f"== {title}\n{frame.to_string(index=False) if len(frame) else '(no rows)'}\n"


def demo_summary(warehouse_path: Path, windows: list[str]) -> str:
    """Row counts of the contract tables; each model's skill against the baseline per horizon; the ensemble's
    P10-P90 coverage over ``windows``; the decision backtest; and the Projector for $10,000 (its fractional-Kelly
    (½) trades)."""
    from quant_assets.cli import project

    warehouse = Warehouse(warehouse_path)
    parts = [_section("market.prices", warehouse.query(
        """SELECT symbol, asset_class, any_value(source) AS source, count(*) AS rows, min(date) AS first, max(date) AS last
           FROM market.prices GROUP BY ALL ORDER BY asset_class DESC, symbol"""))]
    parts.append(_section("market.onchain", warehouse.query(
        "SELECT asset, source, count(DISTINCT metric) AS metrics, count(*) AS rows FROM market.onchain GROUP BY ALL ORDER BY asset")))
    parts.append(_section("features and labels", warehouse.query(
        """SELECT 'features.features' AS table_name, count(*) AS rows, count(DISTINCT symbol) AS symbols FROM features.features
           UNION ALL
           SELECT 'labels.forward_returns', count(*), count(DISTINCT symbol) FROM labels.forward_returns""")))
    parts.append(_section("CRPS skill vs the random-walk baseline (1 - CRPS/CRPS_baseline, > 0 beats it; mean over windows)",
                          skill_table(warehouse)))
    parts.append(_section(f"Ensemble P10-P90 coverage over the demo windows {windows[0]}..{windows[-1]} "
                          "(target 0.80; n = forecasts whose label is realized)", coverage_table(warehouse, windows)))
    # The stored strategy key half_kelly holds the fractional-Kelly (CRRA) investor's results: named as it is here.
    parts.append(_section("Decision backtest, net of 10 bp per side (projections.backtest_summary)", warehouse.query(
        """SELECT CASE strategy WHEN 'half_kelly' THEN 'fractional Kelly (½)' ELSE strategy END AS strategy,
                  * EXCLUDE (strategy) FROM projections.backtest_summary ORDER BY projections.backtest_summary.strategy""")))
    columns, rows = project(DEMO_AMOUNT, warehouse_path)
    parts.append(f"== Projector for ${DEMO_AMOUNT:,}, fractional Kelly (½) "
                 f"(= SELECT * FROM projector({DEMO_AMOUNT}) = quant project {DEMO_AMOUNT})\n"
                 f"{format_table(columns, rows)}\n")
    return "\n".join(parts)


def skill_table(warehouse: Warehouse):
    """Per model and horizon: 1 - CRPS / CRPS of the baseline, averaged over the scored windows."""
    return warehouse.query(
        """
        WITH s AS (
            SELECT m.model, m.horizon, 1 - m.crps / b.crps AS skill
            FROM forecasts.scores m JOIN forecasts.scores b
              ON b.model = 'baseline' AND b.window_start = m.window_start AND b.horizon = m.horizon
            WHERE m.model <> 'baseline'
        )
        PIVOT s ON horizon IN ('1w', '1m', '3m', '1y') USING round(avg(skill), 4) GROUP BY model ORDER BY model
        """
    )


def coverage_table(warehouse: Warehouse, windows: list[str]):
    """Per horizon: the share of realized labels inside the ensemble's P10-P90 over ``windows`` (weighted by
    rows), beside the baseline's; horizons whose labels are not realized yet show n = 0 and no coverage."""
    return warehouse.query(
        """
        WITH horizons(horizon) AS (VALUES ('1w'), ('1m'), ('3m'), ('1y')),
        s AS (
            SELECT model, horizon, sum(n) AS n, sum(coverage_80 * n) / nullif(sum(n), 0) AS coverage
            FROM forecasts.scores
            WHERE model IN ('ensemble', 'baseline') AND window_start IN (SELECT unnest(?::DATE[])) AND n > 0
            GROUP BY ALL
        )
        SELECT h.horizon, coalesce(e.n, 0) AS n, round(e.coverage, 3) AS ensemble_coverage,
               round(b.coverage, 3) AS baseline_coverage
        FROM horizons h
        LEFT JOIN s e ON e.horizon = h.horizon AND e.model = 'ensemble'
        LEFT JOIN s b ON b.horizon = h.horizon AND b.model = 'baseline'
        ORDER BY array_position(['1w', '1m', '3m', '1y'], h.horizon)
        """,
        [list(windows)],
    )
