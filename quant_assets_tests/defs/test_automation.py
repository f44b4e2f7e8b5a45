"""The automation as the daemon runs it: the daily schedules catch up missed days in one run, a new day of market
data makes the features follow, and the freshness check says whether the last session is present."""

from datetime import datetime, timezone

import dagster as dg

from quant_assets.defs.features.assets import FEATURES_KEY
from quant_assets.defs.market.assets import PRICES_KEY
from quant_assets.definitions import build_definitions


def test_a_missed_day_is_caught_up_and_the_features_follow(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_TODAY", "2022-06-16")
    # History from June: the features wait for every day of market data, which the first run loads but the 15th.
    monkeypatch.setenv("QUANT_HISTORY_START", "2022-06-01")
    defs = build_definitions()
    with dg.instance_for_test() as instance:
        check_catch_up_then_features(defs, instance)


def check_catch_up_then_features(defs, instance):
    market = defs.resolve_job_def("market")
    assert market.execute_in_process(instance=instance, tags={"dagster/asset_partition_range_start": "2022-06-01",
                                                              "dagster/asset_partition_range_end": "2022-06-14"}).success
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)

    # The schedule after the close of the 16th: the 15th was missed, so one run loads the 14th (again) to the 16th.
    schedule = defs.resolve_schedule_def("after_us_close")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2022, 6, 16, 20, 30, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == \
        ("2022-06-14", "2022-06-16")
    run = market.execute_in_process(instance=instance, tags=request.tags)
    assert run.success
    freshness = [e for e in run.get_asset_check_evaluations() if e.check_name == "last_session_present"]
    assert len(freshness) == 1 and freshness[0].passed

    # What the automation sensor requests next: the features and labels of every day the run loaded (one dbt run:
    # their backfill policy is a single run), not the market again.
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert after.get_requested_partitions(FEATURES_KEY) == {"2022-06-14", "2022-06-15", "2022-06-16"}
    assert after.get_num_requested(PRICES_KEY) == 0


def test_every_job_a_sensor_or_schedule_targets_resolves(quant_home):
    """What `dagster sensor stop` and the daemon load: a target mixing partitionings fails only there, not at import."""
    repository = build_definitions().get_repository_def()
    targets = {target.job_name for sensor in repository.sensor_defs for target in sensor.targets}
    targets |= {schedule.job_name for schedule in repository.schedule_defs}
    assert {"walk_forward", "ensemble", "projections"} <= targets
    for name in sorted(targets | set(repository.job_names)):
        assert repository.get_job(name).name == name
