"""The operator's Prometheus metrics: scrape-time gauges from cluster state, plan and error counters."""

import socket
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelplane.kube.errors import KubeError, TransientKubeError
from modelplane.operator import metrics
from modelplane.operator.pools import NodeRecord, PodRecord, pool_states
from modelplane.planning.inventory import offer_from_pool
from tests.support import pool

H100 = {"modelplane.dev/pool": "h100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def deployment(name: str, conditions: dict[str, str], plan: tuple[str, int, int] | None = None,
               mode: str = "Apply") -> dict[str, Any]:  # fmt: skip
    status: dict[str, Any] = {"conditions": [{"type": kind, "status": value} for kind, value in conditions.items()]}
    if plan is not None:
        pool_name, gpus, replicas = plan
        status["plan"] = {"pool": pool_name, "gpusPerReplica": gpus, "replicas": replicas}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"mode": mode}, "status": status}


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def view() -> metrics.ClusterView:
    declared = pool("h100", "H100-SXM-80GB", 8, 2, location="on-prem", nodeSelector={"modelplane.dev/pool": "h100"})
    nodes = [NodeRecord("a", H100, 8, True), NodeRecord("b", H100, 8, True), NodeRecord("c", H100, 8, False)]
    states = pool_states([(declared, offer_from_pool(declared))], nodes, [PodRecord("a", 4, "ns/one")])
    deployments = [
        deployment("one", {"Ready": "True", "Planned": "True"}, ("h100", 4, 1)),
        deployment("two", {"Ready": "False", "Planned": "True"}, ("h100", 2, 3)),
        deployment("review", {"Ready": "True", "Planned": "True"}, ("h100", 8, 1), mode="PlanOnly"),
        deployment("bad", {"Planned": "False"}),
        deployment("gone-pool", {"Ready": "True", "Planned": "True"}, ("retired", 1, 2)),
    ]
    reservations = {"ns/one": {"h100": 4}, "ns/two": {"h100": 6}, "ns/burst": {"elsewhere": 2}}
    return metrics.ClusterView(deployments, states, reservations)


def test_gauges_count_deployments_by_condition_and_gpus_per_pool() -> None:
    found = samples(metrics.registry(view))
    assert found[("modelplane_modeldeployments", (("condition", "Ready"), ("status", "True")))] == 3
    assert found[("modelplane_modeldeployments", (("condition", "Ready"), ("status", "False")))] == 1
    assert found[("modelplane_modeldeployments", (("condition", "Planned"), ("status", "False")))] == 1
    # 4×1 + 2×3 on h100; the PlanOnly deployment holds nothing.
    assert found[("modelplane_planned_gpus", (("location", "on-prem"), ("pool", "h100")))] == 10
    assert found[("modelplane_planned_gpus", (("location", "unknown"), ("pool", "retired")))] == 2
    # 16 allocatable on the two ready nodes, 4 requested by a pod.
    assert found[("modelplane_pool_free_gpus", (("location", "on-prem"), ("pool", "h100")))] == 12
    assert found[("modelplane_reserved_gpus", (("pool", "h100"),))] == 10
    assert found[("modelplane_reserved_gpus", (("pool", "elsewhere"),))] == 2


def test_replicas_are_counted_per_pool_they_are_placed_on_bursts_included() -> None:
    burst = deployment("burst", {"Ready": "True", "Planned": "True"}, ("h100", 2, 10))
    burst["status"].update(
        waitingReplicas=3,
        placements=[
            {"pool": "h100", "gpusPerReplica": 2, "replicas": 8},
            {"pool": "l40s", "gpusPerReplica": 4, "replicas": 2},
        ],
    )
    found = samples(metrics.registry(lambda: metrics.ClusterView([burst], view().pools)))
    assert found[("modelplane_replicas", (("pool", "h100"),))] == 8
    assert found[("modelplane_replicas", (("pool", "l40s"),))] == 2
    assert found[("modelplane_waiting_replicas", ())] == 3
    assert found[("modelplane_planned_gpus", (("location", "on-prem"), ("pool", "h100")))] == 16
    assert found[("modelplane_planned_gpus", (("location", "unknown"), ("pool", "l40s")))] == 8


def test_nothing_is_reported_before_the_indexes_are_filled() -> None:
    found = samples(metrics.registry(lambda: None))
    assert not [name for name, _ in found if name.startswith(("modelplane_modeldeployments", "modelplane_pool"))]


@pytest.mark.parametrize(("error", "reason"), [
    (TransientKubeError("timed out"), "Unreachable"), (KubeError("", 403), "Forbidden"),
    (KubeError("", 409), "Conflict"), (KubeError("", 422), "Invalid"), (KubeError("", 429), "TooManyRequests"),
    (KubeError("", 503), "ServerError"), (KubeError("", 400), "HTTP400"),
    (RuntimeError("dictionary changed size during iteration"), "Unexpected"),
])  # fmt: skip
def test_reconcile_errors_are_counted_by_reason(error: Exception, reason: str) -> None:
    key = ("modelplane_reconcile_errors_total", (("reason", reason),))
    before = samples(metrics.registry(lambda: None)).get(key, 0)
    metrics.observe_error(error)
    assert samples(metrics.registry(lambda: None))[key] == before + 1


def test_plans_are_counted_by_outcome_and_timed() -> None:
    found = samples(metrics.registry(view))
    planned = found.get(("modelplane_plans_total", (("outcome", "Planned"),)), 0)
    timed = found.get(("modelplane_plan_duration_seconds_count", ()), 0)
    metrics.observe_plan("Planned", 0.003)
    metrics.observe_plan("InsufficientMemory", 0.002)
    found = samples(metrics.registry(view))
    assert found[("modelplane_plans_total", (("outcome", "Planned"),))] == planned + 1
    assert found[("modelplane_plans_total", (("outcome", "InsufficientMemory"),))] >= 1
    assert found[("modelplane_plan_duration_seconds_count", ())] == timed + 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_are_served_over_http_on_the_configured_port() -> None:
    port = free_port()
    assert metrics.serve(view, {metrics.PORT_ENV: str(port)}) == port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'modelplane_pool_free_gpus{location="on-prem",pool="h100"} 12.0' in text
    with pytest.raises(ValueError, match=r"MODELPLANE_METRICS_PORT=.*pick a free port"):
        metrics.serve(view, {metrics.PORT_ENV: str(port)})


def test_metrics_can_be_turned_off() -> None:
    assert metrics.serve(view, {metrics.PORT_ENV: "0"}) is None


def test_a_malformed_port_names_the_variable() -> None:
    with pytest.raises(ValueError, match="MODELPLANE_METRICS_PORT='ninety'"):
        metrics.serve(view, {metrics.PORT_ENV: "ninety"})
