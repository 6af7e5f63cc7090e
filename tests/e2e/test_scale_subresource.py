"""The scale subresource: `kubectl scale md/NAME` and a HorizontalPodAutoscaler drive spec.replicas, and the
operator reports the replicas and the serving pods' selector the subresource reads (issue 16, item 1)."""

import json
from typing import Any

from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import Cluster, model_deployment, wait_for


def scale(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl(cluster, "get", "--raw",
                                               f"/apis/modelplane.dev/v1alpha1/namespaces/{namespace}/"
                                               f"modeldeployments/{name}/scale").stdout)  # fmt: skip
    return found


def test_kubectl_scale_resizes_the_serving_deployment_and_status_follows(
    kube: Cluster, namespace: str, operator: Any, local_cluster: LocalCluster
) -> None:
    kube.create_md(model_deployment("scaled", namespace, placement={"pools": ["l4-cloud"]}))
    kube.wait_condition(namespace, "scaled", "Ready", "True", timeout=120)
    kubectl(local_cluster, "scale", "-n", namespace, "md/scaled", "--replicas=2")

    def serving_two() -> dict[str, Any] | None:
        status = kube.md(namespace, "scaled").get("status") or {}
        return status if (status.get("replicas"), status.get("readyReplicas")) == (2, 2) else None

    status = wait_for(serving_two, 120, "two ready replicas in the ModelDeployment's status",
                      lambda: kube.md(namespace, "scaled").get("status"))  # fmt: skip
    assert kube.deployment(namespace, "scaled").spec.replicas == 2
    assert status["selector"] == "modelplane.dev/deployment=scaled"
    subresource = scale(local_cluster, namespace, "scaled")
    assert subresource["kind"] == "Scale"
    assert subresource["spec"]["replicas"] == 2
    assert subresource["status"] == {"replicas": 2, "selector": "modelplane.dev/deployment=scaled"}
    pods = kube.core.list_namespaced_pod(namespace, label_selector=status["selector"]).items
    assert len(pods) == 2, "the selector finds exactly the serving pods"
    printed = kubectl(local_cluster, "get", "-n", namespace, "md/scaled").stdout.split("\n")
    header, row = printed[0].split(), printed[1].split()
    assert (row[header.index("DESIRED")], row[header.index("AVAILABLE")]) == ("2", "2")
    # More replicas than the allowed pool holds: the plan stays, what fits is placed, the rest wait with the
    # reason, and the serving replicas are left alone.
    kubectl(local_cluster, "scale", "-n", namespace, "md/scaled", "--replicas=1000")
    waiting = kube.wait_condition(namespace, "scaled", "ReplicasPlaced", "False", reason="InsufficientCapacity")
    placed = sum(p["replicas"] for p in waiting["status"]["placements"])
    assert 2 <= placed <= 8, "the 1-GPU nodes of l4-cloud, less what other tests hold"
    assert waiting["status"]["waitingReplicas"] == 1000 - placed
    assert kube.condition(namespace, "scaled", "Planned")["status"] == "True"
    assert kube.deployment(namespace, "scaled").spec.replicas == placed


def test_a_horizontal_pod_autoscaler_reads_the_scale_subresource(
    kube: Cluster, namespace: str, operator: Any, local_cluster: LocalCluster
) -> None:
    kube.create_md(model_deployment("autoscaled", namespace))
    kube.wait_condition(namespace, "autoscaled", "Ready", "True", timeout=120)
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "autoscaled", "namespace": namespace},
           "spec": {"scaleTargetRef": {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
                                       "name": "autoscaled"},
                    "minReplicas": 2, "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}  # fmt: skip
    kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(hpa))

    def hpa_conditions() -> dict[str, dict[str, Any]]:
        live = json.loads(kubectl(local_cluster, "get", "-n", namespace, "hpa/autoscaled", "-o", "json").stdout)
        return {c["type"]: c for c in (live.get("status") or {}).get("conditions") or []}

    # The controller manager finds a CRD created moments ago when its discovery cache next refreshes (every 30 s):
    # until then AbleToScale is False with FailedGetScale.
    wait_for(lambda: hpa_conditions().get("AbleToScale", {}).get("status") == "True", 120,
             "the HPA controller to read the ModelDeployment's scale", hpa_conditions)  # fmt: skip
    # With no metrics server the HPA cannot compute CPU, but minReplicas still applies through the subresource.
    wait_for(lambda: kube.md(namespace, "autoscaled")["spec"].get("replicas") == 2, 120,
             "the HPA to raise spec.replicas to its minReplicas", lambda: hpa_conditions())  # fmt: skip
    wait_for(lambda: (kube.md(namespace, "autoscaled").get("status") or {}).get("readyReplicas") == 2, 120,
             "both replicas ready")  # fmt: skip
