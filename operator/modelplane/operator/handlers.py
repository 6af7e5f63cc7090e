"""kopf handlers: index cluster state, hand each ModelDeployment to `reconcile`, keep pool status current.

Handlers stay tiny; the work is in decide (pure), pools (pure) and reconcile (the API calls).
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.api.documents import parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.catalog.errors import CatalogError
from modelplane.kube.client import make_api_client
from modelplane.kube.custom import patch_status
from modelplane.kube.errors import KubeError, TransientKubeError
from modelplane.kube.objects import is_subset
from modelplane.operator import metrics
from modelplane.operator.pools import (
    NodeRecord,
    PodRecord,
    PoolState,
    node_record,
    offers_for_deployment,
    pod_record,
    pool_states,
    requests_gpus,
)
from modelplane.operator.reconcile import Decisions, KeyedLocks, Reservations, Tombstones, reconcile
from modelplane.operator.settings import configure
from modelplane.planning.inventory import PoolOffer, offer_from_pool

LOGGER = logging.getLogger("modelplane.pools")
CHILD_SELECTOR = {"app.kubernetes.io/managed-by": "modelplane"}
DEPLOYMENT_LABEL = "modelplane.dev/deployment"
POOL_STATUS_DELAY_SECONDS = 2
MAX_RETRY_SECONDS = 60
REEVALUATION_DELAY_SECONDS = 2
GONE_STATUSES = (404, 410)


@dataclass
class Shared:
    """Operator-wide mutable state. kopf hands each object a shallow copy of the memo, so flags set on the
    memo itself would stay with one object; attributes of this one shared instance are seen by all."""

    seeded: bool = False
    reevaluation_pending: bool = False
    pool_status_pending: bool = False
    pool_generations: dict[str, int] = field(default_factory=dict)
    cluster: "Cluster | None" = None


@dataclass(frozen=True)
class Cluster:
    """The in-memory views kopf keeps up to date, as handed to any handler."""

    deployments: kopf.Index[str, Any]
    gpu_pools: kopf.Index[str, Any]
    gpu_nodes: kopf.Index[str, Any]
    gpu_pods: kopf.Index[str, Any]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> "Cluster":
        return cls(kwargs["deployments"], kwargs["gpu_pools"], kwargs["gpu_nodes"], kwargs["gpu_pods"])

    def deployment(self, key: str) -> dict[str, Any] | None:
        store = self.deployments.get(key)
        return next(iter(store), None) if store is not None else None

    def pool_states(self, logger: Any) -> dict[str, PoolState]:
        declared: list[tuple[GPUNodePool, PoolOffer]] = []
        for body in _values(self.gpu_pools):
            try:
                pool = parse_object(body, "cluster")
                assert isinstance(pool, GPUNodePool)
                declared.append((pool, offer_from_pool(pool)))
            except (InvalidObjectError, CatalogError) as error:
                logger.warning(f"ignoring GPUNodePool: {error}")
        return pool_states(declared, _values(self.gpu_nodes), _values(self.gpu_pods))


def _values(index: kopf.Index[str, Any]) -> list[Any]:
    return [value for key in index for value in index[key]]


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    configure(settings)
    memo.api = make_api_client()
    memo.reservations = Reservations()
    memo.locks = KeyedLocks()
    memo.decisions = Decisions()
    memo.retries = {}
    memo.retry_lock = threading.Lock()
    memo.shared = Shared()
    memo.deleted_uids = Tombstones()
    memo.written = {}
    try:
        metrics.serve(lambda: _metrics_view(memo.shared))
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from None


def _metrics_view(shared: Shared) -> metrics.ClusterView | None:
    cluster = shared.cluster
    if cluster is None:
        return None
    return metrics.ClusterView(_values(cluster.deployments), cluster.pool_states(LOGGER))


@kopf.on.cleanup()
def cleanup(memo: Any, **_: Any) -> None:
    memo.api.close()


@kopf.on.probe(id="reservations")
def probe(memo: Any, **_: Any) -> int:
    return len(memo.reservations.snapshot())


# -- indexes: in-memory views of the cluster, filled before any handler runs ---------------------
@kopf.index(API_GROUP, API_VERSION, "modeldeployments")
def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {f"{namespace}/{name}": dict(body)}


@kopf.index(API_GROUP, API_VERSION, "gpunodepools")
def gpu_pools(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(body)}


# The node and pod indexes also schedule the pools' status write. They run for every event of every node and
# pod, and only while this replica acts (kopf stops the watch streams of a paused peer); a handler per event
# would do the same at the cost of a log line per pod event.
@kopf.index("", "v1", "nodes")
def gpu_nodes(body: kopf.Body, memo: Any, **_: Any) -> dict[str, NodeRecord] | None:
    _schedule_pool_status(memo)
    record = node_record(body)
    return {record.name: record} if record.allocatable_gpus else None


@kopf.index("", "v1", "pods")
def gpu_pods(namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any) -> dict[str, PodRecord] | None:
    gpus = requests_gpus(body)
    if not gpus:
        return None
    _schedule_pool_status(memo)
    record = pod_record(body, gpus)
    return {f"{namespace}/{name}": record} if record else None


def _seed_reservations(memo: Any, cluster: Cluster) -> None:
    """After a restart, every pinned plan holds its GPUs before any deployment is re-planned."""
    if memo.shared.seeded:
        return
    for body in _values(cluster.deployments):
        plan = (body.get("status") or {}).get("plan")
        if plan and (body.get("spec") or {}).get("mode", "Apply") == "Apply":
            metadata = body["metadata"]
            reservation = (plan["pool"], int(plan["gpusPerReplica"]) * int(plan["replicas"]))
            memo.reservations.set(f"{metadata['namespace']}/{metadata['name']}", reservation)
    memo.shared.seeded = True


def _run(memo: Any, key: str, cluster: Cluster, logger: Any, body: dict[str, Any] | None = None,
         reuse: bool = False) -> None:  # fmt: skip
    _seed_reservations(memo, cluster)
    current = body if body is not None else cluster.deployment(key)
    if current is None or current.get("metadata", {}).get("uid") in memo.deleted_uids:
        return

    def offers() -> list[PoolOffer]:
        return offers_for_deployment(cluster.pool_states(logger), memo.reservations.snapshot(), key)

    with memo.locks.get(key):
        uid = current["metadata"].get("uid")
        written = memo.written.get(key)
        if written is not None and written[0] == uid:
            # Our own last status write is newer than any cached body: this process is its only writer.
            current = {**current, "status": {**(current.get("status") or {}), **written[1]}}
        try:
            stored = reconcile(memo.api, current, offers, memo.reservations, key, memo.decisions, reuse)
            memo.written[key] = (uid, stored)
        except TransientKubeError as error:
            metrics.observe_error(error.status)
            _schedule_retry(memo, key, cluster, logger, str(error))
            return
        except KubeError as error:
            if error.status in GONE_STATUSES or "being terminated" in str(error):
                memo.reservations.set(key, None)
                logger.debug(f"{key} is being deleted: {error}")
                return
            metrics.observe_error(error.status)
            logger.error(f"reconcile of {key} failed: {error}")
            return
    with memo.retry_lock:
        memo.retries.pop(key, None)


def _schedule_retry(memo: Any, key: str, cluster: Cluster, logger: Any, message: str) -> None:
    """Transient API failures retry with exponential backoff: kopf does not retry event handlers."""
    with memo.retry_lock:
        attempt = memo.retries.get(key, 0) + 1
        memo.retries[key] = attempt
    delay = min(MAX_RETRY_SECONDS, 2**attempt)
    logger.warning(f"{message}; retrying {key} in {delay}s")
    timer = threading.Timer(delay, _run, args=(memo, key, cluster, logger))
    timer.daemon = True
    timer.start()


def _schedule_reevaluation(memo: Any, cluster: Cluster, logger: Any) -> None:
    """Inventory changed (a pool, or GPUs freed by a deleted deployment): re-check every deployment once.

    Debounced, so a burst of changes costs one pass; pinned plans stay, PlanOutdated says if a better one exists.
    """
    with memo.retry_lock:
        if memo.shared.reevaluation_pending:
            return
        memo.shared.reevaluation_pending = True

    def reevaluate() -> None:
        with memo.retry_lock:
            memo.shared.reevaluation_pending = False
        for key in list(cluster.deployments):
            _run(memo, key, cluster, logger)

    timer = threading.Timer(REEVALUATION_DELAY_SECONDS, reevaluate)
    timer.daemon = True
    timer.start()


@kopf.on.event(API_GROUP, API_VERSION, "gpunodepools")
def gpu_node_pool_event(type: str, body: kopf.Body, memo: Any, logger: kopf.Logger, **kwargs: Any) -> None:
    """A pool added, removed or re-specified can make a better plan possible (initial listing excluded).

    Status-only changes are the operator's own pool status writes: they change no planning input, and
    re-planning every deployment on each of them would keep a busy operator re-planning all the time.
    """
    memo.shared.cluster = Cluster.of(kwargs)
    _schedule_pool_status(memo)
    name, generation = body["metadata"]["name"], int(body["metadata"].get("generation") or 0)
    respecified = memo.shared.pool_generations.get(name) != generation
    if type == "DELETED":
        memo.shared.pool_generations.pop(name, None)
    else:
        memo.shared.pool_generations[name] = generation
    if memo.shared.seeded and (type in ("ADDED", "DELETED") or (type == "MODIFIED" and respecified)):
        _schedule_reevaluation(memo, memo.shared.cluster, logger)


@kopf.on.event(API_GROUP, API_VERSION, "modeldeployments")
def model_deployment_event(
    type: str, namespace: str | None, name: str, body: kopf.Body, memo: Any, logger: kopf.Logger, **kwargs: Any
) -> None:
    """Every event of a ModelDeployment (the initial listing included) is one idempotent reconcile."""
    memo.shared.cluster = Cluster.of(kwargs)
    key = f"{namespace}/{name}"
    if type == "DELETED":
        with memo.locks.get(key):
            memo.deleted_uids.add(str(body.get("metadata", {}).get("uid")))
            memo.reservations.set(key, None)
            memo.written.pop(key, None)
            memo.decisions.drop(key)
        memo.locks.drop(key)
        _schedule_reevaluation(memo, Cluster.of(kwargs), logger)
        return
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    _run(memo, key, Cluster.of(kwargs), logger, dict(body))


def child_event(namespace: str | None, labels: Mapping[str, str], memo: Any, logger: kopf.Logger,
                **kwargs: Any) -> None:  # fmt: skip
    """A child changed, vanished or was edited by hand: re-converge its owner (restores drift, updates Ready)."""
    owner = labels.get(DEPLOYMENT_LABEL)
    if not owner:
        return
    key = f"{namespace}/{owner}"
    cluster = Cluster.of(kwargs)
    parent = cluster.deployment(key)
    if parent is None or (parent.get("metadata") or {}).get("deletionTimestamp"):
        return
    _run(memo, key, cluster, logger, reuse=True)


for _group, _version, _plural in (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
):
    kopf.on.event(_group, _version, _plural, labels=CHILD_SELECTOR, id=f"child-{_plural}")(child_event)


def _schedule_pool_status(memo: Any) -> None:
    """Write the pools' status shortly, once for a burst of changes.

    Driven by events rather than a clock: under peering, kopf stops delivering events to a paused replica,
    whose indexes then go stale, so only the replica that acts ever writes pool status.
    """
    with memo.retry_lock:
        if memo.shared.pool_status_pending:
            return
        memo.shared.pool_status_pending = True
    timer = threading.Timer(POOL_STATUS_DELAY_SECONDS, write_pool_status, args=(memo,))
    timer.daemon = True
    timer.start()


def write_pool_status(memo: Any) -> None:
    """GPUNodePool status: its nodes and free GPUs (allocatable minus requested, on Ready uncordoned nodes).

    A failed write retries.

    Written by the operator itself rather than from a kopf timer: kopf guards timers with a finalizer on every
    pool, which would be a write (and a permission) the operator does not otherwise need.
    """
    with memo.retry_lock:
        memo.shared.pool_status_pending = False
    cluster: Cluster | None = memo.shared.cluster
    if cluster is None:
        return
    states = cluster.pool_states(LOGGER)
    freed = False
    for body in _values(cluster.gpu_pools):
        name = body["metadata"]["name"]
        state = states.get(name)
        if state is None:
            continue
        wanted: dict[str, Any] = {
            "observedGeneration": int(body["metadata"].get("generation") or 0),
            "readyNodes": sum(1 for node in state.nodes if node.ready),
            "totalGpus": state.allocatable,
            "freeGpus": state.free,
            "nodes": [
                {"name": node.name, "allocatableGpus": node.allocatable_gpus,
                 "requestedGpus": state.requested_by_node.get(node.name, 0)}
                for node in state.nodes
            ],
        }  # fmt: skip
        current = dict(body.get("status") or {})
        if is_subset(wanted, current):
            continue
        freed = freed or wanted["freeGpus"] > int(current.get("freeGpus", wanted["freeGpus"]))
        try:
            patch_status(memo.api, "gpunodepools", None, name, wanted)
        except KubeError as error:
            LOGGER.warning(f"could not update the status of pool {name}: {error}; retrying")
            _schedule_pool_status(memo)
    if freed and memo.shared.seeded:
        # GPUs came free (a workload ended): a deployment waiting for capacity may fit now, a pinned one may
        # have a better plan.
        _schedule_reevaluation(memo, cluster, LOGGER)
