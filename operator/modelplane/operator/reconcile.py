"""Converge one ModelDeployment: decide, apply the children that differ, write status only if it changed."""

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kubernetes import client

from modelplane.api.contract import (
    AUTOSCALING,
    BURST,
    CHILD_APPLY_FAILED,
    CHILD_CONFLICT,
    CHILD_REJECTED,
    DEPLOYMENT,
    KEDA_NOT_INSTALLED,
    LEADER_WORKER_SET,
    PLANNED,
    REPLANNED,
    REPLICAS_WAITING,
    SCALED_OBJECT,
    SCALED_OBJECT_APPLIED,
    WORKLOAD_KINDS,
)
from modelplane.api.status import ModelDeploymentStatus, held_gpus
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.kube.custom import patch_status, post_event
from modelplane.kube.errors import GoneError, InvalidError, TransientKubeError
from modelplane.kube.objects import (
    CHILD_KINDS,
    child_key,
    delete_child,
    ensure_child,
    get_child,
    is_subset,
    merge_patch,
    owner_reference,
)
from modelplane.operator import metrics
from modelplane.operator.conditions import (
    ConditionState,
    Served,
    merge_conditions,
    now_rfc3339,
    scale_status,
    status_conditions,
)
from modelplane.operator.decide import MAX_MESSAGE, Decision, decide, pinned_fingerprint
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.service import collector_paused
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS


@dataclass
class Reservations:
    """GPUs each deployment's placement holds per pool, known before its pods exist. Thread-safe.

    `planning` serializes "read free capacity, choose a plan and a placement, reserve it" across handler threads,
    so concurrent deployments (and concurrent scale-ups) cannot all take the same free GPUs.
    """

    _lock: threading.RLock = field(default_factory=threading.RLock)
    _held: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def planning(self) -> threading.RLock:
        return self._lock

    def set(self, key: str, reservation: Mapping[str, int] | None) -> None:
        """GPUs per pool `key` holds from now on; None: nothing (it is gone, or nothing of it serves)."""
        with self._lock:
            if reservation is None:
                self._held.pop(key, None)
            else:
                self._held[key] = dict(reservation)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return dict(self._held)


def _owned_by(live: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in live.get("metadata", {}).get("ownerReferences") or [])


class ChildConflictError(Exception):
    """An object with a child's name exists and is not this ModelDeployment's: it is never adopted."""


@dataclass(frozen=True)
class StoredStatus:
    """The status a pass left stored, and the resourceVersion its write made (None when it wrote nothing)."""

    status: dict[str, Any]
    resource_version: str | None


@dataclass(frozen=True)
class Blocked:
    """Why the rendered children could not be applied: shown as Planned=False with this reason."""

    reason: str
    message: str


def _desired_replicas(workload: dict[str, Any]) -> int:
    return int((workload.get("spec") or {}).get("replicas", 1))


class Converged(NamedTuple):
    served: list[Served]
    """The serving workloads as stored now."""
    scaler_missing: bool = False
    """The ScaledObject could not be applied: the cluster serves no such kind (KEDA is not installed)."""


