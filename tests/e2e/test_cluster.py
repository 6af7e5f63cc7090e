"""The local control plane is real: the scheduler binds GPU pods to simulated nodes, kwok runs them,
the garbage collector collects, and the API server validates."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from modelplane.api.contract import POOL_LABEL
from modelplane.catalog.gpus import get_gpu
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import render_deployment
from tests.e2e.conftest import POOLS_FILE, LocalCluster, kubectl
from tests.e2e.operator_support import Cluster, wait_for
from tests.support import deployment as model_deployment
from tests.support import pool

H100_SELECTOR = {"modelplane.dev/pool": "h100-onprem"}
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
AMD_TOLERATION = [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
POOLS = [pool for pool in yaml.safe_load_all(Path(POOLS_FILE).read_text()) if pool]


def gpu_deployment(name: str, gpus: int, selector: dict[str, str] = H100_SELECTOR,
                   tolerations: list[dict[str, str]] = GPU_TOLERATION, resource: str = "nvidia.com/gpu",
                   ) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": selector,
                    "tolerations": tolerations,
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.invalid/server:1",
                            "resources": {"limits": {resource: str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


@pytest.mark.parametrize("pool", POOLS, ids=[pool["metadata"]["name"] for pool in POOLS])
def test_every_pool_has_ready_nodes_labelled_from_the_catalog(kube: Cluster, pool: dict[str, Any]) -> None:
    spec = pool["spec"]
    gpu = get_gpu(spec["gpu"])
    gpus = str(spec["gpusPerNode"])
    nodes = kube.core.list_node(label_selector=f"{POOL_LABEL}={pool['metadata']['name']}").items
    assert len(nodes) == spec["nodes"]
    for node in nodes:
        labels = node.metadata.labels
        assert spec.get("nodeSelector", {}).items() <= labels.items()
        assert node.status.allocatable[gpu.resource_name] == gpus
        assert node.status.capacity[gpu.resource_name] == gpus
        assert [(t.key, t.effect) for t in node.spec.taints] == [(gpu.resource_name, "NoSchedule")]
        assert {t["key"] for t in spec["tolerations"]} == {gpu.resource_name}
        if gpu.vendor == "amd":
            product = gpu.product_labels[0]
            assert labels["amd.com/gpu.product-name"] == labels["beta.amd.com/gpu.product-name"] == product
            assert labels[f"beta.amd.com/gpu.product-name.{product}"] == gpus
        else:
            assert labels["nvidia.com/gpu.product"] == gpu.product_labels[0]
            assert labels["nvidia.com/gpu.count"] == gpus
            assert int(labels["nvidia.com/gpu.memory"]) * 1024 * 1024 == gpu.memory_bytes
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_gpu_pod_is_scheduled_on_a_simulated_h100_and_becomes_available(kube: Cluster, namespace: str) -> None:
    kube.apps.create_namespaced_deployment(namespace, gpu_deployment("fits", 4))
    wait_for(lambda: (kube.deployment(namespace, "fits").status.available_replicas or 0) >= 1, 60, "Available")
    [pod] = kube.core.list_namespaced_pod(namespace, label_selector="app=fits").items
    node = kube.core.read_node(pod.spec.node_name)
    assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert node.metadata.labels["modelplane.dev/pool"] == "h100-onprem"
    assert pod.status.phase == "Running"


def test_amd_gpu_pod_is_scheduled_on_a_simulated_mi300x(kube: Cluster, namespace: str) -> None:
    body = gpu_deployment("amd", 8, selector={"modelplane.dev/pool": "mi300x-cloud"}, tolerations=AMD_TOLERATION,
                          resource="amd.com/gpu")  # fmt: skip
    kube.apps.create_namespaced_deployment(namespace, body)
    wait_for(lambda: (kube.deployment(namespace, "amd").status.available_replicas or 0) >= 1, 60, "Available")
    [pod] = kube.core.list_namespaced_pod(namespace, label_selector="app=amd").items
    labels = kube.core.read_node(pod.spec.node_name).metadata.labels
    assert labels["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
    assert labels["amd.com/gpu.vram"] == "192G"


def test_too_many_gpus_stays_pending_unschedulable(kube: Cluster, namespace: str) -> None:
    kube.apps.create_namespaced_deployment(namespace, gpu_deployment("too-big", 9))

    def unschedulable() -> bool:
        pods = kube.core.list_namespaced_pod(namespace, label_selector="app=too-big").items
        return bool(pods) and any(
            condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable"
            for condition in pods[0].status.conditions or []
        )

    wait_for(unschedulable, 60, "PodScheduled=False/Unschedulable")
    [pod] = kube.core.list_namespaced_pod(namespace, label_selector="app=too-big").items
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_garbage_collector_removes_owned_objects(kube: Cluster, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="owner")))  # fmt: skip
    body = gpu_deployment("owned", 1)
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    ]
    kube.apps.create_namespaced_deployment(namespace, body)
    wait_for(lambda: kube.core.list_namespaced_pod(namespace, label_selector="app=owned").items, 60, "owned pod")
    kube.core.delete_namespaced_config_map("owner", namespace)
    wait_for(lambda: not kube.exists(lambda: kube.deployment(namespace, "owned")), 60, "Deployment collected")
    wait_for(lambda: not kube.core.list_namespaced_pod(namespace, label_selector="app=owned").items, 60,
             "pods collected")  # fmt: skip


def test_server_side_dry_run_accepts_rendered_and_rejects_invalid(local_cluster: LocalCluster, namespace: str) -> None:
    md = model_deployment(namespace=namespace, maxModelLen=8192)
    plan = plan_deployment(md, offers_for([pool("h100-onprem", "H100-SXM-80GB", location="on-prem")])).plan
    assert plan is not None
    rendered = next(obj for obj in render_deployment(md, plan) if obj["kind"] == "Deployment")
    accepted = kubectl(local_cluster, "apply", "--dry-run=server", "-f", "-", input=json.dumps(rendered), check=False)
    assert accepted.returncode == 0, accepted.stderr
    invalid = json.loads(json.dumps(rendered))
    invalid["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "-1"
    rejected = kubectl(local_cluster, "apply", "--dry-run=server", "-f", "-", input=json.dumps(invalid), check=False)
    assert rejected.returncode != 0
    assert "nvidia.com/gpu" in rejected.stderr
