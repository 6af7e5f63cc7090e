"""kopf handlers: index cluster state and feed one keyed work queue; workers reconcile what it hands out.

kopf keeps the indexes current on its event loop. Handlers here are coroutines on that loop too, so each only
queues a key (a ModelDeployment's `namespace/name`, or one of the two operator-wide keys below). A worker takes a
key, copies the indexes into a `Snapshot` while still on the loop (nothing kopf mutates is ever read from another
thread), and runs the blocking reconcile in a thread. Any exception requeues its key with backoff and is counted
in `modelplane_reconcile_errors_total`; the queue never hands one key to two workers at once.
"""

import asyncio
import functools
import logging
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import kopf
from kubernetes import client

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.api.contract import DEPLOYMENT_LABEL
from modelplane.api.documents import parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.plan import held_gpus
from modelplane.catalog.errors import CatalogError
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import PACKAGED, HubCache, ModelResolver, configmap_entries
from modelplane.kube.catalog import watch_catalog
from modelplane.kube.client import make_api_client
from modelplane.kube.custom import patch_status
from modelplane.kube.errors import KubeError
from modelplane.kube.objects import is_subset
from modelplane.operator import metrics
from modelplane.operator.peering import PeeringGate, PeeringScope, read_blocking_peers
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
from modelplane.operator.reconcile import Decisions, Reservations, reconcile
from modelplane.operator.settings import ModelSources, configure, model_sources, watched_namespaces
from modelplane.operator.workqueue import WorkQueue
from modelplane.planning.inventory import PoolOffer, offer_from_pool

LOGGER = logging.getLogger("modelplane.operator")
CHILD_SELECTOR = {"app.kubernetes.io/managed-by": "modelplane"}
WORKERS = 4
POOL_STATUS_KEY = "@pool-status"
"""Write every GPUNodePool's status: queued (debounced) by node, pod and pool events."""
REEVALUATE_KEY = "@reevaluate"
"""Queue every ModelDeployment for a fresh decision: the inventory changed (a pool, or GPUs came free)."""
DEBOUNCE_SECONDS = 2.0
INDEXES_PENDING_SECONDS = 1.0
CATALOG_FIRST_LIST_SECONDS = 10.0
"""How long start-up waits for the first list of catalog ConfigMaps, so models they define plan at once."""


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of kopf's indexes, taken on the event loop; safe to read from any thread."""

    deployments: dict[str, dict[str, Any]]
    gpu_pools: list[dict[str, Any]]
    gpu_nodes: list[NodeRecord]
    gpu_pods: list[PodRecord]

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

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> "Indexes":
        return cls(kwargs["deployments"], kwargs["gpu_pools"], kwargs["gpu_nodes"], kwargs["gpu_pods"])

    def snapshot(self) -> Snapshot:
        """Copied without awaiting: no index changes while the copy is made."""
        deployments = {key: value for key in self.deployments for value in self.deployments[key]}
        return Snapshot(deployments, _values(self.gpu_pools), _values(self.gpu_nodes), _values(self.gpu_pods))


def _values(index: kopf.Index[str, Any]) -> list[Any]:
    return [value for key in index for value in index[key]]


