"""Flux reads status through kstatus: its documented rules, and the verdict they give on the operator's status."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from modelplane.api.contract import CONDITION_ORDER, RECONCILING, STALLED
from modelplane.operator.conditions import (
    Served,
    merge_conditions,
    status_conditions,
)
from modelplane.operator.decide import decide
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.service import offers_for
from tests.health import kstatus
from tests.operator.test_decide import POOLS, body

NOW = "2025-06-02T09:30:00Z"
AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "chat-7c9f8d6b5" has timed out progressing.'}  # fmt: skip
INFEASIBLE: dict[str, Any] = {"maxModelLen": 131072, "maxConcurrency": 512}


def workload(ready: int = 0, *conditions: dict[str, Any], observed: int = 1) -> dict[str, Any]:
    """The serving Deployment as the operator reads it back; `observed=0` is one the controller has not seen."""
    status = {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": ready,
              "conditions": list(conditions)}  # fmt: skip
    return {"kind": "Deployment", "metadata": {"generation": 1}, "status": status}


JUST_CREATED = workload(observed=0)
SERVING = workload(1, AVAILABLE)
STUCK = workload(0, DEADLINE)


def reconciled(md: dict[str, Any], serving: dict[str, Any] | None, pools: Any = POOLS,
               offers: Callable[[], list[PoolOffer]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The object after one reconcile, as the API server holds it: the status merge-patched over the old one.

    `serving` is the workload of each pool with replicas placed as it reads back (one for all of them when a
    single workload is given)."""
    decision = decide(md, offers or (lambda: offers_for(pools)))
    placed = [pool.plan.replicas for pool in decision.placement.pools] if decision.placement else []
    if serving is None:
        served = []
    elif decision.placement is None:
        served = [Served(serving, int(md["spec"].get("replicas", 1)))]
    elif len(placed) <= 1:
        served = [Served(serving, placed[0] if placed else 0)]  # the plan's pool's workload, maybe at 0
    else:
        served = [Served(workload(replicas, AVAILABLE), replicas) for replicas in placed]
    conditions = status_conditions(decision.conditions, served, decision.plan_only)
    current = md.get("status") or {}
    merged = merge_conditions(current.get("conditions") or [], conditions, md["metadata"]["generation"], NOW)
    return {**md, "status": {**current, **decision.status.written_fields(), "conditions": merged}}


def _infeasible_edit() -> dict[str, Any]:
    running = reconciled(body(), SERVING)
    return reconciled(body(generation=2, status=running["status"], **INFEASIBLE), SERVING)


def _plan_outdated() -> dict[str, Any]:
    on_big = reconciled(body(), SERVING, pools=[POOLS[1]])
    return reconciled(body(status=on_big["status"]), SERVING)


def _stale() -> dict[str, Any]:
    ready = reconciled(body(), SERVING)
    return {**ready, "metadata": {**ready["metadata"], "generation": 2}}


BURSTING: dict[str, Any] = {"autoscaling": {"minReplicas": 1, "maxReplicas": 40}}


def _no_capacity() -> dict[str, Any]:
    """Pinned on the cheap pool, which other deployments have since filled; no other pool is allowed."""
    ready = reconciled(body(), SERVING, pools=[POOLS[0]])
    full = [replace(offer, free_gpus=0) for offer in offers_for([POOLS[0]])]
    return reconciled(body(generation=2, replicas=2, status=ready["status"]), workload(0, AVAILABLE),
                      offers=lambda: full)  # fmt: skip


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "rolling-out": lambda: reconciled(body(), JUST_CREATED),
    "ready": lambda: reconciled(body(), SERVING),
    "rollout-stalled": lambda: reconciled(body(), STUCK),
    "infeasible": lambda: reconciled(body(**INFEASIBLE), None),
    "infeasible-edit": _infeasible_edit,
    "invalid-spec": lambda: reconciled(body(maxModelLen=-1), None),
    "plan-only": lambda: reconciled(body(mode="PlanOnly"), None),
    "plan-outdated": _plan_outdated,
    "stale": _stale,
    "scaled-to-zero": lambda: reconciled(body(replicas=0), workload(0, AVAILABLE)),
    "bursting": lambda: reconciled(body(replicas=12, **BURSTING), SERVING),
    "replicas-waiting": lambda: reconciled(body(replicas=40, **BURSTING), SERVING),
    "no-capacity": _no_capacity,
}
KSTATUS = {
    "rolling-out": "InProgress",
    "ready": "Current",
    "rollout-stalled": "Failed",
    "infeasible": "Failed",
    "infeasible-edit": "Failed",
    "invalid-spec": "Failed",
    "plan-only": "Current",
    "plan-outdated": "Current",
    "stale": "InProgress",
    "scaled-to-zero": "Current",
    "bursting": "Current",
    "replicas-waiting": "Current",
    "no-capacity": "Failed",
}


