"""The demo's side-by-side workers: their answers come back in order, a worker that dies stops the demo with a
clear error instead of leaving it waiting for ever (a multiprocessing.Pool never returns when a worker dies), and
two that start at once on a fresh home do not race to create its Dagster instance."""

import multiprocessing
import operator
import os

import pytest

from quant_assets.demo.local import _instance, _side_by_side


def test_side_by_side_returns_each_calls_answer_in_order():
    assert _side_by_side([(2, 3), (4, 5), (6, 7)], function=operator.mul) == [6, 20, 42]


def test_a_worker_that_dies_stops_the_demo_with_its_call_named():
    with pytest.raises(RuntimeError, match=r"a worker process died while running \(3,\)"):
        _side_by_side([(3,)], function=os._exit)


def _run_on_fresh_home(home: str, barrier) -> str:
    """What a demo worker does first: open the home's instance, then record a run in it."""
    import dagster as dg

    from quant_assets.settings import Settings

    os.environ["QUANT_HOME"] = home
    settings = Settings()
    barrier.wait()
    instance = _instance(settings)

    @dg.asset
    def one() -> int:
        return 1

    return "ok" if dg.materialize([one], instance=instance).success else "failed"


def test_two_runs_that_start_at_once_on_a_fresh_home_both_succeed(tmp_path):
    """The instance's SQLite schemas are created once, whichever run opens the home first (unlocked, about half
    the fresh homes lost a run to 'table runs already exists')."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        for attempt in range(8):
            barrier = manager.Barrier(2, timeout=120)
            home = str(tmp_path / f"home{attempt}")
            with context.Pool(2) as pool:
                assert pool.starmap(_run_on_fresh_home, [(home, barrier)] * 2) == ["ok", "ok"], f"fresh home {attempt}"