def _converge_children(
    api: client.ApiClient, body: dict[str, Any], objects: list[dict[str, Any]], existing: Mapping[str, str]
) -> Converged:
    """Apply what differs, delete children no longer rendered.

    Ownership is checked for every child before anything is written: applying onto an object someone else
    created would take its fields over (a Service's selector) and, with our owner reference, let the garbage
    collector delete it with the ModelDeployment. A child no longer rendered (a kind replaced, a pool no longer
    burst to) is looked for only where `existing` (the index of our labelled children, with the deployment each
    is labelled with) has one: should the index lag behind a child just created, that child's own event queues
    this deployment again, and the next pass deletes it.
    """
    metadata = body["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    owner = owner_reference(body)
    keys = [child_key(desired["kind"], namespace, desired["metadata"]["name"]) for desired in objects]
    lives = {key: get_child(api, desired["kind"], namespace, desired["metadata"]["name"])
             for key, desired in zip(keys, objects, strict=True)}  # fmt: skip
    foreign = [desired for key, desired in zip(keys, objects, strict=True)
               if lives[key] is not None and not _owned_by(lives[key] or {}, uid)]  # fmt: skip
    if foreign:
        names = ", ".join(f"{desired['kind']} {namespace}/{desired['metadata']['name']}" for desired in foreign)
        raise ChildConflictError(
            f"{names} already exists and is not owned by this ModelDeployment; modelplane never adopts or"
            " overwrites it: delete or rename that object, or give the ModelDeployment another name"
        )
    served: list[Served] = []
    scaler_missing = False
    for key, desired in zip(keys, objects, strict=True):
        desired["metadata"]["ownerReferences"] = [owner]
        live = lives[key]
        try:
            stored = ensure_child(api, desired, live)
        except GoneError:
            if desired["kind"] != SCALED_OBJECT:
                raise
            # No keda.sh API: everything else still serves, and the Autoscaling condition says why not this.
            scaler_missing = True
            continue
        if desired["kind"] in WORKLOAD_KINDS:
            written = live is not None and _generation(stored) > _generation(live)
            served.append(Served(stored, _desired_replicas(desired), written))
    rendered = set(keys)
    for key, labelled in existing.items():
        kind, child_namespace, child = key.split("/", 2)
        if labelled != name or child_namespace != namespace or key in rendered or kind not in CHILD_KINDS:
            continue
        live = get_child(api, kind, namespace, child)
        if live is not None and _owned_by(live, uid):
            delete_child(api, kind, namespace, child)
    return Converged(served, scaler_missing)


def autoscaling_condition(objects: Sequence[dict[str, Any]], scaler_missing: bool) -> dict[str, ConditionState]:
    """Autoscaling, present only with spec.autoscaling: whether KEDA's ScaledObject drives spec.replicas."""
    scaler = next((obj for obj in objects if obj["kind"] == SCALED_OBJECT), None)
    if scaler is None:
        return {}
    if scaler_missing:
        return {AUTOSCALING: ConditionState(
            "False", KEDA_NOT_INSTALLED,
            "spec.autoscaling needs KEDA, and the cluster serves no keda.sh/v1alpha1 ScaledObject: install KEDA"
            " (its CRDs and operator), or remove spec.autoscaling and scale with kubectl scale or an HPA;"
            " until then spec.replicas stays as it is and everything else is served",
        )}  # fmt: skip
    spec = scaler["spec"]
    trigger = spec["triggers"][0]["metadata"]
    zero = f", to 0 after {spec['cooldownPeriod']}s idle" if "idleReplicaCount" in spec else ""
    return {AUTOSCALING: ConditionState(
        "True", SCALED_OBJECT_APPLIED,
        f"KEDA ScaledObject {scaler['metadata']['name']}: {spec['minReplicaCount']}-{spec['maxReplicaCount']}"
        f" replicas{zero}, {trigger['threshold']} per replica of {trigger['query']}",
    )}  # fmt: skip


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _owned_workloads(api: client.ApiClient, body: dict[str, Any]) -> list[Served]:
    """The serving workloads of the stored placement (or plan) that exist and are this ModelDeployment's."""
    metadata, status = body["metadata"], body.get("status") or {}
    plan = status.get("plan") or {}
    home = f"{LEADER_WORKER_SET if int(plan.get('nodesPerReplica') or 1) > 1 else DEPLOYMENT}/{metadata['name']}"
    names = [home, *(str(placed.get("workload")) for placed in status.get("placements") or [])]
    served = []
    for kind_name in dict.fromkeys(names):
        kind, _, child = kind_name.partition("/")
        if kind not in WORKLOAD_KINDS:
            continue
        live = get_child(api, kind, metadata["namespace"], child)
        if live is not None and _owned_by(live, metadata["uid"]):
            served.append(Served(live, _desired_replicas(live)))
    return served


def _status_changed(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return not is_subset(wanted, current)


@dataclass
class Decisions:
    """The last decision per ModelDeployment whose plan is pinned, by its `pinned_fingerprint`. Thread-safe.

    A child's event (a Deployment's rollout progress, drift) needs the desired children to compare, not a new
    plan: while the fingerprint holds, the decision is reused. The deployment's own events and inventory
    re-evaluations decide afresh, which keeps PlanOutdated current.
    """

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _kept: dict[str, tuple[str, Decision]] = field(default_factory=dict)

    def get(self, key: str, fingerprint: str | None) -> Decision | None:
        with self._lock:
            kept = self._kept.get(key)
        return kept[1] if kept is not None and fingerprint is not None and kept[0] == fingerprint else None

    def put(self, key: str, fingerprint: str | None, decision: Decision) -> None:
        with self._lock:
            if fingerprint is None or decision.objects is None:
                self._kept.pop(key, None)
            else:
                self._kept[key] = (fingerprint, decision)

    def drop(self, key: str) -> None:
        with self._lock:
            self._kept.pop(key, None)


def decide_and_reserve(
    body: dict[str, Any],
    offers: Callable[[], Sequence[PoolOffer]],
    reservations: Reservations,
    key: str,
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> Decision:
    with reservations.planning:
        started = time.perf_counter()
        with collector_paused():
            decision = decide(body, offers, resolver, prometheus_address)
        metrics.observe_plan(decision.conditions[PLANNED].reason, time.perf_counter() - started)
        if decision.objects is not None:
            reservations.set(key, decision.reservation)
    return decision


def reconcile(
    api: client.ApiClient,
    body: dict[str, Any],
    offers: Callable[[], Sequence[PoolOffer]],
    reservations: Reservations,
    key: str,
    decisions: Decisions,
    children: Mapping[str, str],
    reuse: bool = False,
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> StoredStatus:
    """One idempotent pass: zero API writes when the cluster already matches. Returns the status now stored.

    With `reuse`, a kept decision for the same pinned plan stands in for planning and rendering again;
    `children` maps the children that exist (`kube.objects.child_key`) to the deployment each is labelled with,
    from the operator's index.
    """
    decision = decisions.get(key, pinned_fingerprint(body)) if reuse else None
    if decision is None:
        decision = decide_and_reserve(body, offers, reservations, key, resolver, prometheus_address)
        # The status about to be written pins this plan: keep the decision under that future fingerprint.
        pinned = {**body, "status": {**(body.get("status") or {}), **decision.status.written_fields()}}
        decisions.put(key, pinned_fingerprint(pinned), decision)
    blocked: Blocked | None = None
    scaling: dict[str, ConditionState] = {}
    if decision.objects:
        try:
            served, scaler_missing = _converge_children(api, body, decision.objects, children)
            scaling = autoscaling_condition(decision.objects, scaler_missing)
        except ChildConflictError as error:
            blocked = Blocked(CHILD_CONFLICT, str(error))
        except InvalidError as error:
            blocked = Blocked(CHILD_REJECTED, f"the API server refused a rendered child: {error}")
        except TransientKubeError as error:
            _record_blocked(api, body, reservations, key, Blocked(CHILD_APPLY_FAILED, f"{error}; retrying"))
            raise
        if blocked is not None:
            return _record_blocked(api, body, reservations, key, blocked)
    elif decision.objects is None and (body.get("status") or {}).get("plan"):
        served = _owned_workloads(api, body)
    else:
        served = []
    conditions = {**status_conditions(decision.conditions, served, decision.plan_only), **scaling}
    status = decision.status.model_copy(update=scale_status(body["metadata"]["name"], served))
    stored = _write_status(api, body, status, conditions)
    if stored.resource_version is not None:
        _post_transitions(api, body, body.get("status") or {}, decision)
    return stored


def _write_status(
    api: client.ApiClient, body: dict[str, Any], status: ModelDeploymentStatus, conditions: dict[str, ConditionState]
) -> StoredStatus:
    """Merge-patch the fields `status` sets and the conditions into status unless they are there already.

    Returns the status now stored, with the resourceVersion the write made (None when nothing was written).
    """
    current = body.get("status") or {}
    generation = int(body["metadata"].get("generation") or 0)
    merged = merge_conditions(current.get("conditions") or [], conditions, generation, now_rfc3339())
    wanted = {**status.written_fields(), "conditions": merged}
    patch = merge_patch(wanted, current)
    if patch == wanted and not _status_changed(current, wanted):
        return StoredStatus(current, None)
    metadata = body["metadata"]
    version = patch_status(api, "modeldeployments", metadata["namespace"], metadata["name"], patch)
    return StoredStatus({**current, **wanted}, version)


def _record_blocked(
    api: client.ApiClient, body: dict[str, Any], reservations: Reservations, key: str, blocked: Blocked
) -> StoredStatus:
    """Children could not be applied: say why in status, and hold only the GPUs of servers that still run.

    No new plan is pinned: the stored one (if any) still describes what runs.
    """
    served = _owned_workloads(api, body)
    reservations.set(key, held_gpus(body.get("status") or {}) if served else None)
    decided = {PLANNED: ConditionState("False", blocked.reason, blocked.message[:MAX_MESSAGE])}
    generation = int(body["metadata"].get("generation") or 0)
    before = _planned_reason(body.get("status") or {})
    stored = _write_status(api, body, ModelDeploymentStatus(observed_generation=generation),
                           status_conditions(decided, served))  # fmt: skip
    if stored.resource_version is not None and before != blocked.reason:
        post_event(api, body, "Warning", blocked.reason, blocked.message)
    return stored


def _planned_reason(status: dict[str, Any]) -> str | None:
    return next((c.get("reason") for c in status.get("conditions") or [] if c.get("type") == PLANNED), None)


TRANSITION_EVENTS = (REPLANNED, BURST, REPLICAS_WAITING)
"""Events the decision emits only for a change it saw itself (a shape moved, the pools of the replicas changed)."""


def _post_transitions(api: client.ApiClient, body: dict[str, Any], current: dict[str, Any], decision: Decision) -> None:
    """Events only for transitions: the Planned condition changing status or reason, or a re-plan moving the
    servers (Planned stays True/Planned then, but the decision only carries `Replanned` when the shape moved)."""
    before: dict[str, Any] = next((c for c in current.get("conditions") or [] if c.get("type") == PLANNED), {})
    after = decision.conditions.get(PLANNED, ConditionState("Unknown", "Unknown"))
    planned_changed = (before.get("status"), before.get("reason")) != (after.status, after.reason)
    for event_type, reason, message in decision.events:
        if planned_changed or reason in TRANSITION_EVENTS:
            post_event(api, body, event_type, reason, message)
