"""Pool inventory from cluster state: GPUNodePools, the Nodes' GPU labels, and GPUs already in use.

Pure functions over plain records, so the accounting is unit-tested without a cluster. Planning
capacity subtracts GPUs held by pods modelplane does not manage, the reservations of other
ModelDeployments' plans (known the moment a plan is chosen, before any pod exists), so a burst
of new deployments cannot overbook a pool, and the pods of deployments that hold no reservation.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.api.contract import DEPLOYMENT_LABEL, LOCATION_LABEL, POOL_LABEL, READY
from modelplane.api.gpu_node_pool import GPUNodePool, Location, TaintEffect, Toleration, TolerationOperator
from modelplane.catalog.gpus import GpuSpec, gpu_catalog
from modelplane.planning.inventory import PoolOffer

PRODUCT_LABELS = ("nvidia.com/gpu.product", "amd.com/gpu.product-name", "beta.amd.com/gpu.product-name")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass(frozen=True)
class NodeRecord:
    name: str
    labels: Mapping[str, str]
    allocatable_gpus: int
    ready: bool
    gpu_taint_keys: tuple[str, ...] = ()
    schedulable: bool = True
    """False while cordoned (spec.unschedulable): its GPUs take no new pod."""

    @property
    def usable(self) -> bool:
        """Whether a new serving pod can land here: Ready and not cordoned."""
        return self.ready and self.schedulable


@dataclass(frozen=True)
class PodRecord:
    node: str
    gpus: int
    deployment: str | None
    """`namespace/name` of the ModelDeployment that owns the pod, or None for any other pod."""


@dataclass
class PoolState:
    """A pool with the nodes it matched and what is used on them."""

    offer_base: PoolOffer
    nodes: list[NodeRecord] = field(default_factory=list)
    requested_by_node: dict[str, int] = field(default_factory=dict)
    foreign_by_node: dict[str, int] = field(default_factory=dict)
    """GPUs of pods modelplane does not manage, per node."""
    managed_gpus: dict[str, int] = field(default_factory=dict)
    """GPUs of modelplane's own pods on the pool, per owning ModelDeployment (`namespace/name`)."""
    declared_available: int | None = None

    @property
    def allocatable(self) -> int:
        return sum(node.allocatable_gpus for node in self.nodes if node.ready)

    @property
    def free(self) -> int:
        """GPUs no pod requests on Ready, uncordoned nodes: where a new pod could start now."""
        return sum(max(0, node.allocatable_gpus - self.requested_by_node.get(node.name, 0))
                   for node in self.nodes if node.usable)  # fmt: skip

    @property
    def capacity(self) -> int:
        """GPUs modelplane may plan on: allocatable on Ready, uncordoned nodes minus other workloads' pods on
        those nodes, capped by availableGpus. A cordoned or NotReady node takes no new pod, whatever it holds."""
        usable = sum(max(0, node.allocatable_gpus - self.foreign_by_node.get(node.name, 0))
                     for node in self.nodes if node.usable)  # fmt: skip
        return usable if self.declared_available is None else min(usable, self.declared_available)