@dataclass
class Operator:
    """Everything the operator keeps between reconciles: one instance per process, in kopf's memo.

    The queue, `fresh`, `pool_generations` and `indexes` are touched only on the event loop; `reservations` and
    `decisions` are thread-safe; `written` is keyed by deployment, which the queue gives to one worker at a time.
    """

    api: client.ApiClient
    executor: ThreadPoolExecutor
    gate: PeeringGate
    queue: WorkQueue = field(default_factory=WorkQueue)
    reservations: Reservations = field(default_factory=Reservations)
    decisions: Decisions = field(default_factory=Decisions)
    written: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """Per deployment, the resourceVersion of the body we reconciled and the status we then stored: while the
    index still holds that very version, our write is newer than it."""
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
    catalog_entries: tuple[ModelEntry, ...] = ()
    catalog_listed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def _operator(memo: Any) -> Operator:
    operator = memo.get("operator")
    assert isinstance(operator, Operator), "the startup handler has not run"
    return operator


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    try:
        sources = model_sources()
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from None
    scope = PeeringScope.of(settings, watched_namespaces(sys.argv))
    api = make_api_client()
    operator = Operator(api, ThreadPoolExecutor(WORKERS, thread_name_prefix="reconcile"), PeeringGate(scope))
    operator.resolver = ModelResolver((), sources.hub, HubCache(sources.hub_cache_models))
    memo["operator"] = operator
    try:
        metrics.serve(lambda: _metrics_view(operator))
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from None
    await _start_catalog_watch(operator, sources)
    operator.workers = [asyncio.create_task(_work(operator), name=f"worker-{n}") for n in range(WORKERS)]
    if scope is not None:
        read = functools.partial(read_blocking_peers, api, scope)
        operator.workers.append(asyncio.create_task(operator.gate.watch(lambda: read(datetime.now(UTC))),
                                                    name="peering-gate"))  # fmt: skip


async def _start_catalog_watch(operator: Operator, sources: ModelSources) -> None:
    """Watch the catalog ConfigMaps in a thread of its own; wait (a bounded time) for the first list."""
    namespace = sources.catalog_namespace
    if namespace is None:
        return
    loop = asyncio.get_running_loop()

    def changed(configmaps: list[dict[str, Any]]) -> None:
        entries = catalog_from(configmaps, namespace)
        if entries != operator.catalog_entries or not operator.catalog_listed.is_set():
            operator.catalog_entries = entries
            operator.resolver = operator.resolver.with_entries(entries)
            LOGGER.info(f"model catalog: {len(entries)} entries from ConfigMaps in {namespace}")
            # A model that was unknown may be known now, and a changed entry changes its plan's inputs.
            loop.call_soon_threadsafe(operator.queue.add_after, REEVALUATE_KEY, 0.0)
        operator.catalog_listed.set()

    def failed(error: KubeError) -> None:
        metrics.observe_error(error)
        LOGGER.warning(f"model catalog ConfigMaps: {error}; listing again")

    threading.Thread(target=watch_catalog, args=(operator.api, namespace, changed, failed, operator.stop),
                     name="model-catalog", daemon=True).start()  # fmt: skip
    await asyncio.to_thread(operator.catalog_listed.wait, CATALOG_FIRST_LIST_SECONDS)


def catalog_from(configmaps: list[dict[str, Any]], namespace: str) -> tuple[ModelEntry, ...]:
    """Every well-formed entry of the ConfigMaps, by ConfigMap name; a malformed ConfigMap is logged and left out.

    An entry whose architecture the planner refuses stays: planning its deployments says why, in their status.
    """
    entries: list[ModelEntry] = []
    for configmap in sorted(configmaps, key=lambda item: str(item["metadata"]["name"])):
        where = f"ConfigMap {namespace}/{configmap['metadata']['name']}"
        try:
            found = configmap_entries(configmap, where)
        except CatalogError as error:
            LOGGER.warning(f"ignoring model catalog {where}: {error}")
            continue
        entries.extend(found)
    return tuple(entries)


def _metrics_view(operator: Operator) -> metrics.ClusterView | None:
    snapshot = operator.latest
    if snapshot is None:
        return None
    return metrics.ClusterView(list(snapshot.deployments.values()), snapshot.pool_states,
                               operator.reservations.snapshot())  # fmt: skip


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    operator = _operator(memo)
    operator.stop.set()
    for worker in operator.workers:
        worker.cancel()
    await asyncio.gather(*operator.workers, return_exceptions=True)
    operator.executor.shutdown(wait=False, cancel_futures=True)
    operator.api.close()


@kopf.on.probe(id="reservations")
def probe(memo: kopf.Memo, **_: Any) -> int:
    return len(_operator(memo).reservations.snapshot())


