"""Daily partitions shared by the market, features and projections groups: one calendar day (UTC) each.

Day D holds the sessions completed on D: the XNYS session of D once the exchange has closed, the crypto
UTC day once it has ended. Partitions reach the clock's day (``Settings.clock_today``); on the network
providers they follow the wall clock, so a new day's partition appears without reloading the code location.
"""

from datetime import timedelta

import dagster as dg

from quant_assets.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """From ``history_start`` to the clock's day, inclusive (the day in progress included)."""
    start = settings.history_start.isoformat()
    if settings.follows_wall_clock:
        return dg.DailyPartitionsDefinition(start_date=start, end_offset=1)
    return dg.DailyPartitionsDefinition(start_date=start, end_date=(settings.clock_today + timedelta(days=1)).isoformat())
