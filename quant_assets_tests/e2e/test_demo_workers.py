"""The demo's side-by-side workers: their answers come back in order, and a worker that dies stops the demo with a
clear error instead of leaving it waiting for ever (a multiprocessing.Pool never returns when a worker dies)."""

import operator
import os

import pytest

from quant_assets.demo.local import _side_by_side


def test_side_by_side_returns_each_calls_answer_in_order():
    assert _side_by_side([(2, 3), (4, 5), (6, 7)], function=operator.mul) == [6, 20, 42]


def test_a_worker_that_dies_stops_the_demo_with_its_call_named():
    with pytest.raises(RuntimeError, match=r"a worker process died while running \(3,\)"):
        _side_by_side([(3,)], function=os._exit)
