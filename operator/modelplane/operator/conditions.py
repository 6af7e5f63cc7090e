"""Conditions as the Kubernetes API conventions describe them; pure, so they are tested without a cluster.

Besides our own types, status carries kstatus's abnormal-true `Reconciling` and `Stalled` (see api/contract.py),
so Flux health checks and `kstatus`-based tools read a ModelDeployment without configuration.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from modelplane.api.contract import (
    AS_EXPECTED,
    AVAILABLE,
    CONDITION_ORDER,
    DEGRADED,
    DEPLOYMENT_LABEL,
    LEADER_WORKER_SET,
    NOT_PLANNED,
    PLAN_ONLY,
    PLANNED,
    PROGRESSING,
    READY,
    RECONCILING,
    REPLICAS_NOT_READY,
    REPLICAS_PLACED,
    ROLLING_OUT,
    ROLLOUT_COMPLETE,
    ROLLOUT_STALLED,
    SCALED_TO_ZERO,
    STALLED,
)


@dataclass(frozen=True)
class ConditionState:
    status: str
    reason: str
    message: str = ""


class Served(NamedTuple):
    """One serving workload (a pool's Deployment or LeaderWorkerSet) as stored, with the replicas it is to run."""

    workload: dict[str, Any] | None
    replicas: int
    spec_written: bool = False
    """This pass gave the workload a new generation: its controller cannot have acted on that yet."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: list[dict[str, Any]], wanted: dict[str, ConditionState], generation: int, now: str
) -> list[dict[str, Any]]:
    """New condition list: lastTransitionTime moves only when a condition's status changes."""
    by_type = {condition.get("type"): condition for condition in current}
    merged = []
    for kind in CONDITION_ORDER:
        state = wanted.get(kind)
        if state is None:
            continue
        previous = by_type.get(kind)
        transition = previous["lastTransitionTime"] if previous and previous.get("status") == state.status else now
        merged.append({
            "type": kind,
            "status": state.status,
            "reason": state.reason,
            "message": state.message,
            "observedGeneration": generation,
            "lastTransitionTime": transition,
        })  # fmt: skip
    return merged


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _generation_seen(workload: dict[str, Any]) -> bool:
    """Whether the workload's controller has acted on its latest spec.

    A Deployment says so with status.observedGeneration. A LeaderWorkerSet (sigs.k8s.io/lws v1) has no such
    field: its controller sets `UpdateInProgress` while groups still run an older template and `Available` only
    once every group is updated and ready (pkg/controllers/leaderworkerset_controller.go, updateStatus), so
    those conditions stand in for it.
    """
    status = workload.get("status") or {}
    if "observedGeneration" in status or workload.get("kind") != LEADER_WORKER_SET:
        return int(status.get("observedGeneration") or 0) >= int(workload["metadata"].get("generation") or 0)
    return _condition(workload, "UpdateInProgress").get("status") != "True"


def scale_status(name: str, served: Sequence[Served]) -> dict[str, Any]:
    """What the scale subresource reads: replicas and ready replicas of every pool's workload together, and the
    serving pods' selector.

    A Deployment and a LeaderWorkerSet both report `replicas` and `readyReplicas` (for a LeaderWorkerSet, groups
    of pods); with no workload (not planned yet, PlanOnly) nothing serves. Every serving pod, leader or worker, on
    any pool, carries the deployment label, so HPA's pod metrics see them all.
    """
    statuses = [(workload or {}).get("status") or {} for workload, _, _ in served]
    return {"replicas": sum(int(status.get("replicas") or 0) for status in statuses),
            "ready_replicas": sum(int(status.get("readyReplicas") or 0) for status in statuses),
            "selector": f"{DEPLOYMENT_LABEL}={name}"}  # fmt: skip


def workload_conditions(
    workload: dict[str, Any] | None, replicas: int, spec_written: bool = False
) -> dict[str, ConditionState]:
    """Ready / Progressing / Degraded of a ModelDeployment from its Deployment or LeaderWorkerSet.

    With `spec_written`, the workload is the response of a write that gave it a new spec: its status is its
    controller's report on the previous one, so the rollout has not been seen yet (a LeaderWorkerSet has no
    observedGeneration to say so itself). The workload's next event brings the controller's own report.
    """
    waiting = ConditionState("False", REPLICAS_NOT_READY, f"waiting for {replicas} replica(s) to become ready")
    rolling_out = ConditionState("True", ROLLING_OUT, "rolling out the serving workload")
    if workload is None:
        return {READY: waiting, PROGRESSING: rolling_out, DEGRADED: ConditionState("False", AS_EXPECTED)}
    status = workload.get("status") or {}
    ready_replicas = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    generation_seen = not spec_written and _generation_seen(workload)
    progress = _condition(workload, "Progressing")
    failure = _condition(workload, "ReplicaFailure")
    stalled = progress.get("reason") == "ProgressDeadlineExceeded" or failure.get("status") == "True"
    if replicas == 0:
        ready = ConditionState("True", SCALED_TO_ZERO, "replicas is 0")
    elif ready_replicas >= replicas and generation_seen and _condition(workload, "Available").get("status") == "True":
        ready = ConditionState("True", AVAILABLE, f"{ready_replicas}/{replicas} replicas ready")
    else:
        ready = waiting
    rolling = not generation_seen or updated < replicas or ready_replicas < replicas
    if stalled:
        message = failure.get("message") or progress.get("message") or "rollout stalled"
        return {READY: ready, PROGRESSING: ConditionState("False", ROLLOUT_STALLED, message),
                DEGRADED: ConditionState("True", ROLLOUT_STALLED, message)}  # fmt: skip
    settled = not rolling and ready.status == "True"
    progressing = ConditionState("False", ROLLOUT_COMPLETE, "rollout complete") if settled else rolling_out
    return {READY: ready, PROGRESSING: progressing, DEGRADED: ConditionState("False", AS_EXPECTED)}


def fleet_conditions(served: Sequence[Served]) -> dict[str, ConditionState]:
    """Ready / Progressing / Degraded of every pool's workload as one: Ready when each one that runs replicas is,
    Progressing while any rolls out, Degraded (and not Progressing) when any stalled."""
    running = [part for part in served if part.replicas > 0]
    if len(running) <= 1:
        only = running[0] if running else (served[0] if served else Served(None, 0))
        return workload_conditions(only.workload, only.replicas, only.spec_written)
    parts = [workload_conditions(part.workload, part.replicas, part.spec_written) for part in running]
    total = sum(part.replicas for part in running)
    ready_count = sum(int(((part.workload or {}).get("status") or {}).get("readyReplicas") or 0) for part in running)
    ready = next(
        (part[READY] for part in parts if part[READY].status != "True"),
        ConditionState("True", AVAILABLE, f"{ready_count}/{total} replicas ready on {len(running)} pools"),
    )
    stalled = next((part for part in parts if part[DEGRADED].status == "True"), None)
    if stalled is not None:
        return {READY: ready, PROGRESSING: stalled[PROGRESSING], DEGRADED: stalled[DEGRADED]}
    progressing = next(
        (part[PROGRESSING] for part in parts if part[PROGRESSING].status == "True"), parts[0][PROGRESSING]
    )
    return {READY: ready, PROGRESSING: progressing, DEGRADED: ConditionState("False", AS_EXPECTED)}


def _kstatus(conditions: dict[str, ConditionState]) -> dict[str, ConditionState]:
    """kstatus's `Stalled` or `Reconciling`, each present only while True: kstatus reads absence as normal.

    Stalled (kstatus: Failed) when progress needs a change first: a spec that cannot be planned or served, or a
    rollout past its deadline. Reconciling (kstatus: InProgress) while the workload rolls out. Never both, as
    kstatus takes whichever comes first in the list: what cannot progress is not also "working on it".
    """
    planned, degraded, progressing = (conditions.get(kind) for kind in (PLANNED, DEGRADED, PROGRESSING))
    for cause, abnormal in ((planned, "False"), (degraded, "True")):
        if cause is not None and cause.status == abnormal:
            return {STALLED: ConditionState("True", cause.reason, cause.message)}
    if progressing is not None and progressing.status == "True":
        return {RECONCILING: ConditionState("True", progressing.reason, progressing.message)}
    return {}


def status_conditions(
    decided: dict[str, ConditionState], served: Sequence[Served], plan_only: bool = False
) -> dict[str, ConditionState]:
    """Every condition of a ModelDeployment: the decision's, its workload's, and the kstatus summary of both.

    A PlanOnly deployment with no workload is Ready as soon as it is planned: there is nothing to roll out. One
    switched to PlanOnly while serving keeps reporting the workload it left running. One that wants replicas but
    has none placed is not Ready and Degraded (InsufficientCapacity: kstatus Stalled, Argo CD Degraded); one with
    some placed is as Ready as those, and ReplicasPlaced says what waits.
    """
    conditions = dict(decided)
    if READY not in conditions:
        planned, placed = conditions.get(PLANNED), conditions.get(REPLICAS_PLACED)
        if not served and plan_only:
            serving = {READY: ConditionState("True", PLAN_ONLY, "mode PlanOnly: planned, no serving objects created")}
        elif not served and planned is not None and planned.status == "False":
            # Never planned (or its workload is gone): nothing rolls out until the spec or the cluster changes.
            idle = ConditionState("False", NOT_PLANNED, "nothing is serving: no plan yet, see the Planned condition")
            serving = {READY: idle, PROGRESSING: idle, DEGRADED: ConditionState("False", AS_EXPECTED)}
        elif placed is not None and placed.status == "False" and not any(part.replicas for part in served):
            # Replicas are wanted and none has GPUs: nothing serves until GPUs come free or the spec changes.
            serving = {READY: placed, PROGRESSING: placed, DEGRADED: ConditionState("True", placed.reason,
                                                                                    placed.message)}  # fmt: skip
        else:
            serving = fleet_conditions(served)
        conditions = {**serving, **conditions}
    return {**conditions, **_kstatus(conditions)}
