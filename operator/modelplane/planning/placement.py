"""Replicas across pools: the plan's own pool first, then the other pools in the strategy's order, each serving
its replicas with its own best shape (TP2 on an on-prem H100 pool, TP4 on a cloud L40S pool).

Pure: the operator hands in what each pool has free for this deployment and what was placed before, and gets
back how many replicas go where. Placement is sticky, so a scale-up never moves a replica that already runs:

1. every pool keeps the replicas it had, as far as its free GPUs still hold them;
2. above the desired count, replicas go from the last pool in the order first (scale-in drains the burst);
3. below it, the pools fill in order, each up to what its free GPUs and nodes hold;
4. what fits nowhere waits: it is not created, so no pod hangs Pending for GPUs that are not there.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelplane.api.model_deployment import ModelDeploymentSpec
from modelplane.api.plan import Plan
from modelplane.planning.inventory import PoolOffer


@dataclass(frozen=True)
class Slot:
    """A pool replicas may go to, with the shape a replica takes there and how many its free GPUs hold."""

    plan: Plan
    holds: int


@dataclass(frozen=True)
class PoolReplicas:
    plan: Plan
    """The pool's shape, with `replicas` set to the replicas placed on it."""

    @property
    def pool(self) -> str:
        return self.plan.pool

    @property
    def gpus(self) -> int:
        return self.plan.gpus_per_replica * self.plan.replicas


@dataclass(frozen=True)
class Placement:
    pools: tuple[PoolReplicas, ...]
    """In fill order, only pools that hold at least one replica."""
    desired: int

    @property
    def placed(self) -> int:
        return sum(pool.plan.replicas for pool in self.pools)

    @property
    def waiting(self) -> int:
        return self.desired - self.placed

    def held(self) -> dict[str, int]:
        """GPUs per pool this placement holds: its reservation."""
        return {pool.pool: pool.gpus for pool in self.pools}


def reserved_spec(spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The spec the planner sizes a pool for: with autoscaling, minReplicas must fit the plan's pool (the rest may
    burst); without, every replica of spec.replicas, as before there was bursting."""
    if spec.autoscaling is None:
        return spec
    return spec.model_copy(update={"replicas": spec.autoscaling.min_replicas})


def burst_spec(spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The spec a pool's own best shape is chosen for: one replica, whatever the rate, as each burst replica
    is one more replica; the request and the SLO still count."""
    workload = spec.workload.model_copy(update={"requests_per_second": None}) if spec.workload else None
    return spec.model_copy(update={"replicas": 1, "autoscaling": None, "workload": workload})


def desired_replicas(spec: ModelDeploymentSpec, plan: Plan) -> int:
    """Replicas to run: with autoscaling, what the autoscaler (or a person) wrote to spec.replicas; without, the
    plan's, which a request rate may raise above spec.replicas."""
    return spec.replicas if spec.autoscaling is not None else max(spec.replicas, plan.replicas)


def replicas_held(plan: Plan, offer: PoolOffer) -> int:
    """Replicas of `plan`'s shape that `offer`'s free GPUs and nodes hold, as the planner counts capacity
    (shapes.nodes_needed): GPUs over the pool, and a replica's equal pods packed as many to a node as fit, so a
    TP4×PP3 replica's three 4-GPU pods go two to an 8-GPU node."""
    by_gpus = offer.free_gpus // plan.gpus_per_replica
    pods = offer.nodes * (offer.gpus_per_node // plan.gpus_per_pod)
    return max(0, min(by_gpus, pods // plan.nodes_per_replica))


def place(desired: int, slots: Sequence[Slot], current: Mapping[str, int]) -> Placement:
    """Where `desired` replicas go over `slots` (fill order), keeping `current` (replicas per pool) in place."""
    counts = [min(current.get(slot.plan.pool, 0), slot.holds) for slot in slots]
    excess = sum(counts) - desired
    for index in reversed(range(len(slots))):
        if excess <= 0:
            break
        removed = min(excess, counts[index])
        counts[index] -= removed
        excess -= removed
    missing = desired - sum(counts)
    for index, slot in enumerate(slots):
        if missing <= 0:
            break
        added = min(missing, slot.holds - counts[index])
        counts[index] += added
        missing -= added
    pools = tuple(PoolReplicas(slot.plan.model_copy(update={"replicas": count}))
                  for slot, count in zip(slots, counts, strict=True) if count > 0)  # fmt: skip
    return Placement(pools, desired)