def conditions_of(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {condition["type"]: condition for condition in obj["status"]["conditions"]}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_operator_status_has_the_kstatus_verdict(name: str) -> None:
    assert kstatus(SCENARIOS[name]()).status == KSTATUS[name]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_abnormal_true_conditions_are_present_only_when_true(name: str) -> None:
    conditions = conditions_of(SCENARIOS[name]())
    present = {kind: conditions[kind]["status"] for kind in (RECONCILING, STALLED) if kind in conditions}
    assert set(present.values()) <= {"True"}
    assert len(present) <= 1, "Reconciling and Stalled together: kstatus would take whichever comes first"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_condition_order_is_stable(name: str) -> None:
    kinds = [condition["type"] for condition in SCENARIOS[name]()["status"]["conditions"]]
    assert kinds == [kind for kind in CONDITION_ORDER if kind in kinds]


def test_rolling_out_says_what_it_waits_for() -> None:
    reconciling = conditions_of(SCENARIOS["rolling-out"]())[RECONCILING]
    assert (reconciling["reason"], reconciling["observedGeneration"]) == ("RollingOut", 1)
    assert kstatus(SCENARIOS["rolling-out"]()).message == reconciling["message"]


@pytest.mark.parametrize(("name", "reason"), [("infeasible", "InsufficientMemory"), ("invalid-spec", "InvalidSpec"),
                                              ("rollout-stalled", "RolloutStalled")])  # fmt: skip
def test_stalled_carries_the_cause(name: str, reason: str) -> None:
    conditions = conditions_of(SCENARIOS[name]())
    assert conditions[STALLED]["reason"] == reason
    assert conditions[STALLED]["message"]


@pytest.mark.parametrize("name", ["infeasible", "invalid-spec"])
def test_a_deployment_never_planned_is_not_said_to_roll_out(name: str) -> None:
    conditions = conditions_of(SCENARIOS[name]())
    for kind in ("Ready", "Progressing"):
        assert (conditions[kind]["status"], conditions[kind]["reason"]) == ("False", "NotPlanned")
    assert "Reconciling" not in conditions


def test_an_infeasible_edit_fails_while_the_old_servers_stay_ready() -> None:
    conditions = conditions_of(SCENARIOS["infeasible-edit"]())
    assert conditions["Ready"]["status"] == "True"
    assert conditions[STALLED]["status"] == "True"


def test_stalled_goes_away_once_the_spec_is_fixed() -> None:
    refused = reconciled(body(**INFEASIBLE), None)
    fixed = reconciled(body(generation=2, status=refused["status"]), JUST_CREATED)
    assert STALLED not in conditions_of(fixed)
    assert kstatus(fixed).status == "InProgress"


def meta(generation: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": "x", "generation": generation, **extra}


def cond(kind: str, status: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": "Because", "message": message}


RULES: list[tuple[str, dict[str, Any], str]] = [
    ("deleted", {"metadata": meta(deletionTimestamp="2025-06-02T09:30:00Z"), "status": {"observedGeneration": 1}},
     "Terminating"),
    ("generation-not-observed", {"metadata": meta(2), "status": {"observedGeneration": 1}}, "InProgress"),
    ("reconciling", {"metadata": meta(), "status": {"observedGeneration": 1,
                                                    "conditions": [cond("Reconciling", "True")]}}, "InProgress"),
    ("stalled", {"metadata": meta(), "status": {"observedGeneration": 1, "conditions": [cond("Stalled", "True")]}},
     "Failed"),
    ("first-abnormal-condition-wins", {"metadata": meta(), "status": {
        "conditions": [cond("Stalled", "True"), cond("Reconciling", "True")]}}, "Failed"),
    ("abnormal-false-is-normal", {"metadata": meta(), "status": {"observedGeneration": 1, "conditions": [
        cond("Reconciling", "False"), cond("Stalled", "False")]}}, "Current"),
    ("stalled-beats-ready", {"metadata": meta(), "status": {"observedGeneration": 1, "conditions": [
        cond("Ready", "True"), cond("Stalled", "True")]}}, "Failed"),
    ("ready", {"metadata": meta(), "status": {"observedGeneration": 1, "conditions": [cond("Ready", "True")]}},
     "Current"),
    ("not-ready", {"metadata": meta(), "status": {"observedGeneration": 1, "conditions": [cond("Ready", "False")]}},
     "InProgress"),
    ("ready-unknown", {"metadata": meta(), "status": {"conditions": [cond("Ready", "Unknown")]}}, "InProgress"),
    # kstatus README, "The Ready Condition": before the controller writes status, nothing says it is not done.
    ("no-status-yet", {"metadata": meta()}, "Current"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [(obj, expected) for _, obj, expected in RULES],
                         ids=[name for name, _, _ in RULES])  # fmt: skip
def test_kstatus_rules_as_documented(obj: dict[str, Any], expected: str) -> None:
    assert kstatus({"kind": "Thing", **obj}).status == expected


def test_a_burst_is_ready_when_every_pool_is_and_says_where_replicas_run() -> None:
    conditions = conditions_of(SCENARIOS["bursting"]())
    ready = conditions["Ready"]
    assert (ready["status"], ready["message"]) == ("True", "12/12 replicas ready on 2 pools")
    placed = conditions["ReplicasPlaced"]
    assert (placed["status"], placed["reason"]) == ("True", "AllReplicasPlaced")
    assert placed["message"].startswith("12 replica(s): 8 on cheap (L4-24GB, TP1×PP1), 4 on big (H100-SXM-80GB")


def test_waiting_replicas_leave_the_placed_ones_ready_and_say_why() -> None:
    status = SCENARIOS["replicas-waiting"]()["status"]
    conditions = conditions_of({"status": status})
    assert conditions["Ready"]["status"] == "True"
    placed = conditions["ReplicasPlaced"]
    assert (placed["status"], placed["reason"]) == ("False", "InsufficientCapacity")
    # 8 L4 GPUs take 8 replicas of one GPU; 16 H100s take 16: 24 of 40.
    assert placed["message"].startswith("24 of 40 replica(s) placed")
    assert status["waitingReplicas"] == 16
    assert [(p["pool"], p["replicas"], p["workload"]) for p in status["placements"]] == [
        ("cheap", 8, "Deployment/chat"),
        ("big", 16, "Deployment/chat-big"),
    ]


def test_a_deployment_with_no_replica_placed_is_stalled_on_capacity() -> None:
    conditions = conditions_of(SCENARIOS["no-capacity"]())
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "InsufficientCapacity")
    assert conditions[STALLED]["reason"] == "InsufficientCapacity"
    assert "0 of 2 replica(s) placed" in conditions[STALLED]["message"]
