"""Argo CD's and Flux's view of live objects, computed by their own code (Argo CD's util/lua running the chart's
Lua health checks, cli-utils' kstatus): on what the API server returns in each state a ModelDeployment goes
through (progressing, ready, failed, stalled, scaled to zero), and on the pools. Each verdict must agree with
the conditions the operator wrote."""

from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import watch

from modelplane.api.documents import load_documents
from tests.e2e.operator_support import GROUP, VERSION, Cluster, model_deployment, wait_for
from tests.health import argocd_health, kstatus

INFEASIBLE = {"maxModelLen": 131072, "maxConcurrency": 4096}


def verdicts(obj: dict[str, Any]) -> tuple[str, str]:
    """(Argo CD health, kstatus status) of one object; a ModelDeployment's must agree with its conditions."""
    found = argocd_health(obj).status, kstatus(obj).status
    if obj["kind"] == "ModelDeployment":
        assert found == from_conditions(obj), f"{found} disagrees with {conditions(obj)}"
    return found


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {condition["type"]: condition for condition in (obj.get("status") or {}).get("conditions") or []}


def from_conditions(obj: dict[str, Any]) -> tuple[str, str]:
    """What our conditions of the observed generation say each tool should conclude."""
    found = {kind: c["status"] for kind, c in conditions(obj).items()
             if c.get("observedGeneration") == obj["metadata"]["generation"]}  # fmt: skip
    if found.get("Stalled") == "True":
        return "Degraded", "Failed"
    if found.get("Reconciling") == "True" or found.get("Ready") != "True":
        return "Progressing", "InProgress"
    return "Healthy", "Current"


def ready(obj: dict[str, Any]) -> bool:
    observed = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    return observed and conditions(obj).get("Ready", {}).get("status") == "True"


def versions_until_ready(kube: Cluster, body: dict[str, Any], timeout: int = 120) -> list[dict[str, Any]]:
    """Every version of a new ModelDeployment the API server stores, from its creation until Ready.

    The watch starts at the resourceVersion listed before the create, so simulated pods that become ready
    within a second cannot hide the rolling-out state from the test.
    """
    namespace = body["metadata"]["namespace"]
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments")
    kube.create_md(body)
    versions: list[dict[str, Any]] = []
    stream = watch.Watch()
    for event in stream.stream(kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                               "modeldeployments", resource_version=listed["metadata"]["resourceVersion"],
                               timeout_seconds=timeout):  # fmt: skip
        versions.append(event["raw_object"])
        if ready(event["raw_object"]):
            stream.stop()
    return versions


def test_a_new_deployment_progresses_then_is_healthy(kube: Cluster, namespace: str, operator: Any) -> None:
    versions = versions_until_ready(kube, model_deployment("fresh", namespace))
    assert versions, "no watch event for the new deployment"
    assert ready(versions[-1]), f"not Ready within the watch; last: {versions[-1].get('status')}"
    # As created, before the operator wrote any status: Argo CD waits. (kstatus says Current here: its README
    # names this corner case, a resource seen before its controller wrote status.)
    assert "status" not in versions[0]
    assert argocd_health(versions[0]).status == "Progressing"
    rolling = [obj for obj in versions if conditions(obj).get("Reconciling", {}).get("status") == "True"]
    assert rolling, f"no version with Reconciling=True: {[conditions(obj) for obj in versions]}"
    assert verdicts(rolling[0]) == ("Progressing", "InProgress")
    assert conditions(rolling[0])["Reconciling"]["reason"] == "RollingOut"
    assert verdicts(versions[-1]) == ("Healthy", "Current")
    assert not {"Reconciling", "Stalled"} & set(conditions(versions[-1]))


def test_an_infeasible_deployment_is_degraded_and_failed(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("too-big", namespace, **INFEASIBLE))
    md = kube.wait_condition(namespace, "too-big", "Stalled", "True")
    planned = conditions(md)["Planned"]
    assert planned["status"] == "False"
    assert conditions(md)["Stalled"]["reason"] == planned["reason"]
    assert "Reconciling" not in conditions(md)
    assert verdicts(md) == ("Degraded", "Failed")
    assert planned["reason"] in argocd_health(md).message


def test_an_infeasible_edit_fails_until_it_is_undone(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("edited", namespace))
    kube.wait_condition(namespace, "edited", "Ready", "True", timeout=120)
    kube.patch_md(namespace, "edited", {"spec": INFEASIBLE})
    md = kube.wait_condition(namespace, "edited", "Stalled", "True")
    assert conditions(md)["Ready"]["status"] == "True", "the servers of the earlier plan keep serving"
    assert verdicts(md) == ("Degraded", "Failed")
    kube.patch_md(namespace, "edited", {"spec": {"maxModelLen": 4096, "maxConcurrency": None}})

    def healthy_again() -> dict[str, Any] | None:
        live = kube.md(namespace, "edited")
        return live if ready(live) and verdicts(live) == ("Healthy", "Current") else None

    fixed = wait_for(healthy_again, 120, "Healthy and Current after the edit is undone",
                     lambda: conditions(kube.md(namespace, "edited")))  # fmt: skip
    assert "Stalled" not in conditions(fixed)


def test_a_deployment_scaled_to_zero_is_healthy_and_current(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("idle", namespace))
    kube.wait_condition(namespace, "idle", "Ready", "True", timeout=120)
    kube.patch_md(namespace, "idle", {"spec": {"replicas": 0}})
    kube.wait_condition(namespace, "idle", "Ready", "True", reason="ScaledToZero")

    def settled() -> dict[str, Any] | None:
        live = kube.md(namespace, "idle")
        return None if "Reconciling" in conditions(live) else live

    md = wait_for(settled, 60, "the scale-down to settle", lambda: conditions(kube.md(namespace, "idle")))
    assert verdicts(md) == ("Healthy", "Current")
    assert "ScaledToZero" in argocd_health(md).message


def observed_pool(kube: Cluster, name: str, nodes: int) -> dict[str, Any] | None:
    """The pool once the operator has counted all its nodes for its latest generation."""
    found: dict[str, Any] = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", name)
    status = found.get("status") or {}
    current = status.get("observedGeneration") == found["metadata"]["generation"]
    return found if current and status.get("readyNodes") == nodes else None


def test_pools_are_healthy_and_current(kube: Cluster, operator: Any, pools_file: Path) -> None:
    for pool in load_documents(pools_file.read_text(), str(pools_file)).pools:
        name, nodes = pool.metadata.name, pool.spec.nodes
        live = wait_for(partial(observed_pool, kube, name, nodes), 60, f"pool {name} with all {nodes} nodes ready")
        assert verdicts(live) == ("Healthy", "Current"), argocd_health(live).message
