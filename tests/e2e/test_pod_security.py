"""The serving pods under the API server's own Pod Security admission, and their NetworkPolicy as it admits it.

A namespace labelled pod-security.kubernetes.io/enforce=restricted makes the kube-apiserver's PodSecurity
admission (on by default) refuse every pod that fails the "restricted" profile. The non-root mode's pods must be
admitted there, single-node and both LeaderWorkerSet templates; the default mode's must be refused, as the
upstream images run as root.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelplane.api.model_deployment import ModelDeployment
from modelplane.kube.objects import FIELD_MANAGER
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_deployment
from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import Cluster, model_deployment, wait_for
from tests.support import deployment

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}
NON_ROOT = {"securityContext": {"runAsNonRoot": True}}
SINGLE: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "maxModelLen": 4096,
                          "modelCache": {"pvcName": "hf-cache"}, "apiKeySecretRef": {"name": "api-key"}}  # fmt: skip
MULTI_NODE: dict[str, Any] = {
    "model": {"name": "meta-llama/Llama-3.1-405B-Instruct"},
    "quantization": "bf16",
    "maxModelLen": 8192,
    "parallelism": {"tensorParallel": 8, "pipelineParallel": 2},
}
OVERRIDES = {**NON_ROOT, "runtimeClassName": "nvidia", "priorityClassName": "inference",
             "imagePullSecrets": [{"name": "mirror"}],
             "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                 {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}}  # fmt: skip


@pytest.fixture(scope="module")
def classes(kube: Cluster) -> Iterator[None]:
    """The RuntimeClass and PriorityClass the overrides name: admission refuses a pod naming a missing one."""
    node = client.NodeV1Api(kube.api)
    scheduling = client.SchedulingV1Api(kube.api)
    node.create_runtime_class({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                               "metadata": {"name": "nvidia"}, "handler": "nvidia"})  # fmt: skip
    scheduling.create_priority_class({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": "inference"}, "value": 1000})  # fmt: skip
    yield
    node.delete_runtime_class("nvidia")
    scheduling.delete_priority_class("inference")


@pytest.fixture
def restricted(kube: Cluster, namespace: str, classes: None) -> str:
    """The test's namespace, enforcing Pod Security "restricted"."""
    kube.core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    return namespace


