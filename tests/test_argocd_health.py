"""The chart's Argo CD health checks, run by Argo CD's own util/lua (tests/health.py) against statuses shaped
exactly as the operator writes them."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.health import HEALTH_SCRIPTS, REPO, argocd_health
from tests.operator.test_kstatus import SCENARIOS

FIXTURES = Path(__file__).parent / "fixtures" / "status"
README = REPO / "charts" / "modelplane" / "README.md"

EXPECTED = {
    "modeldeployment-rolling-out": ("Progressing", "RollingOut: rolling out the serving workload"),
    "modeldeployment-ready": ("Healthy", "Available: 1/1 replicas ready"),
    "modeldeployment-rollout-stalled": ("Degraded", 'RolloutStalled: ReplicaSet "chat-7c9f8d6b5" has timed out'),
    "modeldeployment-infeasible": ("Degraded", "InsufficientMemory: 2 pool(s) (big, cheap)"),
    "modeldeployment-infeasible-edit": ("Degraded", "would fit: maxModelLen"),
    "modeldeployment-invalid-spec": ("Degraded", "InvalidSpec: spec.maxModelLen"),
    "modeldeployment-plan-only": ("Healthy", "PlanOnly: mode PlanOnly"),
    "modeldeployment-plan-outdated": ("Healthy", "; BetterPlanAvailable: pool cheap"),
    "modeldeployment-stale": ("Progressing", "generation 2 not yet observed (status is of generation 1)"),
    "modeldeployment-scaled-to-zero": ("Healthy", "ScaledToZero: replicas is 0"),
    "modeldeployment-bursting": ("Healthy", "Available: 12/12 replicas ready on 2 pools"),
    "modeldeployment-replicas-waiting": ("Healthy", "; InsufficientCapacity: 24 of 40 replica(s) placed"),
    "modeldeployment-no-capacity": ("Degraded", "InsufficientCapacity: 0 of 2 replica(s) placed"),
    "gpunodepool-ready": ("Healthy", "2/2 nodes ready, 1/2 GPUs free"),
    "gpunodepool-joining": ("Progressing", "1/2 nodes ready, 0/1 GPUs free"),
    "gpunodepool-no-nodes": ("Degraded", "no ready node matches spec.nodeSelector: 0/2 nodes ready"),
    "gpunodepool-unobserved": ("Progressing", "waiting for the modelplane operator"),
    "gpunodepool-stale": ("Progressing", "generation 2 not yet observed"),
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def test_every_fixture_has_an_expectation() -> None:
    assert {path.stem for path in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health_of_each_state(name: str) -> None:
    status, message = EXPECTED[name]
    health = argocd_health(fixture(name))
    assert health.status == status
    assert message in health.message


def _shape(obj: dict[str, Any]) -> tuple[object, ...]:
    conditions = [(c["type"], c["status"], c["reason"], c["observedGeneration"]) for c in obj["status"]["conditions"]]
    return obj["metadata"]["generation"], sorted(obj["status"]), conditions


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_fixtures_are_what_the_operator_writes(scenario: str) -> None:
    """Fields, condition types, statuses and reasons as the operator's own code produces them today."""
    assert _shape(fixture(f"modeldeployment-{scenario}")) == _shape(SCENARIOS[scenario]())


@pytest.mark.parametrize("status", [{"observedGeneration": 1}, {"observedGeneration": 1, "conditions": [
    {"type": "Ready", "status": "False", "reason": "ReplicasNotReady"}]}])  # fmt: skip
def test_partial_statuses_are_progressing(status: dict[str, Any]) -> None:
    obj = {**fixture("modeldeployment-ready"), "status": status}
    assert argocd_health(obj).status == "Progressing"


def test_readme_snippet_is_the_shipped_lua() -> None:
    """The argocd-cm snippet people copy is byte for byte the Lua these tests execute."""
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)]
    [config] = [block for block in blocks if block.get("metadata", {}).get("name") == "argocd-cm"]
    for kind, script in HEALTH_SCRIPTS.items():
        assert config["data"][f"resource.customizations.health.modelplane.dev_{kind}"] == script.read_text()
