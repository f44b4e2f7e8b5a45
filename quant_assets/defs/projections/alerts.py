"""The alerts after each day's advice: when ``allocations`` is materialized, the person's plays (read from their own
file, read-only) are checked against that day's advice, and the alerts are recorded as an observation of
``allocations`` for that day (shown on the asset's page) and in the sensor's tick. Nothing is run, nothing written to
the person's file."""

from __future__ import annotations

import dagster as dg

from quant_assets import book_commands
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.lib.projections.rebalance_terms import NoAdvice
from quant_assets.settings import get_settings

ALLOCATIONS_KEY = dg.AssetKey("allocations")


@dg.asset_sensor(asset_key=ALLOCATIONS_KEY, name="book_alerts", default_status=dg.DefaultSensorStatus.RUNNING,
                 minimum_interval_seconds=60,
                 description="After each day's advice: held positions whose last close left their P10-P90 band, and "
                             "weights beyond the rebalance tolerance (QUANT_REBALANCE_TOLERANCE).")
def book_alerts_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    home = get_settings().home
    tolerance = book_commands.trading_terms({}).tolerance
    day = asset_event.dagster_event.partition if asset_event.dagster_event else None
    try:
        found = book_commands.book_alerts(home, tolerance, wait_seconds=5.0)
    except NoAdvice as error:
        # The warehouse stayed busy past the wait: said in the tick; `quant alerts` and the plays page still answer.
        return dg.SkipReason(f"no alerts checked after the advice of {day}: {error}")
    summary = f"{len(found)} alert(s) after the advice of {day}" + (": " + "; ".join(a["message"] for a in found)
                                                                    if found else "")
    context.log.info(summary)
    observation = dg.AssetObservation(asset_key=ALLOCATIONS_KEY, partition=day, metadata=as_dagster_metadata(
        {"alerts": len(found), "tolerance": tolerance, "messages": "\n".join(a["message"] for a in found) or "none"}))
    return dg.SensorResult(asset_events=[observation], skip_reason=summary)
