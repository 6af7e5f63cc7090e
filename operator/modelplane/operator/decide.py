"""What a ModelDeployment should look like now: plan (pinned or new), children and status. Pure.

Plan pinning: status.plan is kept while it was made for this generation, or for a spec that differs only in
its replica counts (spec.replicas, spec.autoscaling: scaling never re-plans), and no re-plan was requested
through the `modelplane.dev/replan` annotation. A better plan found later is reported as PlanOutdated instead
of moving running servers. A spec change that makes the deployment infeasible (or unrenderable) leaves
status.plan and the running children as they are.

The desired replicas are then placed (planning/placement.py): on the plan's pool as far as its free GPUs go,
the rest on the next pools, each in its own best shape and its own workload; what fits nowhere waits.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane.api.contract import (
    ARCHITECTURE_UNSUPPORTED,
    BETTER_PLAN_AVAILABLE,
    INVALID_SERVING_SPEC,
    INVALID_SPEC,
    MODEL_UNKNOWN,
    PLAN_CURRENT,
    PLAN_OUTDATED,
    PLANNED,
    PLANNED_REASON,
    REPLAN_ANNOTATION,
    REPLANNED,
    REPLICAS_PLACED,
)
from modelplane.api.documents import parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import Mode, ModelDeployment
from modelplane.api.plan import Plan, PlanResult, ReasonCode
from modelplane.api.status import ModelDeploymentStatus, RejectedPool
from modelplane.catalog.errors import CatalogError, ModelSourceError, UnknownModelError, UnsupportedArchitectureError
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.operator.bursting import (
    place_replicas,
    placed_condition,
    placement_events,
    placements_status,
    serving_objects,
)
from modelplane.operator.conditions import ConditionState
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.placement import Placement, desired_replicas
from modelplane.planning.service import plan_deployment, plan_for_shape
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS, plan_hash
from modelplane.render.errors import RenderError

MAX_MESSAGE = 4000


@dataclass
class Decision:
    """The outcome of one reconcile: children to converge (None: leave them alone) and status fields.

    `status` holds what the decision claims (conditions aside, which also depend on the workload); the fields it
    does not set are removed from the stored status when it is written.
    """

    status: ModelDeploymentStatus
    conditions: dict[str, ConditionState]
    objects: list[dict[str, Any]] | None
    plan: Plan | None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    plan_only: bool = False
    placement: Placement | None = None

    @property
    def reservation(self) -> dict[str, int] | None:
        """The GPUs per pool the children about to be applied hold; None when the decision applies nothing.

        A decision that leaves the children alone (objects None) changes no reservation: whatever already
        runs keeps its GPUs, so an infeasible edit or a switch to PlanOnly cannot free GPUs that are in use.
        """
        if self.placement is None or self.objects is None:
            return None
        return self.placement.held()


def _shape(plan: Plan) -> tuple[object, ...]:
    return (plan.pool, plan.tensor_parallel, plan.pipeline_parallel, plan.quantization)


def _describe(plan: Plan) -> str:
    return (f"pool {plan.pool} ({plan.gpu}), TP{plan.tensor_parallel}×PP{plan.pipeline_parallel}, "
            f"{plan.quantization}, {plan.gpus_per_replica} GPU(s) per replica")  # fmt: skip


def rejected_pools(result: PlanResult) -> list[RejectedPool]:
    """The compact why-not list of the status: each rejected pool with its reason codes."""
    return [RejectedPool(pool=pool, codes=[ReasonCode(code) for code in codes])
            for pool, codes in result.rejected_pools.items()]  # fmt: skip


def _infeasible_message(result: PlanResult) -> str:
    """The first reason's code is the condition's reason, so only the others are named in the message."""
    parts = [reason.message if index == 0 else f"{reason.code.value}: {reason.message}"
             for index, reason in enumerate(result.reasons)]  # fmt: skip
    if result.suggestions:
        parts.append("would fit: " + "; ".join(result.suggestions))
    return " | ".join(parts)[:MAX_MESSAGE]


SCALING_FIELDS = ("replicas", "autoscaling")
"""Spec fields that say how many replicas run, never how each one runs: changing them keeps the plan."""


def plan_inputs(spec: dict[str, Any] | None) -> str:
    """A digest of the spec a plan is made from, the scaling fields left out (status.planInputs)."""
    kept = {key: value for key, value in (spec or {}).items() if key not in SCALING_FIELDS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _pin_holds(body: dict[str, Any]) -> bool:
    """The stored plan stays: it was planned for this generation, or for a spec that differs only in how many
    replicas run, and no new re-plan was asked for since."""
    metadata, status = body.get("metadata") or {}, body.get("status") or {}
    token = (metadata.get("annotations") or {}).get(REPLAN_ANNOTATION)
    planned_for = (status.get("planGeneration") == int(metadata.get("generation") or 0)
                   or status.get("planInputs") == plan_inputs(body.get("spec")))  # fmt: skip
    return bool(status.get("plan")) and planned_for and (token is None or token == status.get("replanToken"))


def _stored_plan(status: dict[str, Any]) -> Plan | None:
    """status.plan as a Plan; None when absent or not a plan at all (then it is planned afresh)."""
    try:
        return Plan.model_validate(status["plan"]) if status.get("plan") else None
    except ValueError:
        return None


def _planned_by_us(
    deployment: ModelDeployment, stored: Plan, offers: Sequence[PoolOffer], resolver: ModelResolver
) -> Plan | None:
    """The stored plan with the replicas the spec asks for now, if it is exactly what the planner makes for its
    own choice of pool and shape now; else None.

    A plan written into status by hand (more GPUs, a chosen nodeSelector, tolerate-all) is not, and neither is
    one for a pool since re-specified or a catalog since changed: each is planned afresh instead of rendered.
    Estimates and replicas are left out: a new price changes no pod, and a new replica count is placed, not
    planned.
    """
    offer = next((offer for offer in offers if offer.name == stored.pool), None)
    recomputed = plan_for_shape(deployment, offer, stored, resolver) if offer is not None else None
    if recomputed is None or _shape_fields(recomputed) != _shape_fields(stored):
        return None
    return stored.model_copy(update={"replicas": recomputed.replicas})


def _shape_fields(plan: Plan) -> dict[str, Any]:
    wire = plan.to_wire()
    wire.pop("estimates", None)
    wire.pop("replicas", None)
    return wire


def pinned_fingerprint(body: dict[str, Any]) -> str | None:
    """Everything but the inventory that a decision for a pinned plan depends on; None when nothing is pinned.

    Two bodies with the same fingerprint render the same children and the same status, except for
    PlanOutdated, which compares against the inventory of the moment.
    """
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    if not _pin_holds(body):
        return None
    inputs = [metadata.get("uid"), metadata.get("generation"), metadata.get("labels"), metadata.get("annotations"),
              body.get("spec"), status["plan"], status.get("placements")]  # fmt: skip
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"))


def _refusal_reason(error: CatalogError) -> str:
    if isinstance(error, UnknownModelError | ModelSourceError):
        return MODEL_UNKNOWN
    return ARCHITECTURE_UNSUPPORTED if isinstance(error, UnsupportedArchitectureError) else INVALID_SPEC


def decide(
    body: dict[str, Any],
    offers: Callable[[], Sequence[PoolOffer]],
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> Decision:
    """Plan and render for the current spec, honouring the pinned plan; `resolver` knows the models, and KEDA's
    trigger queries the Prometheus at `prometheus_address`."""
    metadata = body.get("metadata") or {}
    where = f"ModelDeployment {metadata.get('namespace')}/{metadata.get('name')}"
    generation = int(metadata.get("generation") or 0)
    current = body.get("status") or {}
    base = ModelDeploymentStatus(observed_generation=generation)
    try:
        # status is read apart (_stored_plan): a malformed one is planned afresh, not an invalid spec.
        parsed = parse_object({key: value for key, value in body.items() if key != "status"}, "cluster")
        assert isinstance(parsed, ModelDeployment)
        deployment = parsed
        available = offers()
        result = plan_deployment(deployment, available, resolver, candidates=False)
    except (InvalidObjectError, CatalogError) as error:
        message = str(error).replace(f"cluster: {where}: ", "")
        reason = _refusal_reason(error) if isinstance(error, CatalogError) else INVALID_SPEC
        return Decision(base, {PLANNED: ConditionState("False", reason, message[:MAX_MESSAGE])}, None, None,
                        [("Warning", reason, message)])  # fmt: skip
    token = (metadata.get("annotations") or {}).get(REPLAN_ANNOTATION)
    stored = _stored_plan(current)
    pinned = stored if stored is not None and _pin_holds(body) else None
    if pinned is not None:
        pinned = _planned_by_us(deployment, pinned, available, resolver)
    conditions: dict[str, ConditionState] = {}
    events: list[tuple[str, str, str]] = []
    claimed: dict[str, Any] = {"observed_generation": generation}
    if token is not None:
        claimed["replan_token"] = token
    if pinned is not None:
        plan = pinned
        conditions[PLANNED] = ConditionState("True", PLANNED_REASON, _describe(plan))
        better = result.plan
        if result.feasible and better is not None and _shape(better) != _shape(pinned):
            conditions[PLAN_OUTDATED] = ConditionState(
                "True", BETTER_PLAN_AVAILABLE,
                f"{_describe(better)}; annotate {REPLAN_ANNOTATION} to move the running servers",
            )  # fmt: skip
        else:
            conditions[PLAN_OUTDATED] = ConditionState("False", PLAN_CURRENT, "the pinned plan is still the best")
    elif result.feasible and result.plan is not None:
        plan = result.plan
        conditions[PLANNED] = ConditionState("True", PLANNED_REASON, _describe(plan))
        conditions[PLAN_OUTDATED] = ConditionState("False", PLAN_CURRENT, "the pinned plan is still the best")
        if stored is not None and _shape(stored) != _shape(plan):
            events.append(("Normal", REPLANNED, f"from {_describe(stored)} to {_describe(plan)}"))
    else:
        reason = result.reasons[0].code.value if result.reasons else "Infeasible"
        message = _infeasible_message(result)
        events.append(("Warning", reason, message))
        refused = ModelDeploymentStatus(**claimed, rejected=rejected_pools(result))
        return Decision(refused, {PLANNED: ConditionState("False", reason, message)}, None, None, events)
    plan = plan.model_copy(update={"replicas": desired_replicas(deployment.spec, plan)})
    claimed.update(plan=plan, plan_generation=generation, plan_hash=plan_hash(plan),
                   plan_inputs=plan_inputs(body.get("spec")))  # fmt: skip
    if pinned is None:
        # The why-not list belongs to the moment of planning; other deployments filling pools later must
        # not rewrite a pinned deployment's status.
        claimed["rejected"] = rejected_pools(result)
    status = ModelDeploymentStatus(**claimed)

    if deployment.spec.mode is Mode.PLAN_ONLY:
        # Nothing is created, and nothing that already serves is touched: switching a running deployment to
        # PlanOnly to review an edit must not take its servers down.
        planned = conditions[PLANNED]
        conditions[PLANNED] = ConditionState(planned.status, planned.reason,
                                             f"{planned.message}; mode PlanOnly: not applied")  # fmt: skip
        return Decision(status, conditions, None, plan, events, plan_only=True)
    placement, placeable_max = place_replicas(deployment, plan, available, current, resolver)
    try:
        objects = serving_objects(deployment, plan, placement, resolver, prometheus_address)
    except (RenderError, CatalogError) as error:
        message = str(error)
        return Decision(base, {PLANNED: ConditionState("False", INVALID_SERVING_SPEC, message)}, None, None,
                        [("Warning", INVALID_SERVING_SPEC, message)])  # fmt: skip
    claimed.update(placements=placements_status(deployment.metadata.name, plan, placement),
                   waiting_replicas=placement.waiting)  # fmt: skip
    conditions[REPLICAS_PLACED] = placed_condition(placement, placeable_max)
    events += placement_events(current, placement)
    return Decision(ModelDeploymentStatus(**claimed), conditions, objects, plan, events, placement=placement)
