"""Replicas beyond the plan's pool burst to the next pool in its own shape, wait when nothing is free, drain
from the last pool first, and scale to zero and back (issue 16, items 3 and 4), all driven through `/scale`,
the call `kubectl scale`, HPA and KEDA make."""

import json
from typing import Any

from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import GROUP, VERSION, Cluster, OperatorProcess, model_deployment, wait_for

ON_PREM, CLOUD = "h100-onprem", "l40s-cloud"  # 2 nodes of 8 H100; 4 nodes of 4 L40S (examples/pools/hybrid.yaml)
SEVENTY_B: dict[str, Any] = {
    "model": {"name": "meta-llama/Llama-3.1-70B-Instruct"},
    "maxModelLen": 8192,
    "placement": {"pools": [ON_PREM, CLOUD], "locality": "prefer-on-prem"},
}
L4 = "l4-cloud"  # 8 nodes of 1 L4


def _free(kube: Cluster, pool: str) -> int:
    status = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", pool).get("status") or {}
    return int(status.get("freeGpus", -1))


def _wait_pools_free(kube: Cluster, operator: OperatorProcess, pools: dict[str, int]) -> None:
    """Earlier tests' deployments go with their namespaces: wait until none holds a pod or a plan here."""
    wait_for(lambda: all(_free(kube, pool) == gpus and operator.reserved_gpus(pool) == 0 for pool, gpus in
                         pools.items()), 180, f"{sorted(pools)} to be free of other tests' pods and plans")  # fmt: skip


def _scale(cluster: LocalCluster, namespace: str, name: str, replicas: int) -> None:
    kubectl(cluster, "scale", "-n", namespace, f"md/{name}", f"--replicas={replicas}")


