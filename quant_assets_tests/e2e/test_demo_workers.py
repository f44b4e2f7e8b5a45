"""The demo's side-by-side workers: their answers come back in order, a worker that dies stops the demo with a
clear error instead of leaving it waiting for ever (a multiprocessing.Pool never returns when a worker dies), and
two that start at once on a fresh home do not race to create its Dagster instance."""

import operator
import os
import subprocess
import sys

import pytest

from quant_assets.demo.local import _side_by_side


def test_side_by_side_returns_each_calls_answer_in_order():
    assert _side_by_side([(2, 3), (4, 5), (6, 7)], function=operator.mul) == [6, 20, 42]


def test_a_worker_that_dies_stops_the_demo_with_its_call_named():
    with pytest.raises(RuntimeError, match=r"a worker process died while running \(3,\)"):
        _side_by_side([(3,)], function=os._exit)


# A run as a demo worker starts one: open the home's instance, then record a run in it. It waits for the file named
# by its second argument, so that both processes reach the instance at the same moment.
RUN_ON_FRESH_HOME = """
import os, sys, time
from pathlib import Path
import dagster as dg
from quant_assets.demo.local import _instance
from quant_assets.settings import Settings

os.environ["QUANT_HOME"] = sys.argv[1]
settings = Settings()
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)

@dg.asset
def one() -> int:
    return 1

print("ok" if dg.materialize([one], instance=_instance(settings)).success else "the run failed", flush=True)
"""


def test_two_runs_that_start_at_once_on_a_fresh_home_both_succeed(tmp_path):
    """The instance's SQLite schemas are created once, whichever run opens the home first (unlocked, about half
    the fresh homes lost a run to 'table runs already exists')."""
    for attempt in range(8):
        home, go = tmp_path / f"home{attempt}", tmp_path / f"go{attempt}"
        runs = [subprocess.Popen([sys.executable, "-c", RUN_ON_FRESH_HOME, str(home), str(go)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        assert [run.stdout.readline().strip() for run in runs] == ["ready", "ready"]
        go.touch()
        answers = [run.communicate(timeout=300) for run in runs]
        assert [out.strip().splitlines()[-1:] for out, _ in answers] == [["ok"], ["ok"]], \
            f"fresh home {attempt}: {[err.strip().splitlines()[-1:] for _, err in answers]}"
