"""What keeps the system current without a person: the daily market schedules (with catch-up), the declarative
conditions that carry each new day from features to the current window's ensemble and the day's projections,
the monthly window's fits when it opens, and the freshness check on ``market.prices``.

Chain of one day: the schedule after the US close (equities) or after 00:00 UTC (crypto) loads every missing
day of market data up to the last one in one run → the dbt features and labels follow (eager) → the current
window's ``meta_ensemble`` follows its updated deps (labels realize daily) → projections follow (eager) → the
advice scorecard and the decision backtest are rebuilt.
"""

from __future__ import annotations

import dagster as dg

from quant_assets.defs.market.assets import PRICES_KEY
from quant_assets.defs.metadata import as_dagster_metadata
from quant_assets.defs.resources import SettingsResource, WarehouseResource
from quant_assets.lib.market.calendar import clock_moment, last_completed_day, last_completed_session
from quant_assets.lib.market.providers.sample import CRYPTO_PROFILES

MARKET_JOB = "market"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

_UPSTREAM_READY = ~dg.AutomationCondition.any_deps_missing() & ~dg.AutomationCondition.any_deps_in_progress()
# The latest day follows its upstream once it has updated (a blocking check failure stops it). Not "eager": a day
# appearing without a session (a weekend for equities) is not missing advice, so it asks for nothing.
FOLLOW_UPSTREAM = (dg.AutomationCondition.in_latest_time_window()
                   & dg.AutomationCondition.any_deps_updated().since_last_handled()
                   & _UPSTREAM_READY & ~dg.AutomationCondition.in_progress()).with_label("follow_upstream")
# A report over every day and window (the advice scorecard, the decision backtest) is rebuilt once its upstream has
# updated, e.g. after the day's advice. Not _UPSTREAM_READY: a daily partition that was never materialized (the
# history before the ledger began) is not a reason to keep the report stale.
REFRESH_AFTER_UPSTREAM = (dg.AutomationCondition.any_deps_updated().since_last_handled()
                          & ~dg.AutomationCondition.any_deps_in_progress()
                          & ~dg.AutomationCondition.in_progress()).with_label("refresh_after_upstream")
# Every day a catch-up market run loaded, not only the latest: a window's fits wait for all the days of their
# window. The dbt assets' single-run backfill policy makes the days one dbt run.
FOLLOW_EVERY_NEW_DAY = (dg.AutomationCondition.any_deps_updated().since_last_handled()
                        & _UPSTREAM_READY & ~dg.AutomationCondition.in_progress()).with_label("follow_every_new_day")
# The latest window is fitted once its days' features exist, if it has never been: a window is fitted when it opens,
# and a fitted window is never refitted by automation (a failed fit waits for a person). Not on_missing(): its
# "newly missing" latch is reset when the partitions definition changes, and the windows' definition changes exactly
# when a window opens (their end follows the clock), so it never fired for a new window.
ON_WINDOW_OPEN = (dg.AutomationCondition.in_latest_time_window() & dg.AutomationCondition.missing()
                  & ~dg.AutomationCondition.execution_failed() & _UPSTREAM_READY
                  & ~dg.AutomationCondition.in_progress()).with_label("on_window_open")
# The current window's ensemble re-runs when its fits complete or labels realize. Not "eager": earlier windows
# that were never backfilled are missing deps, and must not stop today's ensemble; its own window's fits and the
# latest day's labels and predictions must exist (a window that has just opened is fitted first).
ON_DEPS_UPDATED = (dg.AutomationCondition.in_latest_time_window() & dg.AutomationCondition.any_deps_updated()
                   & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing()
                                                            & dg.AutomationCondition.in_latest_time_window())
                   & ~dg.AutomationCondition.any_deps_in_progress() & ~dg.AutomationCondition.in_progress())


def missing_days_request(instance: dg.DagsterInstance, partitions: dg.DailyPartitionsDefinition, when) -> dg.RunRequest | None:
    """One run over the days from the latest materialized partition of ``market.prices`` (re-run: it replaces
    itself) to the last partition at ``when``: a missed day is caught up by the next run. History before the
    first materialization is a backfill, not a catch-up. Partitions that follow a fixed clock ignore ``when``."""
    keys = partitions.get_partition_keys(current_time=when if partitions.end_offset else None)
    if not keys:
        return None
    done = instance.get_materialized_partitions(PRICES_KEY)
    first = max((key for key in keys if key in done), default=keys[-1])
    return dg.RunRequest(run_key=f"market-{first}-{keys[-1]}", tags={RANGE_START: first, RANGE_END: keys[-1]})


def build_automation_defs(partitions: dg.DailyPartitionsDefinition):
    """The market job and its two daily schedules, the freshness check with its sensor, and the automation sensor."""
    market_job = dg.define_asset_job(MARKET_JOB, selection=dg.AssetSelection.groups("market"), partitions_def=partitions)

    def market_schedule(name: str, cron: str, timezone: str, description: str) -> dg.ScheduleDefinition:
        @dg.schedule(name=name, cron_schedule=cron, execution_timezone=timezone, job=market_job,
                     default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
        def schedule(context: dg.ScheduleEvaluationContext):
            request = missing_days_request(context.instance, partitions, context.scheduled_execution_time)
            return request or dg.SkipReason("no daily partition yet")

        return schedule

    schedules = [
        market_schedule("after_us_close", "30 16 * * 1-5", "America/New_York",
                        "Loads the day's completed XNYS session (and any missed day) 30 minutes after the close."),
        market_schedule("after_utc_midnight", "30 0 * * *", "UTC",
                        "Loads the crypto day that just ended (and any missed day) at 00:30 UTC."),
    ]

    @dg.asset_check(asset=PRICES_KEY, name="last_session_present",
                    description="Passes when market.prices holds the last completed XNYS session (equities) and the "
                                "last completed UTC day (crypto) at the clock.")
    def last_session_present(warehouse: WarehouseResource, settings: SettingsResource) -> dg.AssetCheckResult:
        current = settings.get()
        now = clock_moment(None if current.follows_wall_clock else current.clock_today)
        stored = warehouse.get().query("SELECT asset_class, max(date) AS last FROM market.prices GROUP BY asset_class")
        latest = {row.asset_class: row.last.date() for row in stored.itertuples()}
        classes = {"crypto" if s in CRYPTO_PROFILES else "equity" for s in current.universe}
        # Equities: the last session (a holiday or weekend has none); crypto: the last UTC day that has ended.
        expected = {c: last_completed_session(now) if c == "equity" else last_completed_day(c, now) for c in classes}
        late = {c: str(d) for c, d in expected.items() if latest.get(c) is None or latest[c] < d}
        return dg.AssetCheckResult(passed=not late, metadata=as_dagster_metadata(
            {"expected": {c: str(d) for c, d in expected.items()}, "stored": {c: str(d) for c, d in latest.items()},
             "late": late}))

    check_job = dg.define_asset_job("prices_freshness", selection=dg.AssetSelection.checks(last_session_present))

    @dg.sensor(job=check_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Runs the freshness check on market.prices every hour.")
    def prices_freshness_sensor(context: dg.SensorEvaluationContext):
        return dg.RunRequest()

    automation = dg.AutomationConditionSensorDefinition("automation", target=dg.AssetSelection.all(),
                                                        default_status=dg.DefaultSensorStatus.RUNNING)
    return [market_job, check_job], schedules, [last_session_present], [prices_freshness_sensor, automation]
