"""The CLI contract: commands, JSON fields, exit codes, one-line errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelplane.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
runner = CliRunner()

MD = """apiVersion: modelplane.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}, namespace: ns}}
spec:
  model: {{name: {model}}}
  maxModelLen: {length}
"""


def write(tmp_path: Path, text: str, name: str = "md.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_plan_json_contract(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", length=8192))
    result = runner.invoke(app, ["plan", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert {"name", "namespace", "feasible", "plan", "candidates"} <= set(entry)
    plan = entry["plan"]
    assert {"pool", "gpu", "tensorParallel", "pipelineParallel", "gpusPerReplica", "nodesPerReplica", "replicas",
            "quantization", "runtime", "maxModelLen", "memory", "estimates"} <= set(plan)  # fmt: skip
    assert {"weightBytesPerGpu", "kvCacheBytesPerToken", "overheadBytesPerGpu", "kvCacheTokens",
            "budgetBytesPerGpu"} <= set(plan["memory"])  # fmt: skip
    assert {"decodeTokensPerSecond", "costPerHour", "costPerMillionTokens"} <= set(plan["estimates"]) | {
        "costPerHour", "costPerMillionTokens"}  # fmt: skip
    for candidate in entry["candidates"]:
        assert isinstance(candidate["feasible"], bool)
        for reason in candidate["reasons"]:
            assert set(reason) == {"code", "message"}


def test_plan_exit_2_when_infeasible(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", length=8192)
                 + "  quantization: int8\n")  # fmt: skip
    result = runner.invoke(app, ["plan", str(path), "-o", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)[0]["plan"] is None


def test_plan_table_for_people() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLES / "deployments" / "llama-8b-l4.yaml")])
    assert result.exit_code == 0, result.output
    assert "weights" in result.stdout
    assert "KV cache" in result.stdout


def test_estimate_contract() -> None:
    result = runner.invoke(app, ["estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["parameters"] == 8_030_261_248
    assert data["weightBytes"] == 2 * 8_030_261_248
    assert data["kvCacheBytesPerToken"] == 131_072


@pytest.mark.parametrize("report", ["markdown", "svg"])
def test_estimate_refuses_plan_only_formats(report: str) -> None:
    result = runner.invoke(app, ["estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "-o", report])
    assert result.exit_code == 2
    assert "--output" in result.output


def test_estimate_from_config_json(tmp_path: Path) -> None:
    config = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}  # fmt: skip
    path = write(tmp_path, json.dumps(config), "config.json")
    result = runner.invoke(app, ["estimate", "--model-config", str(path), "--kv-cache-dtype", "fp8", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kvCacheBytesPerToken"] == 65_536


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [", "invalid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "unknown kind"),
        (MD.format(name="a", model="acme/unknown-model", length=8192), "not in the catalog"),
        (MD.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", length=-5), "spec.maxModelLen"),
        ("apiVersion: modelplane.dev/v1alpha1\nkind: GPUNodePool\nmetadata: {name: p}\n"
         "spec: {gpu: H900, gpusPerNode: 8, nodes: 1, location: cloud}\n", "unknown GPU"),
    ],
    ids=["yaml", "kind", "model", "number", "gpu"],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    result = subprocess.run([sys.executable, "-m", "modelplane", "plan", str(path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert expected in lines[0]


def test_config_json_missing_fields_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"hidden_size": 4096}), "config.json")
    result = runner.invoke(app, ["estimate", "--model-config", str(path)])
    assert result.exit_code == 1
    assert "num_hidden_layers" in result.output
    assert str(path) in result.output


def test_render_directory_and_stream(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="chat", model="meta-llama/Llama-3.1-8B-Instruct", length=4096))
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == ["kustomization.yaml", "ns/chat/deployment.yaml", "ns/chat/kustomization.yaml",
                     "ns/chat/service.yaml"]  # fmt: skip
    stream = runner.invoke(app, ["render", str(path), "-o", "-"])
    assert stream.exit_code == 0
    assert stream.stdout.count("\n---\n") + stream.stdout.startswith("---\n") == 2
    assert (out / "ns/chat/deployment.yaml").read_text() in stream.stdout


def test_render_infeasible_writes_nothing(tmp_path: Path) -> None:
    good = MD.format(name="ok", model="meta-llama/Llama-3.1-8B-Instruct", length=4096)
    bad = MD.format(name="bad", model="meta-llama/Llama-3.1-8B-Instruct", length=4096) + "  quantization: int8\n"
    path = write(tmp_path, good + "---\n" + bad)
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert "ns/bad" in result.stderr
    assert not out.exists() or not list(out.rglob("*.yaml"))


def test_catalog_lists() -> None:
    gpus = runner.invoke(app, ["catalog", "gpus", "-o", "json"])
    assert gpus.exit_code == 0
    ids = {gpu["id"] for gpu in json.loads(gpus.stdout)}
    assert {"H100-SXM-80GB", "MI300X-192GB", "L4-24GB"} <= ids
    models = runner.invoke(app, ["catalog", "models", "-o", "json"])
    assert len(json.loads(models.stdout)) >= 20


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_fuzzed_yaml_never_tracebacks(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text, "fuzz.yaml")
    result = runner.invoke(app, ["plan", str(path), "-o", "json"])
    assert result.exit_code in (0, 1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    config=st.dictionaries(
        st.sampled_from(
            [
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "vocab_size",
                "intermediate_size",
                "num_key_value_heads",
                "head_dim",
                "num_local_experts",
                "quantization_config",
            ]
        ),
        st.one_of(st.integers(-5, 10**6), st.text(max_size=5), st.none(), st.booleans()),
    )
)
def test_fuzzed_config_json_never_tracebacks(tmp_path: Path, config: dict[str, object]) -> None:
    path = write(tmp_path, json.dumps(config), "config.json")
    result = runner.invoke(app, ["estimate", "--model-config", str(path), "-o", "json"])
    assert result.exit_code in (0, 1)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_markdown_report_for_pull_requests(tmp_path: Path) -> None:
    good = MD.format(name="ok", model="meta-llama/Llama-3.1-8B-Instruct", length=4096)
    bad = MD.format(name="bad", model="meta-llama/Llama-3.1-8B-Instruct", length=4096) + "  quantization: int8\n"
    path = write(tmp_path, good + "---\n" + bad)
    result = runner.invoke(app, ["plan", str(path), "-o", "markdown"])
    assert result.exit_code == 2
    table = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(table) == 2
    assert "**infeasible**" in next(line for line in table if "ns/bad" in line)
    assert "UnsupportedQuantization" in result.stdout
    assert "- → quantization" in result.stdout
    onprem = runner.invoke(app, ["plan", str(EXAMPLES / "deployments" / "infeasible.yaml"), "--pools",
                                 str(EXAMPLES / "pools"), "-o", "markdown"])  # fmt: skip
    assert "<details><summary>Rejected pools</summary>" in onprem.stdout
    assert "- `l4-cloud`: LocalityPolicy" in onprem.stdout
