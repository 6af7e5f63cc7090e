"""The planning entry points the CLI and the operator call."""

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.model_deployment import ModelDeployment, ModelDeploymentSpec, Parallelism
from modelplane.api.plan import Plan, PlanResult
from modelplane.api.serving import Quantization
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.planning.inventory import PoolOffer, offer_from_pool, what_if_pools
from modelplane.planning.parameters import count_parameters
from modelplane.planning.placement import burst_spec, reserved_spec
from modelplane.planning.planner import best_per_pool, checkpoint_format, plan_core
from modelplane.planning.stages import WeightTable
from modelplane.planning.suggestions import suggest


def offers_for(pools: Sequence[GPUNodePool]) -> list[PoolOffer]:
    """Pool offers in a stable order; with no pools, the built-in what-if inventory."""
    chosen = list(pools) if pools else what_if_pools()
    return [offer_from_pool(pool) for pool in sorted(chosen, key=lambda pool: pool.metadata.name)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration, as it was before afterwards.

    For the callers that plan in bulk (the CLI over its files, the operator per reconcile), not for the plan
    functions themselves: a plan against 100 pools builds about 4,400 container objects (candidates, fits,
    tuples) and no reference cycles, so reference counting frees all of it, while the collector, left on, runs
    about six young-generation passes per plan that find nothing to free, some 7 % of the plan's time. Another
    thread pausing it meanwhile only delays collection; whoever found it on turns it back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_deployment(
    deployment: ModelDeployment,
    offers: Sequence[PoolOffer],
    resolver: ModelResolver = PACKAGED,
    *,
    candidates: bool = True,
) -> PlanResult:
    """Plan one deployment; an infeasible one also gets suggestions of what would make it fit.

    The model is resolved once, before planning (catalog.resolve); planning itself reads nothing. Callers that
    do not print every candidate (the operator, `render`) pass `candidates=False` (see `plan_core`).
    """
    name = deployment.metadata.name
    namespace = deployment.metadata.namespace or "default"
    spec = reserved_spec(deployment.spec)
    model = resolver.resolve(spec.model.name, spec.model.architecture, f"{namespace}/{name}")
    outcome = plan_core(name, namespace, spec, offers, model, candidates=candidates)
    if outcome.result.feasible:
        return outcome.result
    hints = suggest(name, namespace, spec, offers, outcome, model)
    return outcome.result.model_copy(update={"suggestions": hints})


def plan_for_shape(
    deployment: ModelDeployment, offer: PoolOffer, shape: Plan, resolver: ModelResolver = PACKAGED
) -> Plan | None:
    """The plan the planner itself makes for `shape`'s pool, parallelism and quantization, whatever is free.

    How a stored plan is checked: status can be written by anyone allowed to, so a plan read back from it is
    trusted only when the planner, given the same choice, arrives at the same plan. None when that choice is
    not feasible for this spec on this pool at all.
    """
    name, namespace = deployment.metadata.name, deployment.metadata.namespace or "default"
    spec = deployment.spec
    model = resolver.resolve(spec.model.name, spec.model.architecture, f"{namespace}/{name}")
    whole_pool = replace(offer, free_gpus=offer.total_gpus)

    def planned(sized: ModelDeploymentSpec) -> Plan | None:
        pinned = sized.model_copy(update={
            "parallelism": Parallelism(tensor_parallel=shape.tensor_parallel,
                                       pipeline_parallel=shape.pipeline_parallel),
            "placement": sized.placement.model_copy(update={"pools": [offer.name]}),
            "quantization": shape.quantization,
        })  # fmt: skip
        return plan_core(name, namespace, pinned, [whole_pool], model, candidates=False).result.plan

    # Scaled beyond what the whole pool holds, the shape is still the pool's: the replicas it cannot take are
    # placed on other pools (planning/placement.py), so the shape is checked for one replica.
    return planned(reserved_spec(spec)) or planned(burst_spec(spec))


def burst_plans(
    deployment: ModelDeployment, offers: Sequence[PoolOffer], resolver: ModelResolver = PACKAGED
) -> list[Plan]:
    """Every pool's own best shape for one more replica, in the order the strategy and locality fill them."""
    name, namespace = deployment.metadata.name, deployment.metadata.namespace or "default"
    spec = burst_spec(deployment.spec)
    model = resolver.resolve(spec.model.name, spec.model.architecture, f"{namespace}/{name}")
    return best_per_pool(name, namespace, spec, offers, model)


def checkpoint_bytes(deployment: ModelDeployment, resolver: ModelResolver = PACKAGED) -> int:
    """The bytes of the checkpoint's weight files: what a download moves and a server reads at start.

    A pre-quantized checkpoint is stored in its own format; any other in 16 bits, whatever the server quantizes
    it to on load (an fp8 plan of a bf16 checkpoint still downloads 2 bytes per parameter).
    """
    model = deployment.spec.model
    where = f"{deployment.metadata.namespace or 'default'}/{deployment.metadata.name}"
    resolved = resolver.resolve(model.name, model.architecture, where)
    arch = resolved.architecture
    stored = checkpoint_format(arch, resolved.entry) or Quantization.BF16
    breakdown = count_parameters(arch)
    table = WeightTable.build(arch, breakdown, stored, stored=breakdown)
    return table.stages([range(arch.num_layers)])[0]
