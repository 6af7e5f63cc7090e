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


def test_without_candidates_the_plan_and_the_why_not_list_are_the_same() -> None:
    """The operator and `render` skip the candidate records; what they do use must not change with that."""
    offers = offers_for([pool("l4", "L4-24GB", 1, 2, cost="0.70"), pool("a100", "A100-SXM-80GB", 8, 1, cost="3.00"),
                         pool("h100", "H100-SXM-80GB", 8, 1, cost="6.00")])  # fmt: skip
    for md in (deployment(model={"name": "meta-llama/Llama-3.1-70B-Instruct"}, maxModelLen=32768),
               deployment(model={"name": "meta-llama/Llama-3.1-405B-Instruct"})):  # fmt: skip
        full = plan_deployment(md, offers)
        lean = plan_deployment(md, offers, candidates=False)
        assert lean.candidates == []
        assert full.candidates
        assert (lean.feasible, lean.plan, lean.reasons, lean.suggestions) == (
            full.feasible, full.plan, full.reasons, full.suggestions)  # fmt: skip
        # The why-not list, derived here from the printed candidates: pools none of whose shapes fit.
        fitting = {candidate.pool for candidate in full.candidates if candidate.feasible}
        expected = {candidate.pool: sorted({reason.code.value for other in full.candidates
                                            if other.pool == candidate.pool for reason in other.reasons})
                    for candidate in full.candidates if candidate.pool not in fitting}  # fmt: skip
        assert lean.rejected_pools == full.rejected_pools == dict(sorted(expected.items()))
        assert lean.rejected_pools, "the case tests nothing: no pool was rejected"
        assert "rejectedPools" not in full.to_wire(), "the why-not list is not part of `plan -o json`"
