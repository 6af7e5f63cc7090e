"""An absurd architecture is refused within the operator chart's memory limit, instead of exhausting it.

5,000,000 layers crash-looped the operator out of memory (chart limit 1 GiB): planning built per-layer tuples.
Each case runs in a child process whose address space is capped at that limit, as the CLI and as the operator's
decision, so a regression shows up as a MemoryError here rather than as an OOM kill in a cluster.
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHART_MEMORY_LIMIT = 2**30
"""charts/modelplane/values.yaml: resources.limits.memory 1Gi."""
ARCHITECTURE = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
                "intermediate_size": 14336, "vocab_size": 128256}  # fmt: skip
REPO = Path(__file__).resolve().parents[2]
DECIDE = """
import json, sys
from modelplane.operator.decide import decide
from modelplane.planning.inventory import what_if_pools
from modelplane.planning.service import offers_for
decision = decide(json.loads(sys.argv[1]), lambda: offers_for(what_if_pools()))
planned = decision.conditions["Planned"]
print(planned.reason, planned.message)
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHART_MEMORY_LIMIT, CHART_MEMORY_LIMIT))


def _run(args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, preexec_fn=_cap_memory, timeout=120, cwd=REPO)
    return result, time.perf_counter() - started


def _deployment(layers: int) -> dict[str, object]:
    return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "huge", "namespace": "x", "generation": 1, "uid": "u"},
            "spec": {"model": {"name": "acme/huge", "architecture": {**ARCHITECTURE, "num_hidden_layers": layers}},
                     "maxModelLen": 4096}}  # fmt: skip


def _refusal(layers: int) -> str:
    return (f"config field 'num_hidden_layers' is {layers}, above the largest modelplane sizes (1,024;"
            " catalog/data/architecture_bounds.yaml): use the model's real config.json")  # fmt: skip


@pytest.mark.parametrize("layers", [10**6, 5 * 10**6, 10**7])
def test_the_cli_refuses_it_in_one_line(tmp_path: Path, layers: int) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(json.dumps(_deployment(layers)))
    result, elapsed = _run([sys.executable, "-m", "modelplane", "plan", str(path)])
    assert result.returncode == 1, result.stderr
    assert result.stderr == (f"modelplane: error: {path}: ModelDeployment x/huge: spec.model.architecture: "
                             f"{_refusal(layers)}\n")  # fmt: skip
    assert elapsed < 20


def test_the_operator_refuses_it_as_invalid_spec() -> None:
    result, elapsed = _run([sys.executable, "-c", DECIDE, json.dumps(_deployment(5 * 10**6))])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("InvalidSpec ")
    assert _refusal(5 * 10**6) in result.stdout
    assert elapsed < 20


LARGEST = {"model_type": "llama", "num_hidden_layers": 1024, "hidden_size": 131072, "num_attention_heads": 4096,
           "num_key_value_heads": 4096, "intermediate_size": 1048576, "vocab_size": 16777216}  # fmt: skip
LARGEST_MOE = {**LARGEST, "model_type": "mixtral", "num_local_experts": 65536, "num_experts_per_tok": 8}


@pytest.mark.parametrize("architecture", [LARGEST, LARGEST_MOE], ids=["dense", "moe"])
def test_the_largest_admitted_architecture_is_planned_within_the_limit(
    tmp_path: Path, architecture: dict[str, object]
) -> None:
    """Every number at its bound is admitted, so planning it must stay within the chart's limit: the bounds are
    the per-plan budget. It fits no GPU, and both the CLI and the operator say so rather than run out."""
    body = _deployment(1)
    body["spec"]["model"]["architecture"] = architecture  # type: ignore[index]
    path = tmp_path / "largest.yaml"
    path.write_text(json.dumps(body))
    cli, cli_seconds = _run([sys.executable, "-m", "modelplane", "plan", str(path)])
    assert cli.returncode == 2, cli.stderr  # infeasible: exit 2, with the table of why
    assert "infeasible" in cli.stdout
    decided, decide_seconds = _run([sys.executable, "-c", DECIDE, json.dumps(body)])
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout.startswith("InsufficientMemory "), decided.stdout
    assert max(cli_seconds, decide_seconds) < 20
