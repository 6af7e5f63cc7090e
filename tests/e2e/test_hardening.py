"""What one object must never do to the operator or to objects it does not own, on the real control plane."""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import LocalCluster, kubectl, node_names
from tests.e2e.operator_support import GROUP, VERSION, Cluster, OperatorProcess, model_deployment, wait_for


def _planned(kube: Cluster, namespace: str, name: str, reason: str) -> dict[str, Any]:
    kube.wait_condition(namespace, name, "Planned", "False", reason=reason)
    return kube.condition(namespace, name, "Planned")


def test_an_existing_object_of_the_same_name_is_never_taken_over(kube: Cluster, namespace: str,
                                                                 operator: OperatorProcess) -> None:  # fmt: skip
    theirs = client.V1Service(
        metadata=client.V1ObjectMeta(name="taken", namespace=namespace, labels={"team": "theirs"}),
        spec=client.V1ServiceSpec(selector={"app": "theirs"}, ports=[client.V1ServicePort(port=80)]),
    )
    kube.core.create_namespaced_service(namespace, theirs)
    kube.create_md(model_deployment("taken", namespace))
    condition = _planned(kube, namespace, "taken", "ChildConflict")
    assert f"Service {namespace}/taken already exists and is not owned" in condition["message"]
    service = kube.core.read_namespaced_service("taken", namespace)
    assert service.spec.selector == {"app": "theirs"}
    assert not service.metadata.owner_references
    assert not kube.exists(lambda: kube.deployment(namespace, "taken")), "nothing is applied beside a conflict"
    events = [e for e in kube.core.list_namespaced_event(namespace).items if e.involved_object.name == "taken"]
    assert any(e.reason == "ChildConflict" and e.type == "Warning" for e in events)
    kube.delete_md(namespace, "taken")
    wait_for(lambda: not kube.exists(lambda: kube.md(namespace, "taken")), 30, "the ModelDeployment gone")
    assert kube.core.read_namespaced_service("taken", namespace).spec.selector == {"app": "theirs"}


@pytest.fixture
def refusing_policy(local_cluster: LocalCluster, namespace: str) -> Iterator[str]:
    """A platform team's ValidatingAdmissionPolicy refusing serving Deployments in one namespace: a 422."""
    name = f"refuse-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": "serving is frozen in this namespace"}],
        },
    }
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": name},
               "spec": {"policyName": name, "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": namespace}}}}}  # fmt: skip
    kubectl(local_cluster, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": [policy, binding]}))  # fmt: skip
    yield name
    kubectl(local_cluster, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
            "--ignore-not-found")  # fmt: skip


def test_a_child_the_api_server_refuses_is_reported_and_holds_no_gpus(kube: Cluster, namespace: str,
                                                                      operator: OperatorProcess,
                                                                      refusing_policy: str) -> None:  # fmt: skip
    def admitted_yet() -> bool:
        # The policy takes effect once the API server has loaded it: probe with a dry-run create.
        probe = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="probe"),
            spec=client.V1DeploymentSpec(
                selector=client.V1LabelSelector(match_labels={"a": "b"}),
                template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"a": "b"}),
                                                  spec=client.V1PodSpec(containers=[client.V1Container(
                                                      name="c", image="i")])),
            ),
        )  # fmt: skip
        try:
            kube.apps.create_namespaced_deployment(namespace, probe, dry_run="All")
        except client.ApiException as error:
            return bool(error.status == 422)
        return False

    wait_for(admitted_yet, 30, "the policy to refuse Deployments")
    kube.create_md(model_deployment("frozen", namespace, placement={"pools": ["h200-cloud"]}, replicas=4))
    condition = _planned(kube, namespace, "frozen", "ChildRejected")
    assert "serving is frozen in this namespace" in condition["message"]
    assert kube.condition(namespace, "frozen", "Ready")["status"] == "False"
    status = kube.md(namespace, "frozen")["status"]
    assert "plan" not in status, "a plan that could not be applied is not pinned"
    # Each pass reserves the plan's GPUs before it applies (so no other deployment takes them meanwhile) and
    # releases them when the apply is refused: once the passes stop, nothing runs and nothing is reserved.
    wait_for(lambda: operator.reserved_gpus("h200-cloud") == 0, 30, "the refused plan's GPUs to be released")


