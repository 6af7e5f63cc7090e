"""Every rendered object: valid against the Kubernetes (and LeaderWorkerSet) schema, safe, consistent."""

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.runtimes import runtime_spec
from modelplane.render.engine import pod_specs
from tests.render.test_golden import golden_objects
from tests.tools import module_crd

KUBERNETES_VERSION = kubernetes_validate.latest_version()
"""The newest Kubernetes release whose schemas the installed kubernetes-validate ships: supported ones only."""
OBJECTS = golden_objects()
IDS = [name for name, _ in OBJECTS]
WORKLOADS = [(name, obj) for name, obj in OBJECTS if obj["kind"] in ("Deployment", "LeaderWorkerSet")]
OVER_WORKLOADS = pytest.mark.parametrize(("name", "obj"), WORKLOADS, ids=[name for name, _ in WORKLOADS])
REPO = Path(__file__).resolve().parents[2]


@cache
def crd_schema(script: str) -> dict[str, Any]:
    """The published schema of a CRD from its pinned Go module: the LeaderWorkerSet's (sigs.k8s.io/lws),
    KEDA's ScaledObject (github.com/kedacore/keda/v2)."""
    crd = yaml.safe_load(module_crd(script).read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_golden_files_include_scaled_objects() -> None:
    assert any(obj["kind"] == "ScaledObject" for _, obj in OBJECTS)


@pytest.mark.parametrize(("name", "obj"), OBJECTS, ids=IDS)
def test_valid_against_published_schema(name: str, obj: dict[str, Any]) -> None:
    if obj["kind"] == "LeaderWorkerSet":
        jsonschema.validate(obj, crd_schema("lws-crd.sh"))
    elif obj["kind"] == "ScaledObject":
        jsonschema.validate(obj, crd_schema("keda-crd.sh"))
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("name", "obj"), OBJECTS, ids=IDS)
def test_pods_are_locked_down(name: str, obj: dict[str, Any]) -> None:
    for pod in pod_specs(obj):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["privileged"] is False
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "add" not in context["capabilities"]
            for env in container["env"]:
                if env["name"] in ("HF_TOKEN", "VLLM_API_KEY"):
                    assert "value" not in env
                    assert "secretKeyRef" in env["valueFrom"]


def _flag_value(args: list[str], flag: str) -> str:
    joined = " ".join(args)
    tokens = joined.replace("=", " ").split()
    return tokens[tokens.index(flag) + 1]


@OVER_WORKLOADS
def test_gpu_limits_agree_with_runtime_flags(name: str, obj: dict[str, Any]) -> None:
    """GPUs per replica = TP × PP = GPUs per pod × pods per group, read back from the objects themselves."""
    server = pod_specs(obj)[0]["containers"][0]
    args = server["args"]
    runtime = obj["metadata"]["labels"]["app.kubernetes.io/name"]
    tp_flag, pp_flag = (
        ("--tp_size", "--pp_size")
        if runtime == "tensorrt-llm"
        else ("--tensor-parallel-size", "--pipeline-parallel-size")
    )
    gpus = int(_flag_value(args, tp_flag)) * int(_flag_value(args, pp_flag))
    limits = server["resources"]["limits"]
    resource = next(key for key in limits if key.endswith("/gpu"))
    group = obj["spec"]["leaderWorkerTemplate"]["size"] if obj["kind"] == "LeaderWorkerSet" else 1
    assert int(limits[resource]) * group == gpus


@OVER_WORKLOADS
def test_every_flag_exists_in_the_pinned_runtime(name: str, obj: dict[str, Any]) -> None:
    runtime = runtime_spec(obj["metadata"]["labels"]["app.kubernetes.io/name"])
    server = pod_specs(obj)[0]["containers"][0]
    tokens = " ".join(server["args"]).split()
    flags = {token.split("=")[0] for token in tokens if token.startswith("--") and not token.startswith("--ray")}
    assert flags <= runtime.flag_names, flags - runtime.flag_names


def test_amd_pools_get_the_amd_resource_and_image() -> None:
    for name, obj in OBJECTS:
        if "amd" in name and obj["kind"] in ("Deployment", "LeaderWorkerSet"):
            container = pod_specs(obj)[0]["containers"][0]
            assert "amd.com/gpu" in container["resources"]["limits"]
            assert container["image"] == runtime_spec("vllm").image_for("amd")
    assert get_gpu("MI300X-192GB").resource_name == "amd.com/gpu"


def pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates of a workload with their metadata, the serving (leader) pod first."""
    if obj["kind"] == "Deployment":
        return [obj["spec"]["template"]]
    return [obj["spec"]["leaderWorkerTemplate"][role] for role in ("leaderTemplate", "workerTemplate")]


@OVER_WORKLOADS
def test_only_pods_serving_http_are_scraped(name: str, obj: dict[str, Any]) -> None:
    """Prometheus scrapes the runtime's own endpoint where it listens; a Ray worker serves no HTTP."""
    runtime = runtime_spec(obj["metadata"]["labels"]["app.kubernetes.io/name"])
    for template in pod_templates(obj):
        annotations = template["metadata"]["annotations"]
        ports = [port["containerPort"] for container in template["spec"]["containers"] for port in container["ports"]]
        if not ports:
            assert not [key for key in annotations if key.startswith("prometheus.io/")], annotations
            continue
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(ports[0]) == str(runtime.port)
        assert annotations["prometheus.io/path"] == runtime.metrics_path
    assert runtime_spec("tensorrt-llm").metrics_path == "/prometheus/metrics"  # /metrics there is JSON, not Prometheus


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's matchLabels against a pod's labels (the templates use no matchExpressions)."""
    assert set(selector) == {"matchLabels"}
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


CASES_WITH_PDB = sorted({name.split("/")[0] for name, obj in OBJECTS if obj["kind"] == "PodDisruptionBudget"})


@pytest.mark.parametrize("case", CASES_WITH_PDB)
def test_disruption_budget_covers_every_pod_of_the_workload(case: str) -> None:
    """One evicted LeaderWorkerSet worker restarts its group, so the budget must count workers too."""
    objects = {obj["kind"]: obj for name, obj in OBJECTS if name.startswith(f"{case}/")}
    budget = objects["PodDisruptionBudget"]["spec"]["selector"]
    workload = objects.get("Deployment") or objects["LeaderWorkerSet"]
    templates = pod_templates(workload)
    assert all(selects(budget, template["metadata"]["labels"]) for template in templates)
    service = {"matchLabels": objects["Service"]["spec"]["selector"]}
    assert [selects(service, template["metadata"]["labels"]) for template in templates] == [
        bool(template["spec"]["containers"][0]["ports"]) for template in templates
    ]
