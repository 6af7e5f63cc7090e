"""spec.autoscaling on the local control plane: the operator applies KEDA's ScaledObject, which the API server
validates against KEDA's own CRD (github.com/kedacore/keda/v2, hack/keda-crd.sh), and reports it in the
Autoscaling condition; without KEDA's API the rest still serves and the condition says why (issue 16, item 2)."""

import json
from typing import Any

from kubernetes.client.rest import ApiException

from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import Cluster, OperatorProcess, PrometheusStandIn, model_deployment, wait_for
from tests.tools import module_crd

AUTOSCALING: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 4, "metric": "requests-waiting",
                               "scaleToZero": {"idlePeriod": "10m"}}  # fmt: skip
SCALED_OBJECTS = ("keda.sh", "v1alpha1", "scaledobjects")


def _scaled_object(kube: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = kube.custom.get_namespaced_custom_object(*SCALED_OBJECTS[:2], namespace,
                                                                         SCALED_OBJECTS[2], name)  # fmt: skip
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def test_autoscaling_applies_a_scaled_object_the_api_server_accepts(
    kube: Cluster, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    kube.create_md(model_deployment("chat", namespace, placement={"pools": ["l4-cloud"]}, autoscaling=AUTOSCALING))
    applied = kube.wait_condition(namespace, "chat", "Autoscaling", "True", timeout=120, reason="ScaledObjectApplied")
    kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
    scaled = wait_for(lambda: _scaled_object(kube, namespace, "chat"), 30, "the ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
                                      "name": "chat"}  # fmt: skip
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["idleReplicaCount"], spec["cooldownPeriod"]) == (
        1, 4, 0, 600)  # fmt: skip
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == (
        f'sum(vllm:num_requests_waiting{{namespace="{namespace}",modelplane_dev_deployment="chat"}})'
    )
    assert scaled["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    message = next(c["message"] for c in applied["status"]["conditions"] if c["type"] == "Autoscaling")
    assert "1-4 replicas, to 0 after 600s idle" in message

    # A hand edit is put back, like any child's.
    kube.custom.patch_namespaced_custom_object(*SCALED_OBJECTS[:2], namespace, SCALED_OBJECTS[2], "chat",
                                               {"spec": {"maxReplicaCount": 40}})  # fmt: skip
    wait_for(lambda: (_scaled_object(kube, namespace, "chat") or {})["spec"]["maxReplicaCount"] == 4, 60,
             "the ScaledObject's drift to be restored")  # fmt: skip

    # The API server holds KEDA's own schema: a ScaledObject without a target is refused there.
    broken = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
              "metadata": {"name": "broken", "namespace": namespace}, "spec": {"triggers": []}}  # fmt: skip
    refused = kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(broken), check=False)
    assert refused.returncode != 0
    assert "scaleTargetRef" in refused.stderr

    # Autoscaling removed: the ScaledObject goes, and the replicas stay where they are.
    kube.patch_md(namespace, "chat", {"spec": {"autoscaling": None}})
    wait_for(lambda: _scaled_object(kube, namespace, "chat") is None, 60, "the ScaledObject to be deleted")
    md = kube.wait_condition(namespace, "chat", "Ready", "True", timeout=60)
    assert "Autoscaling" not in {c["type"] for c in md["status"]["conditions"]}


def test_without_keda_autoscaling_is_refused_by_a_condition_and_the_rest_serves(
    kube: Cluster, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    crd = module_crd("keda-crd.sh")
    kubectl(local_cluster, "delete", "crd", "scaledobjects.keda.sh", "--wait=true")
    try:
        kube.create_md(model_deployment("chat", namespace, placement={"pools": ["l4-cloud"]},
                                        autoscaling=AUTOSCALING))  # fmt: skip
        md = kube.wait_condition(namespace, "chat", "Autoscaling", "False", timeout=120, reason="KEDANotInstalled")
        message = next(c["message"] for c in md["status"]["conditions"] if c["type"] == "Autoscaling")
        assert "install KEDA" in message
        assert "remove spec.autoscaling" in message
        kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
        assert kube.deployment(namespace, "chat").spec.replicas == 1
    finally:
        kubectl(local_cluster, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
        kubectl(local_cluster, "wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s")
    # KEDA installed later: the next pass applies the ScaledObject and the condition turns True.
    kube.patch_md(namespace, "chat", {"spec": {"autoscaling": {**AUTOSCALING, "maxReplicas": 5}}})
    kube.wait_condition(namespace, "chat", "Autoscaling", "True", timeout=120, reason="ScaledObjectApplied")


def test_keda_scales_a_model_deployment_to_zero_and_back_on_the_runtime_metric(
    kube: Cluster, namespace: str, operator: OperatorProcess, prometheus: PrometheusStandIn
) -> None:
    """KEDA's own operator (cluster.sh up runs it) reads the rendered ScaledObject's query from the stand-in and
    writes the ModelDeployment's /scale: no load for the idle period takes it to zero, load brings it back."""
    prometheus.value = 0
    autoscaling = {"minReplicas": 1, "maxReplicas": 3, "metric": "requests-waiting",
                   "scaleToZero": {"idlePeriod": "1s"}}  # fmt: skip
    kube.create_md(model_deployment("keda", namespace, placement={"pools": ["l4-cloud"]}, autoscaling=autoscaling))
    kube.wait_condition(namespace, "keda", "Autoscaling", "True", timeout=120)
    query = f'sum(vllm:num_requests_waiting{{namespace="{namespace}",modelplane_dev_deployment="keda"}})'

    # KEDA polls every 30 s (its default pollingInterval).
    def seen() -> object:
        return _scaled_object(kube, namespace, "keda")

    wait_for(lambda: kube.md(namespace, "keda")["spec"].get("replicas") == 0, 150,
             "KEDA to scale the idle deployment to zero", seen)  # fmt: skip
    assert query in prometheus.queries, "KEDA asked the rendered query"
    zero = kube.wait_condition(namespace, "keda", "Ready", "True", timeout=60, reason="ScaledToZero")
    assert zero["status"]["plan"]["pool"] == "l4-cloud", "the plan is kept at zero"
    selector = "modelplane.dev/deployment=keda"
    wait_for(lambda: not kube.core.list_namespaced_pod(namespace, label_selector=selector).items, 60,
             "the serving pod to go")  # fmt: skip
    assert (kube.md(namespace, "keda")["status"].get("placements")) == [], "zero replicas hold no GPUs"

    prometheus.value = 4  # requests now wait
    wait_for(lambda: kube.md(namespace, "keda")["spec"].get("replicas") == 1, 150,
             "KEDA to activate the deployment back to minReplicas", seen)  # fmt: skip
    wait_for(lambda: (kube.md(namespace, "keda").get("status") or {}).get("readyReplicas") == 1, 120,
             "the replica to serve again")  # fmt: skip
    scaled = _scaled_object(kube, namespace, "keda") or {}
    ready = {c["type"]: c["status"] for c in (scaled.get("status") or {}).get("conditions") or []}
    assert ready.get("Ready") == "True", scaled.get("status")
