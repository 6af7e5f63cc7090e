"""kopf handlers: registrations only. Indexes keep cluster state; every event queues a key, nothing more.

kopf keeps the indexes current on its event loop, and the handlers are coroutines on that loop too, so each only
queues a key (a ModelDeployment's `namespace/name`, or one of the operator-wide keys of `state`). The workers
(`worker`) take keys, reconcile (`reconcile`) and write pool status (`pool_status`); `state` holds what persists.
"""

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.api.contract import DEPLOYMENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from modelplane.catalog.resolve import HubCache, ModelResolver
from modelplane.kube.client import make_api_client
from modelplane.kube.objects import CHILD_KINDS, child_key
from modelplane.operator import metrics
from modelplane.operator.catalog_watch import start_catalog_watch
from modelplane.operator.peering import PeeringGate, PeeringScope, read_blocking_peers
from modelplane.operator.pools import NodeRecord, PodRecord, node_record, pod_record, requests_gpus
from modelplane.operator.settings import configure, model_sources, prometheus_address, watched_namespaces
from modelplane.operator.state import (
    DEBOUNCE_SECONDS,
    POOL_STATUS_KEY,
    REEVALUATE_KEY,
    Indexes,
    Operator,
    child_index_name,
    operator_of,
)
from modelplane.operator.worker import WORKERS, work

CHILD_SELECTOR = {MANAGED_BY_LABEL: MANAGED_BY}
CHILD_DEBOUNCE_SECONDS = 0.5


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    try:
        sources = model_sources()
        prometheus = prometheus_address()
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from None
    scope = PeeringScope.of(settings, watched_namespaces(sys.argv))
    api = make_api_client()
    operator = Operator(api, ThreadPoolExecutor(WORKERS, thread_name_prefix="reconcile"), PeeringGate(scope))
    operator.resolver = ModelResolver((), sources.hub, HubCache(sources.hub_cache_models))
    operator.prometheus_address = prometheus
    memo["operator"] = operator
    try:
        metrics.serve(lambda: _metrics_view(operator))
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from None
    await start_catalog_watch(operator, sources)
    operator.workers = [asyncio.create_task(work(operator), name=f"worker-{n}") for n in range(WORKERS)]
    if scope is not None:
        read = functools.partial(read_blocking_peers, api, scope)
        operator.workers.append(asyncio.create_task(operator.gate.watch(lambda: read(datetime.now(UTC))),
                                                    name="peering-gate"))  # fmt: skip


def _metrics_view(operator: Operator) -> metrics.ClusterView | None:
    snapshot = operator.latest
    if snapshot is None:
        return None
    return metrics.ClusterView(list(snapshot.deployments.values()), snapshot.pool_states,
                               operator.reservations.snapshot())  # fmt: skip


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    operator = operator_of(memo)
    operator.stop.set()
    for worker in operator.workers:
        worker.cancel()
    await asyncio.gather(*operator.workers, return_exceptions=True)
    operator.executor.shutdown(wait=False, cancel_futures=True)
    operator.api.close()


@kopf.on.probe(id="reservations")
def probe(memo: kopf.Memo, **_: Any) -> int:
    return len(operator_of(memo).reservations.snapshot())


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
    operator_of(memo).queue.add_after(POOL_STATUS_KEY, DEBOUNCE_SECONDS)
    record = node_record(body)
    return {record.name: record} if record.allocatable_gpus else None


@kopf.index("", "v1", "pods")
async def gpu_pods(namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo,
                   **_: Any) -> dict[str, PodRecord] | None:  # fmt: skip
    gpus = requests_gpus(body)
    if not gpus:
        return None
    operator_of(memo).queue.add_after(POOL_STATUS_KEY, DEBOUNCE_SECONDS)
    record = pod_record(body, gpus)
    return {f"{namespace}/{name}": record} if record else None


# -- events: each only queues keys --------------------------------------------------------------------------
@kopf.on.event(API_GROUP, API_VERSION, "gpunodepools")
async def gpu_node_pool_event(type: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """A pool added, removed or re-specified can make a better plan possible (initial listing excluded).

    Status-only changes are the operator's own pool status writes: they change no planning input, and
    re-planning every deployment on each of them would keep a busy operator re-planning all the time.
    """
    operator = operator_of(memo)
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
async def model_deployment_event(type: str, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo,
                                 **kwargs: Any) -> None:  # fmt: skip
    """Every event of a ModelDeployment (the initial listing and its deletion included) is one fresh pass,
    except the event of a version this operator has reconciled already: its own status write, or a body it
    read in a pass. Such an event brings nothing new; a child's or the inventory's change queues its own pass.
    """
    operator = operator_of(memo)
    operator.indexes = Indexes.of(kwargs)
    key = f"{namespace}/{name}"
    written = operator.written.get(key)
    if type != "DELETED" and written is not None and written.covers(str(body.metadata.get("resourceVersion"))):
        return
    operator.fresh.add(key)
    operator.queue.add(key)


async def child_event(namespace: str | None, labels: Mapping[str, str], memo: kopf.Memo, **kwargs: Any) -> None:
    """A child changed, vanished or was edited by hand: re-converge its owner (restores drift, updates Ready)."""
    owner = labels.get(DEPLOYMENT_LABEL)
    if not owner:
        return
    operator = operator_of(memo)
    operator.indexes = Indexes.of(kwargs)
    # A rollout changes a Deployment's status several times a second: one pass after the burst, not one each.
    operator.queue.add_after(f"{namespace}/{owner}", CHILD_DEBOUNCE_SECONDS)


def child_names(kind: str) -> Callable[..., Awaitable[dict[str, str]]]:
    """The index of which children of `kind` exist, with the deployment each is labelled with: a reconcile looks
    for a child it no longer renders (a kind replaced, a pool no longer burst to) only where one exists, instead
    of a GET per kind on every pass."""

    async def index(namespace: str | None, name: str, labels: Mapping[str, str], **_: Any) -> dict[str, str]:
        return {child_key(kind, namespace or "", name): labels.get(DEPLOYMENT_LABEL, "")}

    return index


for _kind, _child in CHILD_KINDS.items():
    kopf.on.event(_child.group, _child.version, _child.plural, labels=CHILD_SELECTOR,
                  id=f"child-{_child.plural}")(child_event)  # fmt: skip
    kopf.index(_child.group, _child.version, _child.plural, labels=CHILD_SELECTOR,
               id=child_index_name(_kind))(child_names(_kind))  # fmt: skip
