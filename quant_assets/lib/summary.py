"""What `make demo` prints: the tables a user reads, summarized from the warehouse."""

from __future__ import annotations

from quant_assets.lib.warehouse import Warehouse


def _section(title: str, frame) -> str:
    return f"== {title}\n{frame.to_string(index=False)}\n"


def demo_summary(settings) -> str:
    """Row counts of the contract tables, and each model's CRPS skill against the baseline per horizon."""
    warehouse = Warehouse(settings.warehouse_path)
    parts = [_section("market.prices", warehouse.query(
        """SELECT symbol, asset_class, any_value(source) AS source, count(*) AS rows, min(date) AS first, max(date) AS last
           FROM market.prices GROUP BY ALL ORDER BY asset_class DESC, symbol"""))]
    parts.append(_section("market.onchain", warehouse.query(
        "SELECT asset, source, count(DISTINCT metric) AS metrics, count(*) AS rows FROM market.onchain GROUP BY ALL ORDER BY asset")))
    parts.append(_section("features and labels", warehouse.query(
        """SELECT 'features.features' AS table_name, count(*) AS rows, count(DISTINCT symbol) AS symbols FROM features.features
           UNION ALL
           SELECT 'labels.forward_returns', count(*), count(DISTINCT symbol) FROM labels.forward_returns""")))
    if warehouse.table_exists("forecasts.scores"):
        parts.append(_section("CRPS skill vs the random-walk baseline (1 - CRPS/CRPS_baseline, > 0 beats it; mean over windows)",
                              skill_table(warehouse)))
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
