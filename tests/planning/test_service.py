"""The planning entry point leaves the garbage collector as it found it."""

import gc

from modelplane.planning.service import collector_paused, offers_for, plan_deployment
from tests.support import deployment, pool


def test_the_collector_is_paused_while_planning_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "a collector someone else turned off stays off"
    finally:
        gc.enable()


def test_planning_restores_the_collector_even_when_infeasible() -> None:
    offers = offers_for([pool("tiny", "L4-24GB", 1, 1, cost="0.50")])
    result = plan_deployment(deployment(model={"name": "meta-llama/Llama-3.1-405B-Instruct"}), offers)
    assert not result.feasible
    assert gc.isenabled()
