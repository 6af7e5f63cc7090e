"""The work queue's consumers: take a key, snapshot kopf's indexes on the loop, reconcile in a thread.

Any exception requeues its key with backoff and is counted in `modelplane_reconcile_errors_total`; the queue never
hands one key to two workers at once. GPU reservations are decided inside the reconcile, under one lock.
"""

import asyncio
import logging

from modelplane.api.status import held_gpus
from modelplane.operator import metrics
from modelplane.operator.pool_status import write_pool_status
from modelplane.operator.pools import offers_for_deployment
from modelplane.operator.reconcile import reconcile
from modelplane.operator.state import (
    DEBOUNCE_SECONDS,
    POOL_STATUS_KEY,
    REEVALUATE_KEY,
    Operator,
    Snapshot,
    WrittenStatus,
)
from modelplane.planning.inventory import PoolOffer

LOGGER = logging.getLogger("modelplane.operator")
WORKERS = 4
INDEXES_PENDING_SECONDS = 1.0
NOTHING_WRITTEN = WrittenStatus((), {})


async def work(operator: Operator) -> None:
    """One worker: take a key when this replica acts, reconcile it, requeue it with backoff on any exception."""
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
    """After a restart, every pinned plan's placement holds its GPUs before any deployment is re-planned."""
    with operator.reservations.planning:
        if operator.seeded:
            return
        for key, body in snapshot.deployments.items():
            status = body.get("status") or {}
            if status.get("plan") and (body.get("spec") or {}).get("mode", "Apply") == "Apply":
                operator.reservations.set(key, held_gpus(status))
        operator.seeded = True


def reconcile_key(operator: Operator, key: str, snapshot: Snapshot, fresh: bool) -> bool:
    """Reconcile one ModelDeployment from the snapshot (in a worker thread); True when it freed GPUs."""
    _seed_reservations(operator, snapshot)
    body = snapshot.deployments.get(key)
    if body is None:
        # Deleted: its children go with it (owner references); what it held is free for the others.
        held = bool(operator.reservations.snapshot().get(key))
        operator.reservations.set(key, None)
        operator.decisions.drop(key)
        operator.written.pop(key, None)
        return held
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    version = str(body["metadata"].get("resourceVersion"))
    written = operator.written.get(key, NOTHING_WRITTEN)
    if written.covers(version):
        # The index has not seen our last status write yet; someone else's newer status is read as it is.
        body = {**body, "status": {**(body.get("status") or {}), **written.status}}

    def offers() -> list[PoolOffer]:
        return offers_for_deployment(snapshot.pool_states, operator.reservations.snapshot(), key)

    stored = reconcile(operator.api, body, offers, operator.reservations, key, operator.decisions,
                       snapshot.children, reuse=not fresh, resolver=operator.resolver,
                       prometheus_address=operator.prometheus_address)  # fmt: skip
    operator.written[key] = written.after(version, stored.resource_version, stored.status)
    return False
