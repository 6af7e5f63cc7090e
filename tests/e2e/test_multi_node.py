"""Multi-node replicas run by the real LeaderWorkerSet controller (sigs.k8s.io/lws, started by cluster.sh up):
it creates each group's pods through its own webhooks, the scheduler places them on simulated nodes, kwok
runs them, and the ModelDeployment's conditions follow. Nothing here writes a LeaderWorkerSet's status.

The tests share one deployment, in file order (ready, a worker deleted, a rolling update): the pool's GPUs
are held until a deployment is gone, and a namespace takes a while to go, so one deployment per test would
wait on the one before.
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import Cluster, model_deployment, wait_for
from tests.e2e.test_health import verdicts

LWS = ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets")
# Labels and variables the LWS pod webhook sets (sigs.k8s.io/lws api/leaderworkerset/v1 and
# pkg/utils/pod/pod_utils.go AddLWSVariables).
NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
TEMPLATE_HASH_LABEL = "leaderworkerset.sigs.k8s.io/template-revision-hash"
READY_TIMEOUT = 180


def wide(namespace: str, **spec: Any) -> dict[str, Any]:
    """Llama-3.1-405B in bf16 pinned to the 8×A100 pool: one replica pipelined across nodes."""
    return model_deployment("wide", namespace, model={"name": "meta-llama/Llama-3.1-405B-Instruct"},
                            quantization="bf16", maxModelLen=16384, maxConcurrency=4,
                            placement={"pools": ["a100-onprem"]}, **spec)  # fmt: skip


def group_pods(kube: Cluster, namespace: str) -> list[Any]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=f"{NAME_LABEL}=wide").items
    return sorted((pod for pod in pods if pod.metadata.deletion_timestamp is None), key=lambda p: p.metadata.name)


def running_group(kube: Cluster, namespace: str, size: int) -> list[Any] | None:
    """The group's pods once all `size` of them run and are Ready, else None."""
    pods = group_pods(kube, namespace)
    ready = [pod for pod in pods if pod.status.phase == "Running"
             and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])]  # fmt: skip
    return pods if len(pods) == size and len(ready) == size else None


def env_of(pod: Any) -> dict[str, str]:
    return {var.name: var.value for var in pod.spec.containers[0].env or [] if var.value is not None}


def ready_through_lws(kube: Cluster, namespace: str) -> tuple[dict[str, Any], list[Any]]:
    md = kube.wait_condition(namespace, "wide", "Ready", "True", timeout=READY_TIMEOUT)
    size = md["status"]["plan"]["nodesPerReplica"]
    pods = wait_for(lambda: running_group(kube, namespace, size), 60, "the group's pods Running and Ready")
    return md, pods


@pytest.fixture(scope="module")
def namespace(kube: Cluster, operator: Any) -> Iterator[str]:
    """One namespace holding the module's deployment, created Ready-bound before the first test."""
    name = f"t-multi-node-{os.getpid()}"  # a namespace of an earlier run may still be terminating
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    kube.create_md(wide(name))
    yield name
    kube.core.delete_namespace(name)


def test_multi_node_replica_is_ready_through_the_leaderworkerset_controller(kube: Cluster, namespace: str) -> None:
    md, pods = ready_through_lws(kube, namespace)
    size = md["status"]["plan"]["nodesPerReplica"]
    assert size > 1
    lws = kube.custom.get_namespaced_custom_object(*LWS[:2], namespace, LWS[2], "wide")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == size
    assert (lws["status"]["readyReplicas"], lws["status"]["updatedReplicas"]) == (1, 1)
    # The controller's webhook labelled the pods and gave them the group's address and size.
    assert sorted(int(pod.metadata.labels[WORKER_INDEX_LABEL]) for pod in pods) == list(range(size))
    leader_address = f"wide-0.wide.{namespace}"
    assert all(env_of(pod).get("LWS_LEADER_ADDRESS") == leader_address for pod in pods)
    assert all(env_of(pod).get("LWS_GROUP_SIZE") == str(size) for pod in pods)
    # Scheduled onto the pinned pool's simulated nodes.
    nodes = {pod.spec.node_name for pod in pods}
    assert {kube.core.read_node(node).metadata.labels["modelplane.dev/pool"] for node in nodes} == {"a100-onprem"}
    progressing = kube.condition(namespace, "wide", "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "Complete")
    assert verdicts(kube.md(namespace, "wide")) == ("Healthy", "Current")


def test_a_deleted_worker_pod_is_recreated_and_the_replica_is_ready_again(kube: Cluster, namespace: str) -> None:
    _, pods = ready_through_lws(kube, namespace)
    worker = next(pod for pod in pods if pod.metadata.labels[WORKER_INDEX_LABEL] != "0")
    kube.core.delete_namespaced_pod(worker.metadata.name, namespace)

    def recreated() -> list[Any] | None:
        group = running_group(kube, namespace, len(pods))
        names = {pod.metadata.name: pod.metadata.uid for pod in group or []}
        return group if worker.metadata.name in names and names[worker.metadata.name] != worker.metadata.uid else None

    wait_for(recreated, 120, f"{worker.metadata.name} recreated by the LeaderWorkerSet controller, group Ready")
    kube.wait_condition(namespace, "wide", "Ready", "True", timeout=READY_TIMEOUT)


def test_rolling_update_of_a_multi_node_deployment(kube: Cluster, namespace: str) -> None:
    _, before = ready_through_lws(kube, namespace)
    hashes = {pod.metadata.labels[TEMPLATE_HASH_LABEL] for pod in before}
    kube.patch_md(namespace, "wide", {"spec": {"env": [{"name": "ROLLOUT_MARK", "value": "2"}]}})

    def rolled() -> list[Any] | None:
        group = running_group(kube, namespace, len(before))
        updated = [pod for pod in group or [] if env_of(pod).get("ROLLOUT_MARK") == "2"]
        return group if group and len(updated) == len(group) else None

    after = wait_for(rolled, READY_TIMEOUT, "every pod of the group replaced with the new template, Ready")
    assert {pod.metadata.labels[TEMPLATE_HASH_LABEL] for pod in after}.isdisjoint(hashes)
    assert {pod.metadata.uid for pod in after}.isdisjoint({pod.metadata.uid for pod in before})
    kube.wait_condition(namespace, "wide", "Ready", "True", timeout=READY_TIMEOUT)
    progressing = kube.wait_condition(namespace, "wide", "Progressing", "False", reason="Complete")
    lws = kube.custom.get_namespaced_custom_object(*LWS[:2], namespace, LWS[2], "wide")
    assert (lws["status"]["readyReplicas"], lws["status"]["updatedReplicas"]) == (1, 1)
    assert progressing["metadata"]["generation"] > 1
