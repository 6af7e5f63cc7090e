"""Faults lose nothing and duplicate nothing: SIGKILL mid-reconcile, and the API server going away."""

import os
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.conftest import CLUSTER_SCRIPT
from tests.e2e.operator_support import Cluster, OperatorProcess, model_deployment, wait_for

COUNT = 200
GONE = 20
NAMESPACES = ("fault-a", "fault-b")
MANAGED = "app.kubernetes.io/managed-by=modelplane"


def deployments_ready(kube: Cluster) -> int:
    ready = 0
    for namespace in NAMESPACES:
        for md in kube.custom.list_namespaced_custom_object("modelplane.dev", "v1alpha1", namespace,
                                                            "modeldeployments")["items"]:  # fmt: skip
            conditions = {c["type"]: c for c in (md.get("status") or {}).get("conditions", [])}
            if conditions.get("Ready", {}).get("status") == "True":
                ready += 1
    return ready


def test_sigkill_while_reconciling_loses_and_duplicates_nothing(kube: Cluster, operator: OperatorProcess) -> None:
    for namespace in NAMESPACES:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        # replicas 0: children are real objects, but 200 deployments need no GPUs in the simulated estate.
        for index in range(COUNT):
            kube.create_md(model_deployment(f"md-{index}", NAMESPACES[index % 2], replicas=0))
        # Some are deleted while the operator is busy with the rest: they must leave no children behind.
        for index in range(COUNT, COUNT + GONE):
            kube.create_md(model_deployment(f"md-{index}", NAMESPACES[index % 2], replicas=0))
            kube.delete_md(NAMESPACES[index % 2], f"md-{index}")
        wait_for(lambda: deployments_ready(kube) >= 20, 120, "the operator to be mid-way")
        operator.kill()
        assert deployments_ready(kube) < COUNT, "the operator finished before the kill: the fault tested nothing"
        operator.start()
        wait_for(lambda: deployments_ready(kube) == COUNT, 300, f"all {COUNT} deployments Ready after SIGKILL")
        for namespace in NAMESPACES:
            owned = kube.apps.list_namespaced_deployment(
                namespace, label_selector="app.kubernetes.io/managed-by=modelplane"
            )
            services = kube.core.list_namespaced_service(
                namespace, label_selector="app.kubernetes.io/managed-by=modelplane"
            )
            # Children are named after their deployment: one each, none for the deleted ones.
            expected = {f"md-{index}" for index in range(COUNT) if NAMESPACES[index % 2] == namespace}
            assert sorted(d.metadata.name for d in owned.items) == sorted(expected)
            assert sorted(s.metadata.name for s in services.items) == sorted(expected)
            mds = {md["metadata"]["name"]: md["metadata"]["uid"] for md in kube.custom.list_namespaced_custom_object(
                "modelplane.dev", "v1alpha1", namespace, "modeldeployments")["items"]}  # fmt: skip
            for child in [*owned.items, *services.items]:
                [owner] = child.metadata.owner_references
                assert mds[owner.name] == owner.uid, f"orphan {child.metadata.name}"
    finally:
        for namespace in NAMESPACES:
            kube.core.delete_namespace(namespace)
        wait_for(lambda: not any(kube.exists(partial(kube.core.read_namespace, name)) for name in NAMESPACES), 180,
                 "the fault namespaces to be deleted, so a rerun starts clean")  # fmt: skip


def test_operator_survives_an_api_server_and_etcd_restart(kube: Cluster, namespace: str, operator: OperatorProcess,
                                                 local_cluster: Any) -> None:  # fmt: skip
    pid = operator.pid
    env = {**os.environ, "MODELPLANE_CLUSTER_DIR": str(Path(local_cluster.kubeconfig).parent)}
    subprocess.run([str(CLUSTER_SCRIPT), "restart-control-plane"], check=True, env=env, capture_output=True)
    kube.create_md(model_deployment("after-restart", namespace))
    # The operator's part: it plans and applies the children as soon as the API server is back.
    kube.wait_condition(namespace, "after-restart", "Planned", "True", timeout=120)
    # Ready then waits on the rest of the control plane, which recovers on its own clock: client-go's informers
    # retry their watches with a backoff of up to 30 s (times a jitter of up to 2), and simulated nodes whose
    # leases lapsed during the outage are tainted not-ready until kwok renews them. On this machine the
    # controller-manager took up to 98 s to create the ReplicaSet of a Deployment made right after the restart.
    kube.wait_condition(namespace, "after-restart", "Ready", "True", timeout=360,
                        describe=lambda: _serving_state(kube, namespace, "after-restart"))  # fmt: skip
    assert operator.process.poll() is None, "the operator exited instead of reconnecting"
    assert operator.pid == pid


def _serving_state(kube: Cluster, namespace: str, name: str) -> dict[str, object]:
    """What a Ready that never came waited on: the Deployment's status, its pods, the nodes not Ready."""
    deployment = kube.apps.read_namespaced_deployment(name, namespace)
    pods = kube.core.list_namespaced_pod(namespace).items
    nodes = kube.core.list_node().items
    return {
        "deployment": deployment.status.to_dict() if deployment.status else None,
        "pods": {pod.metadata.name: (pod.status.phase, pod.spec.node_name) for pod in pods},
        "nodesNotReady": [
            node.metadata.name
            for node in nodes
            if not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        ],
    }
