"""The operator end to end on the real local control plane: plan, apply, report, heal, never break serving."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelplane.api.documents import load_documents
from tests.e2e.operator_support import GROUP, VERSION, Cluster, model_deployment, wait_for

REPO = Path(__file__).resolve().parents[2]


def cli_plan(body: dict[str, Any], pools_file: Path) -> dict[str, Any]:
    text = json.dumps(body)
    result = subprocess.run([sys.executable, "-m", "modelplane", "plan", "-", "--pools", str(pools_file), "-o",
                             "json"], input=text, capture_output=True, text=True)  # fmt: skip
    assert result.returncode in (0, 2), result.stderr
    entry: dict[str, Any] = json.loads(result.stdout)[0]
    return entry


def test_create_plans_applies_and_becomes_ready(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("chat", namespace, replicas=2, podDisruptionBudget={"maxUnavailable": 1}))
    md = kube.wait_condition(namespace, "chat", "Ready", "True", timeout=120)
    status = md["status"]
    assert status["observedGeneration"] == md["metadata"]["generation"]
    assert kube.condition(namespace, "chat", "Planned")["status"] == "True"
    plan = status["plan"]
    deployment = kube.deployment(namespace, "chat")
    owner = deployment.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("ModelDeployment", "chat",
                                                                     md["metadata"]["uid"], True)  # fmt: skip
    assert deployment.spec.replicas == 2
    limits = deployment.spec.template.spec.containers[0].resources.limits
    resource = "amd.com/gpu" if "amd.com/gpu" in limits else "nvidia.com/gpu"
    assert int(limits[resource]) == plan["tensorParallel"] * plan["pipelineParallel"]
    managers = {entry.manager for entry in deployment.metadata.managed_fields}
    assert "modelplane" in managers
    assert "kopf.zalando.org/last-handled-configuration" not in (deployment.metadata.annotations or {})
    assert kube.exists(lambda: kube.core.read_namespaced_service("chat", namespace))
    assert kube.exists(lambda: kube.policy.read_namespaced_pod_disruption_budget("chat", namespace))
    pods = kube.core.list_namespaced_pod(namespace, label_selector="modelplane.dev/deployment=chat").items
    assert all(pod.spec.node_name for pod in pods)
    assert all(pod.spec.node_selector == plan.get("nodeSelector") or pod.spec.node_selector for pod in pods)


def test_a_child_kind_no_longer_rendered_is_deleted(kube: Cluster, namespace: str, operator: Any) -> None:
    """Dropping podDisruptionBudget from the spec deletes the PDB: the operator finds it through its index of
    existing children, not a GET per kind on every pass."""
    kube.create_md(model_deployment("budget", namespace, replicas=0, podDisruptionBudget={"maxUnavailable": 1}))
    kube.wait_condition(namespace, "budget", "Ready", "True", timeout=120)
    assert kube.exists(lambda: kube.policy.read_namespaced_pod_disruption_budget("budget", namespace))
    kube.patch_md(namespace, "budget", {"spec": {"podDisruptionBudget": None}})
    wait_for(lambda: not kube.exists(lambda: kube.policy.read_namespaced_pod_disruption_budget("budget", namespace)),
             60, "the PodDisruptionBudget no longer rendered to be deleted")  # fmt: skip
    assert kube.exists(lambda: kube.deployment(namespace, "budget")), "only the kind no longer rendered goes"


def test_status_plan_matches_the_cli(kube: Cluster, namespace: str, operator: Any, pools_file: Path,
                                     local_cluster: Any) -> None:  # fmt: skip
    body = model_deployment("same", namespace, model={"name": "Qwen/Qwen2.5-7B-Instruct"}, maxModelLen=8192,
                            mode="PlanOnly")  # fmt: skip
    kube.create_md(body)
    md = kube.wait_condition(namespace, "same", "Planned", "True")
    expected = cli_plan(body, pools_file)["plan"]
    plan = md["status"]["plan"]
    assert {key: plan[key] for key in ("pool", "gpu", "tensorParallel", "pipelineParallel", "quantization")} == {
        key: expected[key] for key in ("pool", "gpu", "tensorParallel", "pipelineParallel", "quantization")
    }
    # Status leaves out empty values (no notes, no price), as Kubernetes objects do; every other key is there.
    assert {key for key, value in expected.items() if value not in (None, [], {})} <= set(plan)
    explained = subprocess.run([sys.executable, "-m", "modelplane", "explain", "md/same", "-n", namespace],
                               capture_output=True, text=True,
                               env={**os.environ, "KUBECONFIG": str(local_cluster.kubeconfig)})  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    assert f"pool {plan['pool']}" in explained.stdout
    assert "Planned" in explained.stdout


def test_plan_only_creates_nothing(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("review", namespace, mode="PlanOnly"))
    kube.wait_condition(namespace, "review", "Ready", "True", reason="PlanOnly")
    assert not kube.exists(lambda: kube.deployment(namespace, "review"))
    assert not kube.exists(lambda: kube.core.read_namespaced_service("review", namespace))


def test_infeasible_edit_keeps_serving_children(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("keep", namespace))
    kube.wait_condition(namespace, "keep", "Ready", "True", timeout=120)
    before = kube.deployment(namespace, "keep")
    kube.patch_md(namespace, "keep", {"spec": {"maxModelLen": 131072, "maxConcurrency": 4096}})
    md = kube.wait_condition(namespace, "keep", "Planned", "False")
    planned = kube.condition(namespace, "keep", "Planned")
    assert planned["reason"] in ("InsufficientMemory", "InsufficientCapacity")
    assert "would fit" in planned["message"] or "maxModelLen" in planned["message"]
    after = kube.deployment(namespace, "keep")
    assert after.metadata.generation == before.metadata.generation
    assert after.spec.template.spec.containers[0].args == before.spec.template.spec.containers[0].args
    assert md["status"]["plan"]["maxModelLen"] == 4096
    assert kube.condition(namespace, "keep", "Ready")["status"] == "True"
    events = wait_for(lambda: [e for e in kube.core.list_namespaced_event(namespace).items
                               if e.involved_object.name == "keep" and e.type == "Warning"], 30,
                      "a Warning event for the refused edit")  # fmt: skip
    assert events[0].reason == planned["reason"]


def test_drift_is_restored(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("heal", namespace))
    kube.wait_condition(namespace, "heal", "Ready", "True", timeout=120)
    kube.core.delete_namespaced_service("heal", namespace)
    wait_for(lambda: kube.exists(lambda: kube.core.read_namespaced_service("heal", namespace)), 30,
             "the deleted Service to come back")  # fmt: skip
    kube.apps.patch_namespaced_deployment("heal", namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: kube.deployment(namespace, "heal").spec.replicas == 1, 30, "replicas restored to 1")


def test_deleting_the_deployment_garbage_collects_children(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("gone", namespace))
    kube.wait_condition(namespace, "gone", "Planned", "True")
    wait_for(lambda: kube.exists(lambda: kube.deployment(namespace, "gone")), 30, "deployment")
    kube.delete_md(namespace, "gone")
    wait_for(lambda: not kube.exists(lambda: kube.deployment(namespace, "gone")), 60, "garbage collection")
    wait_for(lambda: not kube.exists(lambda: kube.core.read_namespaced_service("gone", namespace)), 60, "service GC")


def _cheapest_pool(pools_file: Path) -> tuple[str, int]:
    pools = [p for p in load_documents(pools_file.read_text(), str(pools_file)).pools if p.spec.cost_per_gpu_hour]
    cheapest = min(pools, key=lambda p: (Decimal(p.spec.cost_per_gpu_hour or "0"), p.metadata.name))
    return cheapest.metadata.name, cheapest.spec.nodes * cheapest.spec.gpus_per_node


def _pool_free(kube: Cluster, pool: str) -> int:
    body = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", pool)
    return int((body.get("status") or {}).get("freeGpus", -1))


def test_plan_is_pinned_and_outdated_is_reported_until_replan(kube: Cluster, namespace: str, operator: Any,
                                                               pools_file: Path) -> None:  # fmt: skip
    cheapest, gpus = _cheapest_pool(pools_file)
    # An earlier test's servers may still be terminating on that pool (their namespace is deleted, not gone).
    wait_for(lambda: _pool_free(kube, cheapest) == gpus, 120, f"every GPU of pool {cheapest} free",
             lambda: (kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", cheapest)
                      .get("status")))  # fmt: skip
    # Fill the cheapest pool, so the next deployment lands elsewhere.
    kube.create_md(model_deployment("filler", namespace, replicas=gpus, placement={"pools": [cheapest]}))
    kube.wait_condition(namespace, "filler", "Planned", "True")
    kube.create_md(model_deployment("pinned", namespace))
    md = kube.wait_condition(namespace, "pinned", "Planned", "True")
    first = md["status"]["plan"]["pool"]
    assert first != cheapest
    assert kube.condition(namespace, "pinned", "PlanOutdated")["status"] == "False"
    # Free the cheapest pool: the running plan stays, PlanOutdated says a better one exists.
    kube.delete_md(namespace, "filler")
    kube.wait_condition(namespace, "pinned", "PlanOutdated", "True", timeout=60)
    assert kube.md(namespace, "pinned")["status"]["plan"]["pool"] == first
    assert kube.deployment(namespace, "pinned").spec.template.spec.node_selector != {"modelplane.dev/pool": cheapest}
    # Asking for a re-plan moves it.
    kube.patch_md(namespace, "pinned", {"metadata": {"annotations": {"modelplane.dev/replan": "1"}}})
    moved = wait_for(lambda: kube.md(namespace, "pinned")["status"]["plan"]["pool"] == cheapest, 60,
                     f"re-plan onto the cheapest pool {cheapest}")  # fmt: skip
    assert moved
    assert kube.condition(namespace, "pinned", "PlanOutdated")["status"] == "False"
    replanned = wait_for(lambda: [e for e in kube.core.list_namespaced_event(namespace).items
                                  if e.involved_object.name == "pinned" and e.reason == "Replanned"], 30,
                         "a Replanned event for the servers that moved")  # fmt: skip
    assert f"to pool {cheapest}" in replanned[0].message
    wait_for(lambda: kube.deployment(namespace, "pinned").spec.template.spec.node_selector.get(
        "modelplane.dev/pool") == cheapest, 30, "the Deployment to follow the new plan")  # fmt: skip


def test_invalid_objects_are_refused_at_admission(kube: Cluster, namespace: str, operator: Any) -> None:
    with pytest.raises(client.ApiException) as caught:
        kube.create_md(model_deployment("bad", namespace, maxModelLen=0))
    assert caught.value.status == 422
    assert "maxModelLen" in caught.value.body


def test_pool_status_reports_nodes_and_free_gpus(kube: Cluster, operator: Any, pools_file: Path) -> None:
    pools = load_documents(pools_file.read_text(), str(pools_file)).pools
    name = pools[0].metadata.name

    def status() -> dict[str, Any] | None:
        found: dict[str, Any] = kube.custom.get_cluster_custom_object("modelplane.dev", "v1alpha1", "gpunodepools",
                                                                      name)  # fmt: skip
        current = found.get("status") or {}
        return current if current.get("nodes") else None

    current = wait_for(status, 60, "pool status")
    assert current["readyNodes"] == pools[0].spec.nodes
    assert current["totalGpus"] == pools[0].spec.nodes * pools[0].spec.gpus_per_node
    assert 0 <= current["freeGpus"] <= current["totalGpus"]


def test_hf_token_is_referenced_never_copied(kube: Cluster, namespace: str, operator: Any) -> None:
    secret_value = "hf_do-not-leak-0123456789"
    kube.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="hf-token"), string_data={"token": secret_value}))  # fmt: skip
    kube.create_md(model_deployment("secret", namespace, hfTokenSecretRef={"name": "hf-token"}))
    md = kube.wait_condition(namespace, "secret", "Ready", "True", timeout=120)
    deployment = kube.apps.read_namespaced_deployment("secret", namespace)
    env = deployment.spec.template.spec.containers[0].env
    [token] = [var for var in env if var.name == "HF_TOKEN"]
    assert token.value is None
    assert (token.value_from.secret_key_ref.name, token.value_from.secret_key_ref.key) == ("hf-token", "token")
    events = json.dumps([e.to_dict() for e in kube.core.list_namespaced_event(namespace).items], default=str)
    seen = [json.dumps(md), json.dumps(deployment.to_dict(), default=str), events, operator.log_path.read_text()]
    assert not any(secret_value in text for text in seen)
