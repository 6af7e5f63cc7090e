"""Whether this replica may work its queue: it stops while kopf's peering pauses the replica, as kopf stops its own.

kopf pauses a replica when its peering object lists a live peer of higher priority, or one of the same priority
(then every such replica pauses), and disconnects its watch streams (kopf/_core/engines/peering.py,
process_peering_event, kopf 1.45). No new events then reach our handlers, but keys already queued or due later
(retries, debounced pool passes) would still be worked, from indexes kopf no longer updates, beside the replica
that now acts. kopf does not expose its pause state to handlers, so the gate reads the same peering objects and
applies the same rule. Peers are the `status` of a `ClusterKopfPeering` (cluster-wide) or of a `KopfPeering` in
each watched namespace: `{identity: {priority, lifetime, lastseen}}`, written by every replica.
"""

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes import client

from modelplane.kube.errors import GoneError, KubeError
from modelplane.kube.objects import request
from modelplane.operator import metrics

LOGGER = logging.getLogger("modelplane.operator")
IDENTITY_ENV = "POD_ID"
"""kopf takes a replica's peering identity from $POD_ID when set (kopf/_core/engines/peering.py, detect_own_id)."""
POLL_SECONDS = 2.0
KOPF_GROUP = "kopf.dev/v1"
DEFAULT_LIFETIME_SECONDS = 60


def _lastseen(info: Mapping[str, Any], now: datetime) -> datetime:
    raw = info.get("lastseen")
    if not isinstance(raw, str):
        return now
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def blocking_peers(peers: Mapping[str, Any], identity: str, priority: int, now: datetime) -> list[str]:
    """The live peers other than `identity` that pause it: those of higher or equal priority, as kopf decides."""
    blocking = []
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        lifetime = timedelta(seconds=int(info.get("lifetime", DEFAULT_LIFETIME_SECONDS)))
        alive = _lastseen(info, now) + lifetime > now
        if alive and int(info.get("priority", 0)) >= priority:
            blocking.append(peer)
    return sorted(blocking)


@dataclass(frozen=True)
class PeeringScope:
    """Which peering objects this replica takes part in, from kopf's settings and the watched namespaces."""

    name: str
    priority: int
    identity: str
    clusterwide: bool
    mandatory: bool
    namespaces: Sequence[str] = ()

    @classmethod
    def of(cls, settings: kopf.OperatorSettings, namespaces: Sequence[str]) -> "PeeringScope | None":
        """None when the replica runs standalone: nothing can pause it."""
        identity = os.environ.get(IDENTITY_ENV)
        if settings.peering.standalone or identity is None:
            return None
        return cls(settings.peering.name, settings.peering.priority, identity, settings.peering.clusterwide,
                   settings.peering.mandatory, tuple(namespaces))  # fmt: skip

    def paths(self) -> list[str]:
        if self.clusterwide:
            return [f"/apis/{KOPF_GROUP}/clusterkopfpeerings/{self.name}"]
        return [f"/apis/{KOPF_GROUP}/namespaces/{namespace}/kopfpeerings/{self.name}" for namespace in self.namespaces]


def read_blocking_peers(api: client.ApiClient, scope: PeeringScope, now: datetime) -> list[str] | None:
    """The peers that pause this replica now, from the live peering objects; None when they cannot be read.

    A missing peering object pauses a replica whose peering is mandatory (kopf waits for it), and none other.
    """
    blocking: list[str] = []
    for path in scope.paths():
        try:
            found = request(api, f"get peering {path}", "GET", path)
        except GoneError:
            if scope.mandatory:
                blocking.append(f"(no peering object at {path})")
            continue
        except KubeError:
            return None
        blocking += blocking_peers((found or {}).get("status") or {}, scope.identity, scope.priority, now)
    return blocking


@dataclass
class PeeringGate:
    """Open while this replica acts. Workers wait on it before taking a key; `watch` keeps it current."""

    scope: PeeringScope | None
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.scope is None:
            self._open.set()
        metrics.QUEUE_PAUSED.set(0 if self.is_open else 1)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def opened(self) -> None:
        await self._open.wait()

    def update(self, blocking: list[str] | None) -> None:
        """Open or close on the peers just read; an unreadable state keeps the last one (kopf keeps its own)."""
        if blocking is None:
            return
        if blocking and self.is_open:
            LOGGER.info(f"work queue paused: peering gives way to {', '.join(blocking)}")
            self._open.clear()
        elif not blocking and not self.is_open:
            LOGGER.info("work queue resumed: no peer outranks this replica")
            self._open.set()
        metrics.QUEUE_PAUSED.set(0 if self.is_open else 1)

    async def watch(self, read: Callable[[], list[str] | None]) -> None:
        """Poll the peering objects (in a thread: `read` blocks) for as long as the operator runs."""
        if self.scope is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            try:
                blocking = await loop.run_in_executor(None, read)
            except (ValueError, TypeError) as error:  # a peer record kopf could not have written
                LOGGER.warning(f"cannot read the peering objects ({error}); keeping the queue as it is")
                blocking = None
            self.update(blocking)
            await asyncio.sleep(POLL_SECONDS)
