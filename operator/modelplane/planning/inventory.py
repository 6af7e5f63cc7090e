"""GPU pools as the planner sees them: a catalog GPU, a node shape, a location, a price, free GPUs."""

from dataclasses import dataclass, field
from decimal import Decimal

from modelplane.api.base import ObjectMeta
from modelplane.api.gpu_node_pool import GPUNodePool, GPUNodePoolSpec, Location, Toleration
from modelplane.catalog.gpus import GpuSpec, get_gpu, gpu_catalog

WHAT_IF_NODES = 2


@dataclass(frozen=True)
class PoolOffer:
    name: str
    gpu: GpuSpec
    gpus_per_node: int
    nodes: int
    location: Location
    cost_per_gpu_hour: Decimal | None
    free_gpus: int
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


def offer_from_pool(pool: GPUNodePool) -> PoolOffer:
    """A GPUNodePool as an offer; free GPUs default to the whole pool and never exceed it."""
    spec = pool.spec
    total = spec.gpus_per_node * spec.nodes
    free = total if spec.available_gpus is None else min(spec.available_gpus, total)
    return PoolOffer(
        name=pool.metadata.name,
        gpu=get_gpu(spec.gpu),
        gpus_per_node=spec.gpus_per_node,
        nodes=spec.nodes,
        location=spec.location,
        cost_per_gpu_hour=Decimal(spec.cost_per_gpu_hour) if spec.cost_per_gpu_hour is not None else None,
        free_gpus=free,
        node_selector=dict(spec.node_selector),
        tolerations=tuple(spec.tolerations),
    )


def what_if_pools() -> list[GPUNodePool]:
    """One cloud pool per catalog GPU, two servers of its usual size: for planning with no inventory."""
    return [
        GPUNodePool(
            metadata=ObjectMeta(name=gpu.id.lower()),
            spec=GPUNodePoolSpec(
                gpu=gpu.id,
                gpus_per_node=gpu.gpus_per_server,
                nodes=WHAT_IF_NODES,
                location=Location.CLOUD,
            ),
        )
        for gpu in gpu_catalog().values()
    ]
