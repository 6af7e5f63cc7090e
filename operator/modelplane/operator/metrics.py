"""Prometheus metrics of the operator, served on `/metrics`.

Counters and the plan-latency histogram are bumped on the reconcile path. Everything that describes the
cluster (ModelDeployments by condition, GPUs planned per pool, free GPUs per pool) is computed at scrape time
from the newest snapshot of the operator's in-memory indexes, so it can never drift from what the operator
sees and costs nothing between scrapes.
"""

import os
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelplane.api.status import held_gpus
from modelplane.kube.errors import KubeError
from modelplane.operator.pools import PoolState

PORT_ENV = "MODELPLANE_METRICS_PORT"
DEFAULT_PORT = 9090

PLANS = Counter(
    "modelplane_plans", "Plans computed for ModelDeployments, by outcome (Planned, or the reason it was not).",
    ["outcome"], registry=None,
)  # fmt: skip
PLAN_SECONDS = Histogram(
    "modelplane_plan_duration_seconds", "Time to plan and render one ModelDeployment.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0), registry=None,
)  # fmt: skip
RECONCILE_ERRORS = Counter(
    "modelplane_reconcile_errors", "Reconciles that failed and were requeued with backoff, by reason.",
    ["reason"], registry=None,
)  # fmt: skip
QUEUE_PAUSED = Gauge(
    "modelplane_work_queue_paused", "1 while kopf's peering pauses this replica (another one acts), else 0.",
    registry=None,
)  # fmt: skip


@dataclass(frozen=True)
class ClusterView:
    """What the scrape-time gauges are computed from: ModelDeployment bodies, the pools' states and the GPUs
    the operator holds for deployments (by `namespace/name`: GPUs per pool)."""

    deployments: list[dict[str, Any]]
    pools: Mapping[str, PoolState]
    reservations: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def cluster_metrics(view: ClusterView) -> list[Metric]:
    """The gauges for one scrape. Pure: tested without a cluster or an HTTP server."""
    by_condition = GaugeMetricFamily(
        "modelplane_modeldeployments", "ModelDeployments by condition type and status.", labels=["condition", "status"]
    )
    conditions: Tally[tuple[str, str]] = Tally()
    planned: Tally[str] = Tally()
    placed: Tally[str] = Tally()
    waiting = 0
    for body in view.deployments:
        status = body.get("status") or {}
        for condition in status.get("conditions") or []:
            conditions[(str(condition.get("type")), str(condition.get("status")))] += 1
        if status.get("plan") and (body.get("spec") or {}).get("mode", "Apply") == "Apply":
            for pool_name, gpus in held_gpus(status).items():
                planned[pool_name] += gpus
            for placement in status.get("placements") or []:
                placed[str(placement.get("pool"))] += int(placement.get("replicas") or 0)
            waiting += int(status.get("waitingReplicas") or 0)
    for (kind, state), count in sorted(conditions.items()):
        by_condition.add_metric([kind, state], count)

    planned_gpus = GaugeMetricFamily(
        "modelplane_planned_gpus", "GPUs held by ModelDeployment plans, per pool and location.",
        labels=["pool", "location"],
    )  # fmt: skip
    free_gpus = GaugeMetricFamily(
        "modelplane_pool_free_gpus", "Allocatable GPUs of Ready, uncordoned nodes minus those requested, per pool.",
        labels=["pool", "location"],
    )  # fmt: skip
    reserved_gpus = GaugeMetricFamily(
        "modelplane_reserved_gpus",
        "GPUs the operator holds for ModelDeployments per pool: planned on, pods or not, so no other plan takes them.",
        labels=["pool"],
    )  # fmt: skip
    reserved: Tally[str] = Tally()
    for held in view.reservations.values():
        for pool_name, gpus in held.items():
            reserved[pool_name] += gpus
    for name, pool in sorted(view.pools.items()):
        location = pool.offer_base.location.value
        free_gpus.add_metric([name, location], pool.free)
        planned_gpus.add_metric([name, location], planned.pop(name, 0))
    for name, gpus in sorted(planned.items()):
        planned_gpus.add_metric([name, "unknown"], gpus)  # a plan on a pool that has since gone away
    for name in sorted(set(view.pools) | set(reserved)):
        reserved_gpus.add_metric([name], reserved[name])
    replicas = GaugeMetricFamily(
        "modelplane_replicas", "Serving replicas placed per pool, over every ModelDeployment (bursts included).",
        labels=["pool"],
    )  # fmt: skip
    for name in sorted(set(view.pools) | set(placed)):
        replicas.add_metric([name], placed[name])
    waiting_replicas = GaugeMetricFamily(
        "modelplane_waiting_replicas", "Desired replicas no pool has free GPUs for (ReplicasPlaced=False)."
    )
    waiting_replicas.add_metric([], waiting)
    return [by_condition, planned_gpus, free_gpus, reserved_gpus, replicas, waiting_replicas]


class ClusterCollector(Collector):
    """Adapts `cluster_metrics` to the registry; `view` returns None until the indexes are filled."""

    def __init__(self, view: Callable[[], ClusterView | None]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        if view is not None:
            yield from cluster_metrics(view)


def registry(view: Callable[[], ClusterView | None]) -> CollectorRegistry:
    """Everything `/metrics` shows: the process-wide counters plus the gauges computed from `view`."""
    collected = CollectorRegistry()
    for collector in (PLANS, PLAN_SECONDS, RECONCILE_ERRORS, QUEUE_PAUSED, ClusterCollector(view)):
        collected.register(collector)
    return collected


def serve(view: Callable[[], ClusterView | None], environ: Mapping[str, str] = os.environ) -> int | None:
    """Start the `/metrics` endpoint on $MODELPLANE_METRICS_PORT (default 9090; 0 turns it off)."""
    raw = environ.get(PORT_ENV, str(DEFAULT_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{PORT_ENV}={raw!r}: expected a port number, or 0 to turn metrics off") from None
    if port == 0:
        return None
    try:
        start_http_server(port, registry=registry(view))
    except OSError as error:
        raise ValueError(f"{PORT_ENV}={port}: cannot serve metrics there ({error}); pick a free port") from None
    return port


def observe_plan(outcome: str, seconds: float) -> None:
    """One plan computed; `outcome` is the Planned condition's reason (Planned, InvalidSpec, or why not)."""
    PLANS.labels(outcome=outcome).inc()
    PLAN_SECONDS.observe(seconds)


HTTP_REASONS = {403: "Forbidden", 409: "Conflict", 422: "Invalid", 429: "TooManyRequests"}


def observe_error(error: Exception) -> None:
    """A reconcile failed and was requeued: the reason is an API failure's HTTP status in Kubernetes' own words,
    `Unreachable` when no response came, `Unexpected` for any other exception (a bug: its type is logged)."""
    status = error.status if isinstance(error, KubeError) else None
    if not isinstance(error, KubeError):
        reason = "Unexpected"
    elif status is None:
        reason = "Unreachable"
    elif status >= 500:
        reason = "ServerError"
    else:
        reason = HTTP_REASONS.get(status, f"HTTP{status}")
    RECONCILE_ERRORS.labels(reason=reason).inc()