def test_a_hand_written_status_plan_is_never_rendered(kube: Cluster, namespace: str,
                                                      operator: OperatorProcess) -> None:  # fmt: skip
    kube.create_md(model_deployment("forged", namespace))
    kube.wait_condition(namespace, "forged", "Planned", "True")
    planned = kube.md(namespace, "forged")["status"]["plan"]
    forged = {
        **planned,
        "gpusPerReplica": 32,
        "tensorParallel": 8,
        "pipelineParallel": 4,
        "tolerations": [{"operator": "Exists"}],
        "nodeSelector": {"kubernetes.io/hostname": "chosen"},
    }
    kube.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "modeldeployments", "forged",
                                                      {"status": {"plan": forged}})  # fmt: skip
    operator.restart()

    def restored() -> dict[str, Any] | None:
        plan: dict[str, Any] = kube.md(namespace, "forged")["status"]["plan"]
        return plan if plan["gpusPerReplica"] == planned["gpusPerReplica"] else None

    assert wait_for(restored, 60, "status.plan planned afresh") == planned
    pod = kube.deployment(namespace, "forged").spec.template.spec
    assert pod.node_selector == planned["nodeSelector"]
    assert not any(t.operator == "Exists" and t.key is None for t in pod.tolerations or [])


def test_fields_added_by_hand_to_children_are_removed(kube: Cluster, namespace: str,
                                                      operator: OperatorProcess) -> None:  # fmt: skip
    kube.create_md(model_deployment("edited", namespace))
    kube.wait_condition(namespace, "edited", "Ready", "True", timeout=120)
    selector = kube.core.read_namespaced_service("edited", namespace).spec.selector
    kube.core.patch_namespaced_service("edited", namespace, {"spec": {"selector": {"extra": "key"}}})
    sidecar = {"name": "sidecar", "image": "registry.invalid/sidecar:1"}
    kube.apps.patch_namespaced_deployment("edited", namespace, {"spec": {"template": {"spec": {
        "hostNetwork": True, "containers": [sidecar]}}}})  # fmt: skip
    wait_for(lambda: kube.core.read_namespaced_service("edited", namespace).spec.selector == selector, 30,
             "the Service selector restored")  # fmt: skip

    def pod_restored() -> bool:
        pod = kube.deployment(namespace, "edited").spec.template.spec
        return not pod.host_network and all(container.name != "sidecar" for container in pod.containers)

    wait_for(pod_restored, 30, "the sidecar and hostNetwork removed")
    kube.wait_condition(namespace, "edited", "Ready", "True", timeout=120)


@pytest.fixture
def cordoned_l4(kube: Cluster) -> Iterator[list[str]]:
    names = node_names(kube, "modelplane.dev/pool=l4-cloud")
    for name in names:
        kube.core.patch_node(name, {"spec": {"unschedulable": True}})
    yield names
    for name in names:
        kube.core.patch_node(name, {"spec": {"unschedulable": None}})


def test_cordoned_nodes_are_no_free_capacity(kube: Cluster, namespace: str, operator: OperatorProcess,
                                             cordoned_l4: list[str]) -> None:  # fmt: skip
    def pool_free() -> int:
        pool = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", "l4-cloud")
        return int((pool.get("status") or {}).get("freeGpus", -1))

    wait_for(lambda: pool_free() == 0, 30, "l4-cloud to report no free GPUs while cordoned")
    kube.create_md(model_deployment("waits", namespace, placement={"pools": ["l4-cloud"]}))
    _planned(kube, namespace, "waits", "InsufficientCapacity")


@pytest.fixture
def unreachable_webhook(local_cluster: LocalCluster, namespace: str) -> Iterator[str]:
    """A validating webhook for Services in one namespace whose server is down: the API server answers 500."""
    name = f"down-{namespace}"
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "down.modelplane.test",
            "clientConfig": {"url": "https://127.0.0.1:1/validate"},  # nothing listens on port 1
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["services"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 2,
        }],
    }  # fmt: skip
    kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(webhook))
    yield name
    kubectl(local_cluster, "delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def _reconcile_errors(operator: OperatorProcess) -> float:
    return sum(float(value) for value in re.findall(r"^modelplane_reconcile_errors_total\{[^}]*\} (\S+)$",
                                                   operator.metrics(), re.M))  # fmt: skip


def test_a_child_apply_that_fails_for_now_is_reported_retried_and_then_served(
    kube: Cluster, local_cluster: LocalCluster, namespace: str, operator: OperatorProcess, unreachable_webhook: str
) -> None:
    """A 5xx on a child's apply (here a webhook that is down) is transient: status says so and that it is
    retrying, the reconcile is counted as an error and requeued with backoff, and once the API server answers
    again the deployment is served without anyone touching it."""
    errors_before = _reconcile_errors(operator)
    kube.create_md(model_deployment("later", namespace))
    condition = _planned(kube, namespace, "later", "ChildApplyFailed")
    assert "retrying" in condition["message"], condition
    assert "failed calling webhook" in condition["message"], condition
    assert kube.condition(namespace, "later", "Ready")["status"] == "False"
    wait_for(
        lambda: _reconcile_errors(operator) >= errors_before + 2, 60, "the failed passes to be counted and retried"
    )
    kubectl(local_cluster, "delete", "validatingwebhookconfiguration", unreachable_webhook)
    kube.wait_condition(namespace, "later", "Ready", "True", timeout=120)
    assert kube.condition(namespace, "later", "Planned")["status"] == "True"
