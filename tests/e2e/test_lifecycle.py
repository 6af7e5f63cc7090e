"""What a user sees of a ModelDeployment over its life, end to end: status, events, columns, pools, PlanOnly,
and the shipped examples (multi-node readiness is in test_multi_node.py). Every wait is on a condition or an
observed generation."""

from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client

from modelplane.api.contract import POOL_LABEL
from modelplane.api.documents import load_documents
from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import Cluster, model_deployment, wait_for

REPO = Path(__file__).resolve().parents[2]


def events_of(kube: Cluster, namespace: str, name: str) -> list[Any]:
    """Events about the ModelDeployment itself (its Deployment shares the name and has events of its own)."""
    return [event for event in kube.core.list_namespaced_event(namespace).items
            if (event.involved_object.kind, event.involved_object.name) == ("ModelDeployment", name)]  # fmt: skip


def observed(kube: Cluster, namespace: str, name: str, condition: str) -> bool:
    """Whether the operator has acted on the deployment's latest generation (its condition says so)."""
    md = kube.md(namespace, name)
    generation = md["metadata"]["generation"]
    return any(c["type"] == condition and c.get("observedGeneration") == generation
               for c in (md.get("status") or {}).get("conditions") or [])  # fmt: skip


def test_status_names_rejected_pools_and_reports_progress(kube: Cluster, namespace: str, operator: Any,
                                                          pools_file: Path) -> None:  # fmt: skip
    kube.create_md(model_deployment("onprem", namespace, placement={"locality": "on-prem-only"}))
    md = kube.wait_condition(namespace, "onprem", "Ready", "True", timeout=120)
    pools = load_documents(pools_file.read_text(), str(pools_file)).pools
    cloud = {pool.metadata.name for pool in pools if pool.spec.location.value == "cloud"}
    rejected = {entry["pool"]: entry["codes"] for entry in md["status"]["rejected"]}
    assert cloud <= set(rejected)
    assert all("LocalityPolicy" in rejected[name] for name in cloud)
    assert md["status"]["plan"]["pool"] not in rejected
    conditions = {c["type"]: c for c in md["status"]["conditions"]}
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == ("False", "Complete")
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("False", "AsExpected")
    assert all(c["observedGeneration"] == md["metadata"]["generation"] for c in conditions.values())


def test_events_mark_transitions_only(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("huge", namespace, maxModelLen=131072, maxConcurrency=4096))
    kube.wait_condition(namespace, "huge", "Planned", "False")
    wait_for(lambda: events_of(kube, namespace, "huge"), 30, "the Warning event of the refused plan")
    # Another infeasible spec: a new generation, the same reason, so no new event.
    kube.patch_md(namespace, "huge", {"spec": {"maxConcurrency": 8192}})
    wait_for(lambda: observed(kube, namespace, "huge", "Planned"), 30, "the edit to be planned")
    [event] = events_of(kube, namespace, "huge")
    assert event.type == "Warning"
    assert event.count in (None, 1)
    # Back to feasible, then edits that keep it so: Planned stays True with the same reason, so no event.
    kube.patch_md(namespace, "huge", {"spec": {"maxModelLen": 4096, "maxConcurrency": 1}})
    kube.wait_condition(namespace, "huge", "Ready", "True", timeout=120)
    kube.patch_md(namespace, "huge", {"metadata": {"labels": {"touched": "yes"}}})
    kube.patch_md(namespace, "huge", {"spec": {"replicas": 1}})
    wait_for(lambda: observed(kube, namespace, "huge", "Planned"), 30, "the no-op edit to be seen")
    assert len(events_of(kube, namespace, "huge")) == 1