def rendered(namespace: str, **spec: Any) -> list[dict[str, Any]]:
    md: ModelDeployment = deployment("chat", namespace, **spec)
    plan = plan_deployment(md, offers_for([])).plan
    assert plan is not None
    return render_deployment(md, plan)


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(labels, pod spec) of every pod template the workload has."""
    workload = objects[-1]
    if workload["kind"] == "Deployment":
        return [(workload["spec"]["template"]["metadata"]["labels"], pod_specs(workload)[0])]
    templates = workload["spec"]["leaderWorkerTemplate"]
    return [(templates[role]["metadata"]["labels"], templates[role]["spec"])
            for role in ("leaderTemplate", "workerTemplate")]  # fmt: skip


def create_pod(kube: Cluster, namespace: str, name: str, labels: dict[str, Any], spec: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}
    kube.core.create_namespaced_pod(namespace, body)


@pytest.mark.parametrize("spec", [SINGLE, MULTI_NODE], ids=["single", "multi-node"])
def test_non_root_mode_pods_are_admitted_under_restricted(kube: Cluster, restricted: str,
                                                          spec: dict[str, Any]) -> None:  # fmt: skip
    templates = pod_templates(rendered(restricted, **spec, podTemplate=OVERRIDES))
    for index, (labels, pod) in enumerate(templates):
        create_pod(kube, restricted, f"pod-{index}", labels, pod)
    names = {pod.metadata.name for pod in kube.core.list_namespaced_pod(restricted).items}
    assert names == {f"pod-{index}" for index in range(len(templates))}


@pytest.mark.parametrize("spec", [SINGLE, MULTI_NODE], ids=["single", "multi-node"])
def test_default_mode_pods_are_refused_under_restricted(kube: Cluster, restricted: str, spec: dict[str, Any]) -> None:
    """Only for running as root: every other control of "restricted" the default mode already meets."""
    for index, (labels, pod) in enumerate(pod_templates(rendered(restricted, **spec))):
        with pytest.raises(ApiException) as refused:
            create_pod(kube, restricted, f"pod-{index}", labels, pod)
        assert refused.value.status == 403
        message = json.loads(refused.value.body)["message"]
        assert 'violates PodSecurity "restricted:latest"' in message
        assert "runAsNonRoot != true" in message
        for control in ("allowPrivilegeEscalation", "capabilities", "seccomp", "restricted volume types"):
            assert control not in message


def test_rendered_network_policies_are_valid_for_the_api_server(local_cluster: LocalCluster, namespace: str) -> None:
    """Every shape the renderer makes, applied for real: default, exposed, chosen clients, multi-node."""
    clients = {"allowFrom": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
         "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["prometheus"]}]}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}  # fmt: skip
    for spec in (SINGLE, {**SINGLE, "serviceType": "LoadBalancer"}, {**SINGLE, "network": clients}, MULTI_NODE):
        policy = rendered(namespace, **spec)[0]
        assert policy["kind"] == "NetworkPolicy"

        applied = kubectl(local_cluster, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-o", "json",
                          "-f", "-", input=json.dumps(policy))  # fmt: skip
        assert json.loads(applied.stdout)["spec"] == policy["spec"]


BAD_SPECS = [
    ({"network": {"allowFrom": [{}]}}, "a peer is an ipBlock alone"),
    ({"network": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}}, "a peer is an ipBlock"),
    ({"network": {"allowFrom": []}}, "spec.network.allowFrom"),
    ({"network": {"allowFrom": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]}},
     "values must be non-empty for In and NotIn"),
    ({"network": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}}, "each except entry a CIDR strictly inside"),
    ({"network": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}},
     "each except entry a CIDR strictly inside"),
    ({"podTemplate": {"securityContext": {"runAsUser": 1000}}}, "belong to the non-root mode"),
    ({"podTemplate": {"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}}, "runAsUser"),
    ({"podTemplate": {"nodeSelector": {"a": "b"}}}, "nodeSelector"),
    ({"podTemplate": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Lt"}]}}]}}}},
     "one integer for Gt and Lt"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "problem"), BAD_SPECS, ids=[problem for _, problem in BAD_SPECS])
def test_admission_refuses_malformed_clients_and_pod_fields(local_cluster: LocalCluster, crds: None, namespace: str,
                                                            spec: dict[str, Any], problem: str) -> None:  # fmt: skip

    body = json.dumps(model_deployment("bad", namespace, **spec))
    result = kubectl(local_cluster, "create", "--dry-run=server", "-f", "-", input=body, check=False)
    assert result.returncode != 0
    assert problem in result.stderr


def test_the_operator_serves_non_root_pods_in_a_restricted_namespace(kube: Cluster, restricted: str,
                                                                     operator: Any) -> None:  # fmt: skip
    """The whole path: admitted, applied with the chart's RBAC, the pods admitted and Ready (simulated nodes);
    the NetworkPolicy is a child like the others, owned and applied first."""
    kube.create_md(model_deployment("chat", restricted, podTemplate=OVERRIDES, apiKeySecretRef={"name": "api-key"},
                                    network={"allowFrom": [{"namespaceSelector": {}}]}))  # fmt: skip
    md = kube.wait_condition(restricted, "chat", "Ready", "True", timeout=120)
    networking = client.NetworkingV1Api(kube.api)
    policy = networking.read_namespaced_network_policy("chat", restricted)
    assert [owner.uid for owner in policy.metadata.owner_references] == [md["metadata"]["uid"]]
    assert policy.spec.pod_selector.match_labels == {"modelplane.dev/deployment": "chat"}
    pods = kube.core.list_namespaced_pod(restricted, label_selector="modelplane.dev/deployment=chat").items
    assert pods
    assert all(pod.spec.security_context.run_as_non_root for pod in pods)


def test_the_default_mode_in_a_restricted_namespace_fails_visibly(kube: Cluster, restricted: str,
                                                                  operator: Any) -> None:  # fmt: skip
    """The Deployment is created but its pods are refused: the ReplicaSet says why, and Ready never turns True."""
    kube.create_md(model_deployment("root", restricted))
    kube.wait_condition(restricted, "root", "Planned", "True", timeout=60)

    def refused() -> str | None:
        for replica_set in kube.apps.list_namespaced_replica_set(restricted).items:
            for condition in replica_set.status.conditions or []:
                if condition.type == "ReplicaFailure" and "violates PodSecurity" in (condition.message or ""):
                    return str(condition.message)
        return None

    assert "runAsNonRoot != true" in wait_for(refused, 60, "the ReplicaSet to report the refused pods")
    assert kube.condition(restricted, "root", "Ready").get("status") != "True"


def test_a_hand_opened_or_deleted_policy_is_restored(kube: Cluster, namespace: str, operator: Any) -> None:
    """Opening the serving port to everyone by hand, or deleting the policy, lasts only until the next reconcile."""
    kube.create_md(model_deployment("chat", namespace))
    kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
    networking = client.NetworkingV1Api(kube.api)
    rendered_ingress = networking.read_namespaced_network_policy("chat", namespace).to_dict()["spec"]["ingress"]

    def ingress() -> Any:
        return networking.read_namespaced_network_policy("chat", namespace).to_dict()["spec"]["ingress"]

    opened = networking.patch_namespaced_network_policy("chat", namespace, {"spec": {"ingress": [{}]}})
    assert opened.to_dict()["spec"]["ingress"] == [{"_from": None, "ports": None}], "open to every source and port"
    wait_for(lambda: ingress() == rendered_ingress, 30, "the opened policy to be restored", ingress)
    networking.delete_namespaced_network_policy("chat", namespace)
    wait_for(lambda: ingress() == rendered_ingress, 30, "the deleted policy to be restored")
