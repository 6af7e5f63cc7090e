"""A scaled-down version of the 1,000-deployment benchmark, as a correctness test (no timing assertions):
50 ModelDeployments converge, each costs its children plus at most two writes, and a restart of the
operator makes zero mutating requests."""

from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.conftest import LocalCluster
from tests.e2e.operator_support import (
    OPERATOR_USER,
    Cluster,
    OperatorProcess,
    audit_writes,
    model_deployment,
    now,
    operator_quiet,
    wait_for,
)

MODELS = ["meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
          "meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"]  # fmt: skip
NAMESPACES = 5
PER_NAMESPACE = 10
CHILDREN_PER_DEPLOYMENT = 3  # NetworkPolicy + Service + Deployment


def all_ready(kube: Cluster, namespaces: list[str]) -> bool:
    for namespace in namespaces:
        items = kube.custom.list_namespaced_custom_object("modelplane.dev", "v1alpha1", namespace,
                                                          "modeldeployments")["items"]  # fmt: skip
        if len(items) < PER_NAMESPACE:
            return False
        for md in items:
            ready = [c for c in (md.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
            if not ready or ready[0]["status"] != "True":
                return False
    return True


def test_fifty_deployments_converge_and_a_restart_writes_nothing(
    kube: Cluster, local_cluster: LocalCluster, operator: OperatorProcess
) -> None:
    namespaces = [f"scale-{index}" for index in range(NAMESPACES)]
    # Earlier tests' namespaces may still be torn down (the examples' as well as the t- ones); their deletions
    # free GPUs and would make the operator report better plans (PlanOutdated) for ours, which is right but not
    # what is counted here. So nothing may hold a GPU or be terminating when the count starts.
    wait_for(lambda: not _gpus_held_or_terminating(kube), 180, "earlier tests' GPUs and namespaces to be released")
    # A fresh operator, left to settle (it rewrites the pools' status, which may still show those tests' GPUs),
    # starts the burst as the benchmark's operator does.
    audit = local_cluster.logs / "audit.log"
    settling = now()
    operator.restart()
    wait_for(lambda: _quiet_since(audit, settling), 60, "the restarted operator to settle the pools' status")
    for namespace in namespaces:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        started = now()
        for index in range(NAMESPACES * PER_NAMESPACE):
            namespace = namespaces[index % NAMESPACES]
            kube.create_md(model_deployment(f"md-{index}", namespace, model={"name": MODELS[index % len(MODELS)]},
                                            maxModelLen=4096))  # fmt: skip
        wait_for(lambda: all_ready(kube, namespaces), 240, "all 50 ModelDeployments Ready")
        settle = wait_for(lambda: _quiet_since(audit, started), 60, "the operator to stop writing")
        writes = [
            w for w in audit_writes(audit, OPERATOR_USER, started) if w["objectRef"].get("namespace") in namespaces
        ]
        per_deployment = _by_deployment(writes)
        assert len(per_deployment) == NAMESPACES * PER_NAMESPACE, sorted(k for k in per_deployment if "/md-" not in k)
        budget = CHILDREN_PER_DEPLOYMENT + 2
        over = {key: [(w["stageTimestamp"][11:23], w["verb"], w["objectRef"].get("resource"),
                       w["objectRef"].get("subresource"))
                      for w in writes if f"{w['objectRef'].get('namespace')}/{w['objectRef'].get('name')}" == key]
                for key, count in per_deployment.items() if count > budget}  # fmt: skip
        assert not over, f"writes per deployment: {sorted(per_deployment.values())}; over {budget}: {over}"
        assert settle

        restart = now()
        operator.restart()
        wait_for(lambda: _quiet_since(audit, restart), 60, "the restarted operator to settle")
        after_restart = [w for w in audit_writes(audit, OPERATOR_USER, restart)
                         if w["objectRef"].get("namespace") in namespaces]  # fmt: skip
        assert after_restart == [], [(w["verb"], w["objectRef"]) for w in after_restart][:5]
    finally:
        for namespace in namespaces:
            kube.core.delete_namespace(namespace)


def _gpus_held_or_terminating(kube: Cluster) -> list[str]:
    """Pods of earlier tests that request GPUs, and namespaces still being deleted."""
    held = [f"{pod.metadata.namespace}/{pod.metadata.name}" for pod in kube.core.list_pod_for_all_namespaces().items
            if any(name.endswith("/gpu") for container in pod.spec.containers
                   for name in (container.resources.requests or {}))]  # fmt: skip
    terminating = [ns.metadata.name for ns in kube.core.list_namespace().items if ns.status.phase == "Terminating"]
    return held + terminating


def _quiet_since(audit: Path, since: str) -> bool:
    """No write by the operator in the last 3 seconds (and at least 3 seconds passed since `since`)."""
    return since < now(3) and operator_quiet(audit, 3)


def _by_deployment(writes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for write in writes:
        ref = write["objectRef"]
        if ref.get("resource") == "events":
            key = f"{ref.get('namespace')}/event"
        else:
            key = f"{ref.get('namespace')}/{ref.get('name')}"
        counts[key] = counts.get(key, 0) + 1
    return counts