def test_printer_columns_short_names_and_category(local_cluster: LocalCluster, kube: Cluster, namespace: str,
                                                  operator: Any) -> None:  # fmt: skip
    kube.create_md(model_deployment("cols", namespace))
    md = kube.wait_condition(namespace, "cols", "Ready", "True", timeout=120)
    plan = md["status"]["plan"]
    table = kubectl(local_cluster, "get", "md", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "QUANT", "POOL", "GPUS", "TP", "PP", "READY", "DESIRED",
                                "AVAILABLE", "AGE"]  # fmt: skip
    row = table[1].split()
    assert row[:8] == ["cols", "meta-llama/Llama-3.1-8B-Instruct", plan["quantization"], plan["pool"],
                       str(plan["gpusPerReplica"]), str(plan["tensorParallel"]), str(plan["pipelineParallel"]),
                       "True"]  # fmt: skip
    pools = kubectl(local_cluster, "get", "gpupool").stdout.splitlines()
    assert pools[0].split() == ["NAME", "GPU", "NODES", "FREE", "GPUS", "LOCATION", "AGE"]
    everything = kubectl(local_cluster, "get", "modelplane", "-A", "-o", "name").stdout.split()
    assert "modeldeployment.modelplane.dev/cols" in everything
    assert any(name.startswith("gpunodepool.modelplane.dev/") for name in everything)


def test_pool_free_gpus_are_allocatable_minus_requested(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("l4", namespace, replicas=2, placement={"pools": ["l4-cloud"]}))
    kube.wait_condition(namespace, "l4", "Ready", "True", timeout=120)
    nodes = [node.metadata.name for node in kube.core.list_node(label_selector=f"{POOL_LABEL}=l4-cloud").items]

    def requested() -> int:
        pods = kube.core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
        return sum(int((container.resources.limits or {}).get("nvidia.com/gpu", 0))
                   for pod in pods if pod.spec.node_name in nodes for container in pod.spec.containers)  # fmt: skip

    def consistent() -> dict[str, Any] | None:
        pool: dict[str, Any] = kube.custom.get_cluster_custom_object("modelplane.dev", "v1alpha1", "gpunodepools",
                                                                     "l4-cloud")  # fmt: skip
        status = pool.get("status") or {}
        return status if status.get("freeGpus") == status.get("totalGpus", 0) - requested() else None

    status = wait_for(consistent, 30, "l4-cloud's freeGpus to equal allocatable minus requested")
    assert status["totalGpus"] - status["freeGpus"] >= 2


def test_nodes_without_a_pool_are_discovered_and_planned_on(kube: Cluster, namespace: str, operator: Any) -> None:
    """A GPU node no GPUNodePool selects becomes a pool of its own, named by its pool label (without one, nodes
    are grouped by GPU product, whose selector would also match a declared pool of the same product)."""
    name, pool = f"{namespace}-orphan-l4", f"{namespace}-edge"
    labels = {"type": "kwok", "kubernetes.io/hostname": name, "nvidia.com/gpu.product": "NVIDIA-L4",
              "nvidia.com/gpu.count": "1", POOL_LABEL: pool}  # fmt: skip
    resources = {"cpu": "16", "memory": "128Gi", "ephemeral-storage": "1Ti", "pods": "110", "nvidia.com/gpu": "1"}
    kube.core.create_node(client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels, annotations={"kwok.x-k8s.io/node": "fake"}),
        spec=client.V1NodeSpec(taints=[client.V1Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")]),
        status=client.V1NodeStatus(allocatable=resources, capacity=resources),
    ))  # fmt: skip
    try:
        kube.create_md(model_deployment("found", namespace, placement={"pools": [pool]}))
        md = kube.wait_condition(namespace, "found", "Ready", "True", timeout=120)
        assert (md["status"]["plan"]["pool"], md["status"]["plan"]["gpu"]) == (pool, "L4-24GB")
        [pod] = kube.core.list_namespaced_pod(namespace, label_selector="modelplane.dev/deployment=found").items
        assert pod.spec.node_name == name
    finally:
        kube.delete_md(namespace, "found")
        wait_for(lambda: not kube.core.list_namespaced_pod(namespace).items, 60, "the pod to go")
        kube.core.delete_node(name)


