"""The desired replicas of a planned deployment, placed over the pools, and what status and events say of it. Pure.

The plan's own pool takes replicas first, as far as its free GPUs hold them; the rest burst to the other pools
the strategy and locality allow, each in its own best shape (`planning.service.burst_plans`) and its own
workload (`render.context.burst_name`). Replicas that fit nowhere wait, not created, and ReplicasPlaced says so.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.api.contract import (
    ALL_REPLICAS_PLACED,
    BURST,
    DEPLOYMENT,
    LEADER_WORKER_SET,
    REPLICAS_WAITING,
    SCALED_TO_ZERO,
)
from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import Plan, ReasonCode
from modelplane.api.status import PoolPlacement
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.operator.conditions import ConditionState
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.placement import Placement, Slot, place, replicas_held
from modelplane.planning.service import burst_plans
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS, burst_name
from modelplane.render.engine import render_burst, render_deployment


def current_replicas(status: Mapping[str, Any]) -> dict[str, int]:
    """Replicas per pool as the last pass placed them; before placements existed, all on the stored plan's pool."""
    if "placements" in status:
        return {str(placed["pool"]): int(placed["replicas"]) for placed in status.get("placements") or []}
    plan = status.get("plan")
    return {str(plan["pool"]): int(plan["replicas"])} if plan else {}


def _slots(
    deployment: ModelDeployment, plan: Plan, offers: Sequence[PoolOffer], resolver: ModelResolver, bursting: bool
) -> list[Slot]:
    by_name = {offer.name: offer for offer in offers}
    home = by_name.get(plan.pool)
    slots = [Slot(plan, replicas_held(plan, home) if home is not None else 0)]
    if bursting:
        slots += [Slot(burst, replicas_held(burst, by_name[burst.pool]))
                  for burst in burst_plans(deployment, offers, resolver) if burst.pool != plan.pool]  # fmt: skip
    return slots


def place_replicas(
    deployment: ModelDeployment,
    plan: Plan,
    offers: Sequence[PoolOffer],
    status: Mapping[str, Any],
    resolver: ModelResolver = PACKAGED,
) -> tuple[Placement, int | None]:
    """`plan.replicas` over the pools, and how many of spec.autoscaling.maxReplicas the free GPUs hold now (None
    without autoscaling). Other pools' shapes are planned, once, only when the plan's pool is not enough,
    replicas already run elsewhere or maxReplicas is to be checked: a deployment that never bursts plans once
    per pass, as before bursting."""
    current = current_replicas(status)
    slots = _slots(deployment, plan, offers, resolver, bursting=False)
    autoscaling = deployment.spec.autoscaling
    if autoscaling is not None or plan.replicas > slots[0].holds or any(pool != plan.pool for pool in current):
        slots = _slots(deployment, plan, offers, resolver, bursting=True)
    placeable = place(autoscaling.max_replicas, slots, current).placed if autoscaling is not None else None
    return place(plan.replicas, slots, current), placeable


def serving_objects(
    deployment: ModelDeployment,
    plan: Plan,
    placement: Placement,
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> list[dict[str, Any]]:
    """The plan's pool's children (its workload holding the replicas placed there, possibly none) and one
    workload per pool the deployment bursts to."""
    placed = {pool.pool: pool.plan for pool in placement.pools}
    home = plan.model_copy(update={"replicas": placed[plan.pool].replicas if plan.pool in placed else 0})
    objects = render_deployment(deployment, home, resolver, prometheus_address)
    objects += [render_burst(deployment, burst, resolver) for pool, burst in placed.items() if pool != plan.pool]
    return objects


def workload_of(name: str, plan: Plan, home_pool: str) -> str:
    """kind/name of the workload that runs `plan`'s replicas."""
    kind = LEADER_WORKER_SET if plan.nodes_per_replica > 1 else DEPLOYMENT
    return f"{kind}/{name if plan.pool == home_pool else burst_name(name, plan.pool)}"


def placements_status(name: str, plan: Plan, placement: Placement) -> list[PoolPlacement]:
    return [
        PoolPlacement(
            pool=pool.pool,
            gpu=pool.plan.gpu,
            location=pool.plan.location,
            tensor_parallel=pool.plan.tensor_parallel,
            pipeline_parallel=pool.plan.pipeline_parallel,
            gpus_per_replica=pool.plan.gpus_per_replica,
            replicas=pool.plan.replicas,
            workload=workload_of(name, pool.plan, plan.pool),
        )
        for pool in placement.pools
    ]


def _where(placement: Placement) -> str:
    return ", ".join(f"{pool.plan.replicas} on {pool.pool} ({pool.plan.gpu}, TP{pool.plan.tensor_parallel}"
                     f"×PP{pool.plan.pipeline_parallel})" for pool in placement.pools)  # fmt: skip


def placed_condition(placement: Placement, placeable_max: int | None = None) -> ConditionState:
    """ReplicasPlaced: True when every desired replica has GPUs, False (InsufficientCapacity) naming what waits."""
    if placement.desired == 0:
        return ConditionState("True", SCALED_TO_ZERO, "replicas is 0: no GPUs held")
    where = _where(placement) or "none placed"
    if placement.waiting:
        return ConditionState(
            "False", ReasonCode.INSUFFICIENT_CAPACITY.value,
            f"{placement.placed} of {placement.desired} replica(s) placed ({where}); {placement.waiting} wait for free"
            " GPUs on the pools the placement allows and start when some come free",
        )  # fmt: skip
    message = f"{placement.placed} replica(s): {where}"
    if placeable_max is not None:
        message += f"; up to {placeable_max} fit the free GPUs now"
    return ConditionState("True", ALL_REPLICAS_PLACED, message)


def placement_events(status: Mapping[str, Any], placement: Placement) -> list[tuple[str, str, str]]:
    """Events for what changed since the last pass: pools burst to or left, replicas starting to wait."""
    before = current_replicas(status)
    after = {pool.pool: pool.plan.replicas for pool in placement.pools}
    events: list[tuple[str, str, str]] = []
    if set(after) != set(before) and max(len(after), len(before)) > 1:
        events.append(("Normal", BURST, f"replicas across {len(after)} pools: {_where(placement)}"))
    waited = int(status.get("waitingReplicas") or 0)
    if placement.waiting and placement.waiting != waited:
        events.append(("Warning", REPLICAS_WAITING,
                       f"{placement.waiting} of {placement.desired} replica(s) wait for free GPUs"))  # fmt: skip
    return events
