"""Materialize through the Definitions the way the daemon launches runs, and read a run's failures as a user does."""

import dagster as dg

TINY_UNIVERSE = "AAPL,MSFT,JNJ,SP500,BTC"
# What the machine's environment may set that would take a test's home off the offline sample.
FOREIGN_ENVIRONMENT = ("QUANT_TODAY", "QUANT_PRICES_FILE", "QUANT_ONCHAIN_FILE", "QUANT_PROVIDER", "POLYGON_API_KEY",
                       "MLFLOW_TRACKING_URI")


def use_home(mp, home, **environment):
    """Point ``mp`` (a MonkeyPatch) at a private QUANT_HOME on the tiny sample universe from 2016, with
    ``environment`` (QUANT_* names and values) on top and nothing of the machine's own provider settings."""
    for name in FOREIGN_ENVIRONMENT:
        mp.delenv(name, raising=False)
    defaults = {"QUANT_HOME": str(home), "QUANT_UNIVERSE": TINY_UNIVERSE, "QUANT_HISTORY_START": "2016-01-01"}
    for name, value in {**defaults, **environment}.items():
        mp.setenv(name, value)
    return home


def materialize(selection, *, partition_key=None, days=None, raise_on_error=True, definitions=None):
    """Materialize ``selection`` (an asset selection string, keys, or an AssetSelection) through the Definitions.

    Assets on different partitions run as separate runs, upstream first, the way the daemon would launch them:
    daily assets with a single-run backfill policy (market, features) over ``days`` (a key or a (first, last)
    pair; default every day) in one run, other daily assets for ``partition_key`` if it is one of their days
    (else the last day), and the rest for ``partition_key``. One run gives its own result; several give a
    ``CombinedResult``. A failed run stops the ones after it (what depends on it is not run).
    """
    from quant_assets.definitions import build_definitions

    defs = definitions or build_definitions()
    assets = [*defs.assets, *(defs.asset_checks or [])]
    results = []
    for keys, partitions, tags, key in planned_runs(defs, selection, partition_key, days):
        # Asset checks follow the assets they check.
        chosen = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
        result = dg.materialize(assets, selection=chosen, resources=defs.resources, partition_key=key, tags=tags,
                                raise_on_error=raise_on_error)
        results.append(result)
        if not result.success:
            break
    return results[0] if len(results) == 1 else CombinedResult(results)


def planned_runs(defs, selection, partition_key, days):
    graph = defs.resolve_asset_graph()
    if isinstance(selection, str):
        selection = dg.AssetSelection.from_string(selection)
    elif not isinstance(selection, dg.AssetSelection):
        selection = dg.AssetSelection.assets(*selection)
    keys = selection.resolve(graph)
    order = {key: index for index, key in enumerate(graph.toposorted_asset_keys)}
    by_partitions = {}
    for key in sorted(keys, key=order.__getitem__):
        by_partitions.setdefault(graph.get(key).partitions_def, []).append(key)
    for partitions, members in by_partitions.items():
        daily = isinstance(partitions, dg.DailyPartitionsDefinition)
        if daily and graph.get(members[0]).backfill_policy == dg.BackfillPolicy.single_run():
            all_days = partitions.get_partition_keys()
            first, last = (days, days) if isinstance(days, str) else (days or (all_days[0], all_days[-1]))
            yield members, partitions, {"dagster/asset_partition_range_start": first,
                                        "dagster/asset_partition_range_end": last}, None
        elif daily:
            chosen = partition_key if partition_key in partitions.get_partition_keys() else partitions.get_last_partition_key()
            yield members, partitions, None, chosen
        else:
            yield members, partitions, None, partition_key if partitions is not None else None


class CombinedResult:
    """The results of the runs one ``materialize`` call made, read like one run's result."""

    def __init__(self, results):
        self.results = results
        self.success = all(r.success for r in results)
        self.all_events = [e for r in results for e in r.all_events]

    def get_asset_materialization_events(self):
        return [e for r in self.results for e in r.get_asset_materialization_events()]

    def get_asset_check_evaluations(self):
        return [e for r in self.results for e in r.get_asset_check_evaluations()]


def failure_messages(result) -> str:
    """Every step failure's message and the messages of its causes, joined (what the UI shows a user)."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None:
                texts.append(error.message.strip())
                error = error.cause
    return "\n".join(texts)
