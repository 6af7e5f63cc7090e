"""The Helm chart: lints, renders, refuses unknown values, and grants least privilege."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import helm_binary

CHART = Path(__file__).resolve().parents[1] / "charts" / "modelplane"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, check=check)


def render(*values: str) -> list[dict[str, Any]]:
    flags = [arg for value in values for arg in ("--set", value)]
    output = helm("template", "modelplane", str(CHART), "--namespace", "modelplane-system", *flags).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def test_lint() -> None:
    result = helm("lint", str(CHART), "--strict", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_values_are_refused() -> None:
    result = helm("template", "modelplane", str(CHART), "--set", "replicaz=2", check=False)
    assert result.returncode != 0
    assert "replicaz" in result.stderr


def test_crds_follow_the_switches() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in render()}
    assert ("CustomResourceDefinition", "modeldeployments.modelplane.dev") in kinds
    assert not [d for d in render("crds.enabled=false") if d["kind"] == "CustomResourceDefinition"]
    kept = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert all(d["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for d in kept)
    dropped = [d for d in render("crds.keep=false") if d["kind"] == "CustomResourceDefinition"]
    assert all("helm.sh/resource-policy" not in (d["metadata"].get("annotations") or {}) for d in dropped)


def test_chart_crds_are_the_generated_ones() -> None:
    checked_in = {yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())
                  for p in (CHART.parents[1] / "crds").glob("*.yaml")}  # fmt: skip
    for document in render():
        if document["kind"] == "CustomResourceDefinition" and document["metadata"]["name"] in checked_in:
            assert document["spec"] == checked_in[document["metadata"]["name"]]["spec"]


def cluster_role() -> dict[str, Any]:
    return next(d for d in render() if d["kind"] == "ClusterRole")


@pytest.mark.parametrize("forbidden", ["escalate", "bind", "impersonate", "*"])
def test_role_grants_no_dangerous_verbs(forbidden: str) -> None:
    for rule in cluster_role()["rules"]:
        assert forbidden not in rule["verbs"], rule


def test_role_has_no_wildcards_and_no_secrets() -> None:
    for rule in cluster_role()["rules"]:
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"]


def test_replicas_turn_on_peering() -> None:
    single = next(d for d in render() if d["kind"] == "Deployment")
    assert "--standalone" in single["spec"]["template"]["spec"]["containers"][0]["args"]
    many = render("replicas=2")
    operator = next(d for d in many if d["kind"] == "Deployment")
    assert "--peering=modelplane" in operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any(d["kind"] == "ClusterKopfPeering" for d in many)


def test_operator_pod_is_locked_down() -> None:
    pod = next(d for d in render() if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]


def test_metrics_port_service_and_optional_service_monitor() -> None:
    documents = render()
    container = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELPLANE_METRICS_PORT", "value": "9090"} in container["env"]
    assert {"name": "metrics", "containerPort": 9090} in container["ports"]
    service = next(d for d in documents if d["kind"] == "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    assert service["spec"]["selector"].items() <= container_labels(documents).items()
    assert not [d for d in documents if d["kind"] == "ServiceMonitor"]

    monitored = render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom")
    monitor = next(d for d in monitored if d["kind"] == "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def container_labels(documents: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def test_metrics_can_be_turned_off() -> None:
    documents = render("metrics.port=0", "metrics.serviceMonitor.enabled=true")
    container = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELPLANE_METRICS_PORT", "value": "0"} in container["env"]
    assert [port["name"] for port in container["ports"]] == ["health"]
    assert not [d for d in documents if d["kind"] in ("Service", "ServiceMonitor")]