def _placed(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    md = kube.md(namespace, name)
    status = md.get("status") or {}
    return {
        "generation": md["metadata"]["generation"],
        "observed": status.get("observedGeneration"),
        "placements": [
            (p["pool"], p["tensorParallel"], p["replicas"], p["workload"]) for p in status.get("placements") or []
        ],
        "waiting": status.get("waitingReplicas"),
        "ready": status.get("readyReplicas"),
        "conditions": {c["type"]: (c["status"], c["reason"], c["message"]) for c in status.get("conditions") or []},
    }


def _settles_to(kube: Cluster, namespace: str, name: str, placements: list[tuple[str, int, int, str]],
                waiting: int, ready: int) -> dict[str, Any]:  # fmt: skip
    def check() -> dict[str, Any] | None:
        seen = _placed(kube, namespace, name)
        done = (seen["observed"] == seen["generation"] and seen["placements"] == placements
                and seen["waiting"] == waiting and seen["ready"] == ready)  # fmt: skip
        return seen if done else None

    return wait_for(check, 180, f"{name}: placements {placements}, {waiting} waiting, {ready} ready",
                    lambda: _placed(kube, namespace, name))  # fmt: skip


def _pods(kube: Cluster, namespace: str, selector: str) -> list[Any]:
    return list(kube.core.list_namespaced_pod(namespace, label_selector=selector).items)


def test_scale_fills_on_prem_bursts_to_cloud_waits_drains_cloud_first_and_scales_to_zero(
    kube: Cluster, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    _wait_pools_free(kube, operator, {ON_PREM: 16, CLOUD: 16})
    kube.create_md(model_deployment("chat", namespace, **SEVENTY_B))
    kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
    home = "Deployment/chat"

    # 8 replicas of TP2 fill the 16 on-prem H100s.
    _scale(local_cluster, namespace, "chat", 8)
    _settles_to(kube, namespace, "chat", [(ON_PREM, 2, 8, home)], waiting=0, ready=8)

    # Two more burst to the cloud, each in the cloud pool's own shape: TP4 over an L40S node's 4 GPUs.
    _scale(local_cluster, namespace, "chat", 10)
    burst = _settles_to(kube, namespace, "chat", [(ON_PREM, 2, 8, home), (CLOUD, 4, 2, "Deployment/chat-l40s-cloud")],
                        waiting=0, ready=10)  # fmt: skip
    assert burst["conditions"]["ReplicasPlaced"][:2] == ("True", "AllReplicasPlaced")
    cloud = kube.deployment(namespace, "chat-l40s-cloud")
    container = cloud.spec.template.spec.containers[0]
    assert container.resources.limits["nvidia.com/gpu"] == "4"
    assert "--tensor-parallel-size 4" in " ".join(container.args), "the cloud pool's shape"
    assert kube.deployment(namespace, "chat").spec.replicas == 8, "no running on-prem replica moved"
    assert {
        pod.spec.node_selector["modelplane.dev/pool"]
        for pod in _pods(kube, namespace, "modelplane.dev/deployment=chat")
    } == {ON_PREM, CLOUD}
    endpoints = kube.core.read_namespaced_endpoints("chat", namespace)
    addresses = [address for subset in endpoints.subsets or [] for address in subset.addresses or []]
    assert len(addresses) == 10, "the Service routes to the replicas on both pools"
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=chat").items
    assert any(event.reason == "Burst" for event in events)

    # Beyond both pools: 12 fit (8 + 4), two wait and are not created, so no pod hangs Pending.
    _scale(local_cluster, namespace, "chat", 14)
    waiting = _settles_to(
        kube,
        namespace,
        "chat",
        [(ON_PREM, 2, 8, home), (CLOUD, 4, 4, "Deployment/chat-l40s-cloud")],
        waiting=2,
        ready=12,
    )
    status, reason, message = waiting["conditions"]["ReplicasPlaced"]
    assert (status, reason) == ("False", "InsufficientCapacity")
    assert message.startswith("12 of 14 replica(s) placed")
    assert waiting["conditions"]["Ready"][0] == "True", "the placed replicas serve"
    pods = _pods(kube, namespace, "modelplane.dev/deployment=chat")
    assert len(pods) == 12
    assert all(pod.spec.node_name for pod in pods), "none Pending for want of a GPU"
    assert any(
        event.reason == "ReplicasWaiting"
        for event in kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=chat").items
    )

    # Scale-in drains the cloud first.
    _scale(local_cluster, namespace, "chat", 9)
    _settles_to(kube, namespace, "chat", [(ON_PREM, 2, 8, home), (CLOUD, 4, 1, "Deployment/chat-l40s-cloud")],
                waiting=0, ready=9)  # fmt: skip
    _scale(local_cluster, namespace, "chat", 7)
    _settles_to(kube, namespace, "chat", [(ON_PREM, 2, 7, home)], waiting=0, ready=7)
    wait_for(lambda: not kube.exists(lambda: kube.deployment(namespace, "chat-l40s-cloud")), 60,
             "the cloud workload to go once no replica is placed there")  # fmt: skip
    wait_for(lambda: operator.reserved_gpus(CLOUD) == 0 and operator.reserved_gpus(ON_PREM) == 14, 60,
             "the reservation to follow the placement")  # fmt: skip

    # Zero keeps the plan and releases the GPUs; scaling up re-checks capacity and places again.
    _scale(local_cluster, namespace, "chat", 0)
    zero = _settles_to(kube, namespace, "chat", [], waiting=0, ready=0)
    assert zero["conditions"]["Ready"][:2] == ("True", "ScaledToZero")
    assert kube.md(namespace, "chat")["status"]["plan"]["pool"] == ON_PREM, "the plan is kept"
    wait_for(lambda: operator.reserved_gpus(ON_PREM) == 0, 60, "zero replicas to release their GPUs")
    wait_for(lambda: not _pods(kube, namespace, "modelplane.dev/deployment=chat"), 60, "the pods to go")
    _scale(local_cluster, namespace, "chat", 1)
    _settles_to(kube, namespace, "chat", [(ON_PREM, 2, 1, home)], waiting=0, ready=1)


def test_two_deployments_scaling_at_once_never_share_gpus(
    kube: Cluster, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    _wait_pools_free(kube, operator, {L4: 8})
    for name in ("left", "right"):
        kube.create_md(model_deployment(name, namespace, placement={"pools": [L4]}))
    for name in ("left", "right"):
        kube.wait_condition(namespace, name, "Ready", "True", timeout=120)
    patch = json.dumps({"spec": {"replicas": 6}})
    for name in ("left", "right"):  # as fast as two autoscalers writing /scale in the same second
        kubectl(local_cluster, "patch", "-n", namespace, f"md/{name}", "--subresource=scale", "--type=merge",
                "-p", patch)  # fmt: skip

    def settled() -> list[dict[str, Any]] | None:
        seen = [_placed(kube, namespace, name) for name in ("left", "right")]
        done = all(s["observed"] == s["generation"] and s["waiting"] is not None for s in seen)
        placed = sum(p[2] for s in seen for p in s["placements"])
        return seen if done and placed == 8 else None

    seen = wait_for(settled, 120, "both deployments placed over the 8 L4s",
                    lambda: [_placed(kube, namespace, name) for name in ("left", "right")])  # fmt: skip
    assert sum(s["waiting"] for s in seen) == 4, "12 wanted, 8 GPUs: 4 wait"
    assert operator.reserved_gpus(L4) == 8
    pods = _pods(kube, namespace, "app.kubernetes.io/part-of=modelplane")
    wait_for(lambda: len(_pods(kube, namespace, "app.kubernetes.io/part-of=modelplane")) == 8
             and all(pod.spec.node_name for pod in _pods(kube, namespace, "app.kubernetes.io/part-of=modelplane")),
             60, "exactly 8 serving pods, all scheduled")  # fmt: skip
    nodes = [pod.spec.node_name for pod in _pods(kube, namespace, "app.kubernetes.io/part-of=modelplane")]
    assert len(set(nodes)) == 8, f"one pod per 1-GPU node, no GPU given twice: {sorted(nodes)} ({len(pods)})"


def test_an_operator_restarted_mid_burst_loses_and_duplicates_nothing(
    kube: Cluster, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    _wait_pools_free(kube, operator, {ON_PREM: 16, CLOUD: 16})
    kube.create_md(model_deployment("chat", namespace, **SEVENTY_B))
    kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
    operator.kill()
    _scale(local_cluster, namespace, "chat", 10)  # written while no operator runs
    operator.start()
    placements = [(ON_PREM, 2, 8, "Deployment/chat"), (CLOUD, 4, 2, "Deployment/chat-l40s-cloud")]
    before = _settles_to(kube, namespace, "chat", placements, waiting=0, ready=10)
    workloads = {name: kube.deployment(namespace, name).metadata for name in ("chat", "chat-l40s-cloud")}
    operator.kill()
    operator.start()
    wait_for(lambda: operator.reserved_gpus(ON_PREM) == 16 and operator.reserved_gpus(CLOUD) == 8, 60,
             "the restarted operator to hold the burst's GPUs again")  # fmt: skip
    after = _settles_to(kube, namespace, "chat", placements, waiting=0, ready=10)
    assert after["conditions"] == before["conditions"]
    for name, metadata in workloads.items():
        again = kube.deployment(namespace, name).metadata
        assert (again.uid, again.generation) == (metadata.uid, metadata.generation), f"{name} recreated or rewritten"
    assert len(_pods(kube, namespace, "modelplane.dev/deployment=chat")) == 10