# -- the work queue's consumers ----------------------------------------------------------------------------
async def _work(operator: Operator) -> None:
    while True:
        await operator.gate.opened()
        key = await operator.queue.get()
        if not operator.gate.is_open:
            # Paused while waiting for a key: it waits in the queue (marked dirty, it is queued again on done).
            operator.queue.add(key)
            operator.queue.done(key)
            continue
        try:
            await _process(operator, key)
            operator.queue.forget(key)
        except Exception as error:
            delay = operator.queue.retry(key)
            metrics.observe_error(error)
            LOGGER.warning(f"reconcile of {key} failed ({type(error).__name__}): {error}; retrying in {delay:.0f}s")
        finally:
            operator.queue.done(key)


async def _process(operator: Operator, key: str) -> None:
    """One key: take the snapshot here on the loop, do the blocking work in a thread."""
    if operator.indexes is None:
        # kopf calls handlers only once its indexes are filled; until the first call, nothing is known.
        operator.queue.add_after(key, INDEXES_PENDING_SECONDS)
        return
    snapshot = operator.indexes.snapshot()
    operator.latest = snapshot
    loop = asyncio.get_running_loop()
    if key == REEVALUATE_KEY:
        for deployment in snapshot.deployments:
            operator.fresh.add(deployment)
            operator.queue.add(deployment)
        return
    if key == POOL_STATUS_KEY:
        freed = await loop.run_in_executor(operator.executor, write_pool_status, operator.api, snapshot)
    else:
        fresh = key in operator.fresh
        operator.fresh.discard(key)
        try:
            freed = await loop.run_in_executor(operator.executor, reconcile_key, operator, key, snapshot, fresh)
        except BaseException:
            if fresh:
                operator.fresh.add(key)
            raise
    if freed and operator.seeded:
        # GPUs came free (a workload ended, a deployment went): one waiting for capacity may fit now, a pinned
        # one may have a better plan.
        operator.queue.add_after(REEVALUATE_KEY, DEBOUNCE_SECONDS)


def _seed_reservations(operator: Operator, snapshot: Snapshot) -> None:
    """After a restart, every pinned plan holds its GPUs before any deployment is re-planned."""
    with operator.reservations.planning:
        if operator.seeded:
            return
        for key, body in snapshot.deployments.items():
            plan = (body.get("status") or {}).get("plan")
            if plan and (body.get("spec") or {}).get("mode", "Apply") == "Apply":
                operator.reservations.set(key, held_gpus(plan))
        operator.seeded = True


def reconcile_key(operator: Operator, key: str, snapshot: Snapshot, fresh: bool) -> bool:
    """Reconcile one ModelDeployment from the snapshot (in a worker thread); True when it freed GPUs."""
    _seed_reservations(operator, snapshot)
    body = snapshot.deployments.get(key)
    if body is None:
        # Deleted: its children go with it (owner references); what it held is free for the others.
        held = operator.reservations.snapshot().get(key) is not None
        operator.reservations.set(key, None)
        operator.decisions.drop(key)
        operator.written.pop(key, None)
        return held
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    version = str(body["metadata"].get("resourceVersion"))
    written = operator.written.get(key)
    if written is not None and written[0] == version:
        # The index has not seen our last status write yet. Any newer version (ours, or a status someone else
        # wrote) is read as it is.
        body = {**body, "status": {**(body.get("status") or {}), **written[1]}}

    def offers() -> list[PoolOffer]:
        return offers_for_deployment(snapshot.pool_states, operator.reservations.snapshot(), key)

    stored = reconcile(operator.api, body, offers, operator.reservations, key, operator.decisions, reuse=not fresh,
                       resolver=operator.resolver)  # fmt: skip
    operator.written[key] = (version, stored)
    return False