def node_record(node: Mapping[str, Any]) -> NodeRecord:
    """The fields of a Node the inventory needs."""
    metadata, status, spec = node.get("metadata", {}), node.get("status", {}), node.get("spec", {})
    allocatable = status.get("allocatable") or {}
    gpus = sum(int(allocatable.get(resource, 0) or 0) for resource in GPU_RESOURCES)
    ready = any(c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions") or [])
    taints = tuple(t["key"] for t in spec.get("taints") or [] if t.get("key") in GPU_RESOURCES)
    return NodeRecord(metadata.get("name", ""), dict(metadata.get("labels") or {}), gpus, ready, taints,
                      schedulable=not spec.get("unschedulable"))  # fmt: skip


def requests_gpus(pod: Mapping[str, Any]) -> int:
    """GPUs a pod's containers request, whatever its phase."""
    gpus = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = {**((container.get("resources") or {}).get("limits") or {}),
                    **((container.get("resources") or {}).get("requests") or {})}  # fmt: skip
        gpus += sum(int(requests.get(resource, 0) or 0) for resource in GPU_RESOURCES)
    return gpus


def pod_record(pod: Mapping[str, Any], gpus: int | None = None) -> PodRecord | None:
    """A scheduled, unfinished pod's GPU request; None for pods that hold no GPU.

    `gpus` is `requests_gpus(pod)` when the caller has it already (the pod index runs on every pod event).
    """
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    if not node or status.get("phase") in ("Succeeded", "Failed"):
        return None
    if gpus is None:
        gpus = requests_gpus(pod)
    if not gpus:
        return None
    metadata = pod.get("metadata") or {}
    owner = (metadata.get("labels") or {}).get(DEPLOYMENT_LABEL)
    return PodRecord(node, gpus, f"{metadata.get('namespace')}/{owner}" if owner else None)


def _product_gpu(labels: Mapping[str, str]) -> GpuSpec | None:
    products = {labels[key] for key in PRODUCT_LABELS if key in labels}
    for gpu in gpu_catalog().values():
        if products & set(gpu.product_labels):
            return gpu
    return None


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _declared_state(pool: GPUNodePool, offer: PoolOffer) -> PoolState:
    return PoolState(offer_base=offer, declared_available=pool.spec.available_gpus)


def _discovered_offer(name: str, gpu: GpuSpec, node: NodeRecord) -> PoolOffer:
    selector = (
        {POOL_LABEL: name}
        if POOL_LABEL in node.labels
        else {key: node.labels[key] for key in PRODUCT_LABELS if key in node.labels}
    )
    tolerations = tuple(
        Toleration(key=key, operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)
        for key in node.gpu_taint_keys
    )
    location = Location.CLOUD if node.labels.get(LOCATION_LABEL) == Location.CLOUD.value else Location.ON_PREM
    return PoolOffer(name=name, gpu=gpu, gpus_per_node=max(1, node.allocatable_gpus), nodes=0, location=location,
                     cost_per_gpu_hour=None, free_gpus=0, node_selector=selector, tolerations=tolerations)  # fmt: skip


def pool_states(
    pools: Iterable[tuple[GPUNodePool, PoolOffer]], nodes: Iterable[NodeRecord], pods: Iterable[PodRecord]
) -> dict[str, PoolState]:
    """Match nodes to declared pools (by nodeSelector, else the pool label) and discover the rest."""
    states: dict[str, PoolState] = {}
    selectors: list[tuple[str, dict[str, str]]] = []
    for pool, offer in pools:
        states[offer.name] = _declared_state(pool, offer)
        selectors.append((offer.name, dict(offer.node_selector) or {POOL_LABEL: offer.name}))
    node_pool: dict[str, str] = {}
    for node in sorted(nodes, key=lambda record: record.name):
        name = next((pool for pool, selector in selectors if _matches(node.labels, selector)), None)
        if name is None:
            gpu = _product_gpu(node.labels)
            if gpu is None or node.allocatable_gpus == 0:
                continue
            name = node.labels.get(POOL_LABEL) or f"discovered-{gpu.id.lower()}"
            if name not in states:
                states[name] = PoolState(offer_base=_discovered_offer(name, gpu, node))
        states[name].nodes.append(node)
        node_pool[node.name] = name
    for pod in pods:
        pool_name = node_pool.get(pod.node)
        if pool_name is None:
            continue
        state = states[pool_name]
        state.requested_by_node[pod.node] = state.requested_by_node.get(pod.node, 0) + pod.gpus
        if pod.deployment is None:
            state.foreign_by_node[pod.node] = state.foreign_by_node.get(pod.node, 0) + pod.gpus
        else:
            state.managed_gpus[pod.deployment] = state.managed_gpus.get(pod.deployment, 0) + pod.gpus
    return states


def offers_for_deployment(
    states: Mapping[str, PoolState], reservations: Mapping[str, Mapping[str, int]], deployment: str
) -> list[PoolOffer]:
    """Offers with free GPUs = capacity minus what every other deployment holds on the pool.

    A deployment holds the larger of its reservation there and the GPUs its labelled pods request there. Pods
    of a deployment that holds no reservation on the pool still hold their GPUs: after a restart the operator
    seeds reservations from pinned plans only, so a deployment switched to PlanOnly (its servers left running)
    would otherwise look free. And the label is not proof of ownership: a pod anyone labels as a deployment's
    counts beyond that deployment's reservation, so it cannot hide its GPUs behind it.
    """
    reserved: dict[str, int] = {}
    for key, held in reservations.items():
        if key == deployment:
            continue
        for pool, gpus in held.items():
            labelled = states[pool].managed_gpus.get(key, 0) if pool in states else 0
            reserved[pool] = reserved.get(pool, 0) + max(gpus, labelled)
    for name, state in states.items():
        for owner, gpus in state.managed_gpus.items():
            if owner != deployment and name not in reservations.get(owner, {}):
                reserved[name] = reserved.get(name, 0) + gpus
    offers = []
    for name, state in sorted(states.items()):
        base = state.offer_base
        nodes = max(base.nodes, len(state.nodes)) if state.nodes else base.nodes
        offers.append(PoolOffer(
            name=base.name, gpu=base.gpu, gpus_per_node=base.gpus_per_node, nodes=nodes, location=base.location,
            cost_per_gpu_hour=base.cost_per_gpu_hour, free_gpus=max(0, state.capacity - reserved.get(name, 0)),
            node_selector=dict(base.node_selector), tolerations=base.tolerations,
        ))  # fmt: skip
    return offers
