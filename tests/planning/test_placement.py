"""Replicas placed over pools: sticky, filled in order, drained from the last pool, never beyond free GPUs."""

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelplane.api.documents import parse_object
from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import Plan
from modelplane.planning.placement import Slot, desired_replicas, place, replicas_held, reserved_spec
from modelplane.planning.service import burst_plans, offers_for, plan_deployment
from modelplane.render.context import burst_name
from tests.support import pool

ON_PREM = pool("onprem-h100", "H100-SXM-80GB", 8, 1, location="on-prem", cost="1.00")
CLOUD = pool("cloud-l40s", "L40S-48GB", 4, 4, location="cloud", cost="1.20")


def deployment(**spec: Any) -> ModelDeployment:
    spec.setdefault("model", {"name": "meta-llama/Llama-3.1-70B-Instruct"})
    spec.setdefault("maxModelLen", 8192)
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "ns"}, "spec": spec}  # fmt: skip
    parsed = parse_object(body, "test")
    assert isinstance(parsed, ModelDeployment)
    return parsed


def _plan() -> Plan:
    result = plan_deployment(deployment(), offers_for([ON_PREM]), candidates=False)
    assert result.plan is not None
    return result.plan


PLAN = _plan()
POOLS = [f"p{index}" for index in range(4)]

holds = st.lists(st.integers(0, 6), min_size=1, max_size=4)


def slots_of(capacity: list[int]) -> list[Slot]:
    return [Slot(PLAN.model_copy(update={"pool": POOLS[index]}), held) for index, held in enumerate(capacity)]


def counts(placement: Any) -> dict[str, int]:
    return {placed.pool: placed.plan.replicas for placed in placement.pools}


@given(holds, st.integers(0, 30), st.lists(st.integers(0, 8), min_size=4, max_size=4))
def test_never_more_than_wanted_nor_than_a_pool_holds(capacity: list[int], desired: int, before: list[int]) -> None:
    current = dict(zip(POOLS, before, strict=False))
    placement = place(desired, slots_of(capacity), current)
    placed = counts(placement)
    assert placement.placed == min(desired, sum(capacity)), "fills whatever fits, up to what is wanted"
    assert placement.waiting == desired - placement.placed
    assert all(placed.get(POOLS[index], 0) <= held for index, held in enumerate(capacity))
    assert all(count > 0 for count in placed.values()), "a pool with no replica is not in the placement"


@given(holds, st.integers(0, 30), st.lists(st.integers(0, 8), min_size=4, max_size=4))
def test_a_scale_up_moves_no_running_replica(capacity: list[int], extra: int, before: list[int]) -> None:
    current = {POOLS[index]: min(count, capacity[index]) for index, count in enumerate(before[: len(capacity)])}
    placement = place(sum(current.values()) + extra, slots_of(capacity), current)
    placed = counts(placement)
    assert all(placed.get(name, 0) >= count for name, count in current.items())


@given(holds, st.integers(0, 30))
def test_scale_in_drains_the_last_pool_first(capacity: list[int], desired: int) -> None:
    full = counts(place(sum(capacity), slots_of(capacity), {}))
    placed = counts(place(desired, slots_of(capacity), full))
    order = [placed.get(POOLS[index], 0) for index in range(len(capacity))]
    # What remains is a prefix of the fill order: a pool keeps replicas only while every earlier pool is full.
    for index, count in enumerate(order):
        if count and index:
            assert all(order[earlier] == capacity[earlier] for earlier in range(index))
    assert sum(order) == min(desired, sum(capacity))


def test_replicas_lost_to_shrunken_capacity_refill_in_order() -> None:
    placement = place(5, slots_of([2, 4]), {"p0": 3, "p1": 1})
    assert counts(placement) == {"p0": 2, "p1": 3}


def test_replicas_held_counts_whole_pods_per_node() -> None:
    [offer] = offers_for([pool("l4", "L4-24GB", 3, 2)])
    two_gpu = PLAN.model_copy(update={"gpus_per_replica": 2, "gpus_per_pod": 2, "nodes_per_replica": 1})
    assert replicas_held(two_gpu, offer) == 2, "6 GPUs, but 3 per node hold only one 2-GPU pod each"


def test_replicas_held_packs_a_multi_pod_replicas_pods_as_the_planner_does() -> None:
    [offer] = offers_for([pool("a100", "A100-SXM-80GB", 8, 2)])
    pipelined = PLAN.model_copy(update={"gpus_per_replica": 12, "gpus_per_pod": 4, "nodes_per_replica": 3})
    assert replicas_held(pipelined, offer) == 1, "three 4-GPU pods fit two 8-GPU nodes"
    [three] = offers_for([pool("a100", "A100-SXM-80GB", 8, 3)])
    assert replicas_held(pipelined, three) == 2


def test_autoscaling_reserves_min_replicas_and_runs_what_the_autoscaler_asks() -> None:
    scaled = deployment(replicas=7, autoscaling={"minReplicas": 2, "maxReplicas": 10})
    assert reserved_spec(scaled.spec).replicas == 2
    assert desired_replicas(scaled.spec, PLAN.model_copy(update={"replicas": 2})) == 7
    fixed = deployment(replicas=1)
    assert desired_replicas(fixed.spec, PLAN.model_copy(update={"replicas": 3})) == 3, "a rate may ask for more"


def test_each_pool_gets_its_own_best_shape_on_prem_first() -> None:
    plans = burst_plans(deployment(placement={"locality": "prefer-on-prem"}), offers_for([CLOUD, ON_PREM]))
    assert [(plan.pool, plan.gpu, plan.tensor_parallel) for plan in plans] == [
        ("onprem-h100", "H100-SXM-80GB", 2),
        ("cloud-l40s", "L40S-48GB", 4),
    ]
    assert all(plan.replicas == 1 for plan in plans)


def test_burst_names_are_stable_dns_labels_within_the_workload_limit() -> None:
    assert burst_name("chat", "cloud-l40s") == "chat-cloud-l40s"
    long = burst_name("a" * 40, "cloud-l40s-spot-us-east")
    assert len(long) <= 48
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long)
    assert long == burst_name("a" * 40, "cloud-l40s-spot-us-east")
    assert long != burst_name("a" * 40, "cloud-l40s-spot-us-west"), "two pools never share a workload"