def write_pool_status(api: client.ApiClient, snapshot: Snapshot) -> bool:
    """GPUNodePool status: its nodes and free GPUs (allocatable minus requested, on Ready uncordoned nodes).

    Returns whether GPUs came free. A failed write raises once every pool was tried, so the key is retried.
    Written by the operator itself rather than from a kopf timer: kopf guards timers with a finalizer on every
    pool, which would be a write (and a permission) the operator does not otherwise need.
    """
    states = snapshot.pool_states
    freed = False
    failed: list[tuple[str, KubeError]] = []
    for body in snapshot.gpu_pools:
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
            patch_status(api, "gpunodepools", None, name, wanted)
        except KubeError as error:
            failed.append((name, error))
    if failed:
        causes = "; ".join(f"{name}: {error}" for name, error in failed)
        raise KubeError(f"could not update the status of pools: {causes}", failed[0][1].status)
    return freed


# -- indexes: in-memory views of the cluster, filled before any handler runs ---------------------
@kopf.index(API_GROUP, API_VERSION, "modeldeployments")
async def deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {f"{namespace}/{name}": dict(body)}


@kopf.index(API_GROUP, API_VERSION, "gpunodepools")
async def gpu_pools(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(body)}


# The node and pod indexes also queue the pools' status write. They run for every event of every node and
# pod, and only while this replica acts (kopf stops the watch streams of a paused peer); a handler per event
# would do the same at the cost of a log line per pod event.
@kopf.index("", "v1", "nodes")
async def gpu_nodes(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, NodeRecord] | None:
    _operator(memo).queue.add_after(POOL_STATUS_KEY, DEBOUNCE_SECONDS)
    record = node_record(body)
    return {record.name: record} if record.allocatable_gpus else None


@kopf.index("", "v1", "pods")
async def gpu_pods(namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo,
                   **_: Any) -> dict[str, PodRecord] | None:  # fmt: skip
    gpus = requests_gpus(body)
    if not gpus:
        return None
    _operator(memo).queue.add_after(POOL_STATUS_KEY, DEBOUNCE_SECONDS)
    record = pod_record(body, gpus)
    return {f"{namespace}/{name}": record} if record else None


# -- events: each only queues keys --------------------------------------------------------------------------
@kopf.on.event(API_GROUP, API_VERSION, "gpunodepools")
async def gpu_node_pool_event(type: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """A pool added, removed or re-specified can make a better plan possible (initial listing excluded).

    Status-only changes are the operator's own pool status writes: they change no planning input, and
    re-planning every deployment on each of them would keep a busy operator re-planning all the time.
    """
    operator = _operator(memo)
    operator.indexes = Indexes.of(kwargs)
    operator.queue.add_after(POOL_STATUS_KEY, DEBOUNCE_SECONDS)
    name, generation = body["metadata"]["name"], int(body["metadata"].get("generation") or 0)
    respecified = operator.pool_generations.get(name) != generation
    if type == "DELETED":
        operator.pool_generations.pop(name, None)
    else:
        operator.pool_generations[name] = generation
    if operator.seeded and (type in ("ADDED", "DELETED") or (type == "MODIFIED" and respecified)):
        operator.queue.add_after(REEVALUATE_KEY, DEBOUNCE_SECONDS)


@kopf.on.event(API_GROUP, API_VERSION, "modeldeployments")
async def model_deployment_event(namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """Every event of a ModelDeployment (the initial listing and its deletion included) is one fresh pass."""
    operator = _operator(memo)
    operator.indexes = Indexes.of(kwargs)
    key = f"{namespace}/{name}"
    operator.fresh.add(key)
    operator.queue.add(key)


async def child_event(namespace: str | None, labels: Mapping[str, str], memo: kopf.Memo, **kwargs: Any) -> None:
    """A child changed, vanished or was edited by hand: re-converge its owner (restores drift, updates Ready)."""
    owner = labels.get(DEPLOYMENT_LABEL)
    if not owner:
        return
    operator = _operator(memo)
    operator.indexes = Indexes.of(kwargs)
    operator.queue.add(f"{namespace}/{owner}")


for _group, _version, _plural in (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
):
    kopf.on.event(_group, _version, _plural, labels=CHILD_SELECTOR, id=f"child-{_plural}")(child_event)