def test_switching_to_plan_only_leaves_the_servers_running(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.create_md(model_deployment("frozen", namespace))
    kube.wait_condition(namespace, "frozen", "Ready", "True", timeout=120)
    before = kube.deployment(namespace, "frozen")
    kube.patch_md(namespace, "frozen", {"spec": {"mode": "PlanOnly", "maxModelLen": 8192}})
    wait_for(lambda: observed(kube, namespace, "frozen", "Planned"), 30, "the PlanOnly edit to be planned")
    assert kube.condition(namespace, "frozen", "Planned")["message"].endswith("mode PlanOnly: not applied")
    after = kube.deployment(namespace, "frozen")
    assert after.metadata.generation == before.metadata.generation
    assert after.spec.template.spec.containers[0].args == before.spec.template.spec.containers[0].args
    ready = kube.condition(namespace, "frozen", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")


def test_the_shipped_examples_settle_as_documented(local_cluster: LocalCluster, kube: Cluster,
                                                   operator: Any) -> None:  # fmt: skip
    """What `make demo` applies: each example settles, where the README and the files' comments say."""
    # Earlier tests' namespaces go away in the background; their servers would hold GPUs the examples expect.
    wait_for(lambda: not [ns for ns in kube.core.list_namespace().items if ns.metadata.name.startswith("t-")], 180,
             "earlier tests' namespaces to be deleted")  # fmt: skip
    examples = REPO / "examples" / "deployments"
    deployments = load_documents("\n---\n".join(p.read_text() for p in sorted(examples.glob("*.yaml"))), "ex")
    spaces = sorted({md.metadata.namespace or "default" for md in deployments.deployments})
    for space in spaces:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=space)))
    try:
        kubectl(local_cluster, "apply", "--server-side", "-f", str(examples))
        settled = {md.metadata.name: _settled(kube, md.metadata.namespace or "default", md.metadata.name)
                   for md in deployments.deployments}  # fmt: skip
        gpus = {name: status["plan"]["gpu"] for name, status in settled.items() if status.get("plan")}
        assert gpus["llama-8b"] == "L4-24GB"
        assert gpus["llama-70b"] == "H100-SXM-80GB"
        assert settled["llama-70b"]["plan"]["quantization"] == "fp8"
        assert gpus["llama-405b"] == "H200-SXM-141GB" or settled["llama-405b"]["plan"]["nodesPerReplica"] > 1
        assert _reason(settled["llama-405b"], "Ready") == "Available"
        assert gpus["deepseek-v3"] in ("H200-SXM-141GB", "MI300X-192GB")
        assert settled["qwen-7b-trt"]["plan"]["runtime"] == "tensorrt-llm"
        assert _reason(settled["mixtral-review"], "Ready") == "PlanOnly"
        assert _reason(settled["llama-405b-onprem"], "Planned") != "Planned"
    finally:
        for space in spaces:
            kube.core.delete_namespace(space)
        wait_for(lambda: not any(kube.exists(partial(kube.core.read_namespace, space)) for space in spaces), 180,
                 "the examples' namespaces to be deleted, so their GPUs are free for the next test")  # fmt: skip


def _reason(status: dict[str, Any], kind: str) -> str:
    return str(next(c["reason"] for c in status["conditions"] if c["type"] == kind))


def _settled(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The status once the operator is done with it: Ready (multi-node ones too) or refused."""

    def done() -> dict[str, Any] | None:
        md = kube.md(namespace, name)
        status = md.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        planned, ready = conditions.get("Planned"), conditions.get("Ready")
        if planned is None or planned.get("observedGeneration") != md["metadata"]["generation"]:
            return None
        if planned["status"] == "False" or (ready and ready["status"] == "True"):
            return status
        return None

    settled: dict[str, Any] = wait_for(done, 180, f"{namespace}/{name} to settle")
    return settled
