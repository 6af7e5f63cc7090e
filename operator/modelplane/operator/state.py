"""The operator's state: one `Operator` per process, kept in kopf's memo, and the snapshots its workers read.

kopf keeps the indexes current on its event loop; `Indexes.snapshot()` copies them there, so a reconcile in a
worker thread reads a consistent `Snapshot` and never a structure kopf is mutating.
"""

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import kopf
from kubernetes import client

from modelplane.api.documents import parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.catalog.errors import CatalogError
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.kube.objects import CHILD_KINDS
from modelplane.operator.peering import PeeringGate
from modelplane.operator.pools import NodeRecord, PodRecord, PoolState, pool_states
from modelplane.operator.reconcile import Decisions, Reservations
from modelplane.operator.workqueue import WorkQueue
from modelplane.planning.inventory import PoolOffer, offer_from_pool
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS

LOGGER = logging.getLogger("modelplane.operator")
POOL_STATUS_KEY = "@pool-status"
"""Write every GPUNodePool's status: queued (debounced) by node, pod and pool events."""
REEVALUATE_KEY = "@reevaluate"
"""Queue every ModelDeployment for a fresh decision: the inventory changed (a pool, or GPUs came free)."""
DEBOUNCE_SECONDS = 2.0


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of kopf's indexes, taken on the event loop; safe to read from any thread."""

    deployments: dict[str, dict[str, Any]]
    gpu_pools: list[dict[str, Any]]
    gpu_nodes: list[NodeRecord]
    gpu_pods: list[PodRecord]
    children: Mapping[str, str] = field(default_factory=dict)
    """The children that exist, as `kube.objects.child_key` names them, with the deployment each is labelled with."""

    @cached_property
    def pool_states(self) -> dict[str, PoolState]:
        declared: list[tuple[GPUNodePool, PoolOffer]] = []
        for body in self.gpu_pools:
            try:
                pool = parse_object(body, "cluster")
                assert isinstance(pool, GPUNodePool)
                declared.append((pool, offer_from_pool(pool)))
            except (InvalidObjectError, CatalogError) as error:
                LOGGER.warning(f"ignoring GPUNodePool: {error}")
        return pool_states(declared, self.gpu_nodes, self.gpu_pods)


@dataclass(frozen=True)
class Indexes:
    """The in-memory views kopf keeps up to date, as handed to any handler. Read only on the event loop."""

    deployments: kopf.Index[str, Any]
    gpu_pools: kopf.Index[str, Any]
    gpu_nodes: kopf.Index[str, Any]
    gpu_pods: kopf.Index[str, Any]
    children: tuple[kopf.Index[str, Any], ...] = ()

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> "Indexes":
        children = tuple(kwargs[child_index_name(kind)] for kind in CHILD_KINDS)
        return cls(kwargs["deployments"], kwargs["gpu_pools"], kwargs["gpu_nodes"], kwargs["gpu_pods"], children)

    def snapshot(self) -> Snapshot:
        """Copied without awaiting: no index changes while the copy is made."""
        deployments = {key: value for key in self.deployments for value in self.deployments[key]}
        children = {key: owner for index in self.children for key in index for owner in index[key]}
        return Snapshot(deployments, _values(self.gpu_pools), _values(self.gpu_nodes), _values(self.gpu_pods),
                        children)  # fmt: skip


def child_index_name(kind: str) -> str:
    """The kopf index of which children of `kind` exist (an identifier: kopf passes indexes as keywords)."""
    return f"children_{CHILD_KINDS[kind].plural}"


def _values(index: kopf.Index[str, Any]) -> list[Any]:
    return [value for key in index for value in index[key]]


@dataclass(frozen=True)
class WrittenStatus:
    """The status this operator last stored for a deployment, and the resourceVersions the index may still hold
    that do not show it yet: the body it reconciled and each of its own status writes since, oldest first.

    kopf's index lags behind our writes. Were only the reconciled body's version kept, the late event of our
    own earlier write (a version newer than that body) would read as someone else's status, and the status
    already written would be written again. A version not listed is someone else's write (or a spec change)
    and is read as it is.
    """

    versions: tuple[str, ...]
    status: dict[str, Any]

    def covers(self, version: str) -> bool:
        """Whether a body at `version` predates (or is) our last write, so our stored status is newer."""
        return version in self.versions

    def after(self, version: str, written: str | None, status: dict[str, Any]) -> "WrittenStatus":
        """The record once a pass on a body at `version` stored `status`, its write (if any) making `written`.

        Versions older than `version` are dropped: the index moves forward, never back to them.
        """
        known = self.versions[self.versions.index(version) :] if self.covers(version) else (version,)
        return WrittenStatus(known if written is None else (*known, written), status)


@dataclass
class Operator:
    """Everything the operator keeps between reconciles: one instance per process, in kopf's memo.

    The queue, `fresh`, `pool_generations` and `indexes` are touched only on the event loop; `reservations` and
    `decisions` are thread-safe; `written` is keyed by deployment, which the queue gives to one worker at a time,
    and the event handler only reads it (one dict lookup; an entry not stored yet only costs a redundant pass).
    """

    api: client.ApiClient
    executor: ThreadPoolExecutor
    gate: PeeringGate
    queue: WorkQueue = field(default_factory=WorkQueue)
    reservations: Reservations = field(default_factory=Reservations)
    decisions: Decisions = field(default_factory=Decisions)
    written: dict[str, WrittenStatus] = field(default_factory=dict)
    """Per deployment, the status we last stored and the versions of the body that predate it."""
    fresh: set[str] = field(default_factory=set)
    """Deployments to decide afresh on their next pass; others (a child changed) may reuse a kept decision."""
    pool_generations: dict[str, int] = field(default_factory=dict)
    indexes: Indexes | None = None
    latest: Snapshot | None = None
    """The newest snapshot any worker took, for the metrics endpoint's thread."""
    seeded: bool = False
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    resolver: ModelResolver = PACKAGED
    """The spec, the packaged catalog, the catalog ConfigMaps, the Hub if enabled: replaced whole when a
    ConfigMap changes (a reference swap, so a worker reads one or the other, never a mix)."""
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS
    """Where the ScaledObjects' Prometheus triggers query (settings.prometheus_address)."""
    catalog_entries: tuple[ModelEntry, ...] = ()
    catalog_listed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def operator_of(memo: Any) -> Operator:
    """The one typed way in: kopf's memo holds the Operator the startup handler built."""
    operator = memo.get("operator")
    assert isinstance(operator, Operator), "the startup handler has not run"
    return operator
