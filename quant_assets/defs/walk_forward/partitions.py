"""Evaluation windows as time-window partitions; a window is named by its first date (window_start)."""

import dagster as dg

from quant_assets.settings import Settings

CADENCE_CRON = {"weekly": "0 0 * * 1", "monthly": "0 0 1 * *", "quarterly": "0 0 1 */3 *"}


def window_partitions(settings: Settings) -> dg.TimeWindowPartitionsDefinition:
    """Windows from ``wf_start`` to ``wf_end`` at the re-training cadence."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=CADENCE_CRON[settings.wf_cadence],
        start=settings.wf_start.isoformat(),
        end=settings.wf_end.isoformat(),
        # The window in progress exists too: today's projections come from the window that contains today.
        end_offset=1,
        fmt="%Y-%m-%d",
    )
