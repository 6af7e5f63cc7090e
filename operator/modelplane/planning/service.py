"""The planning entry points the CLI and the operator call."""

from collections.abc import Sequence

from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import PlanResult
from modelplane.planning.inventory import PoolOffer, offer_from_pool, what_if_pools
from modelplane.planning.planner import plan_core
from modelplane.planning.suggestions import suggest


def offers_for(pools: Sequence[GPUNodePool]) -> list[PoolOffer]:
    """Pool offers in a stable order; with no pools, the built-in what-if inventory."""
    chosen = list(pools) if pools else what_if_pools()
    return [offer_from_pool(pool) for pool in sorted(chosen, key=lambda pool: pool.metadata.name)]


def plan_deployment(deployment: ModelDeployment, offers: Sequence[PoolOffer]) -> PlanResult:
    """Plan one deployment; an infeasible one also gets suggestions of what would make it fit."""
    name = deployment.metadata.name
    namespace = deployment.metadata.namespace or "default"
    outcome = plan_core(name, namespace, deployment.spec, offers)
    if outcome.result.feasible:
        return outcome.result
    hints = suggest(name, namespace, deployment.spec, offers, outcome)
    return outcome.result.model_copy(update={"suggestions": hints})
