"""`modelplane render` writes what the operator would apply, and refuses inputs it could only render wrongly."""

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from modelplane.cli import app

REPO = Path(__file__).resolve().parents[2]
POOLS = REPO / "examples" / "pools" / "hybrid.yaml"
runner = CliRunner()


def manifest(name: str, namespace: str = "ns", **spec: Any) -> dict[str, Any]:
    spec = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "maxModelLen": 4096, **spec}
    return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def write(path: Path, *documents: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


def render(*args: str | Path) -> Result:
    return runner.invoke(app, ["render", *map(str, args)])


def written(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def error_line(result: Result) -> str:
    """The one line a failed render prints; it never prints a traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_plan_only_deployments_are_not_rendered(tmp_path: Path) -> None:
    files = write(tmp_path / "md.yaml", manifest("served"), manifest("review", mode="PlanOnly"))
    result = render(files, "--pools", POOLS, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    served = [
        "ns/served/deployment.yaml",
        "ns/served/kustomization.yaml",
        "ns/served/networkpolicy.yaml",
        "ns/served/service.yaml",
    ]
    assert written(tmp_path / "out") == ["kustomization.yaml", *served]
    assert result.stderr == "modelplane: ns/review: mode PlanOnly, nothing rendered\n"


def test_plan_only_alone_renders_an_empty_stream_and_cannot_fail(tmp_path: Path) -> None:
    """An infeasible PlanOnly deployment is the operator's to report; it creates nothing, so nothing fails."""
    files = write(tmp_path / "md.yaml", manifest("huge", mode="PlanOnly", maxModelLen=2_000_000, maxConcurrency=65536))
    result = render(files, "--pools", POOLS, "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == "modelplane: ns/huge: mode PlanOnly, nothing rendered\n"


def test_a_deployment_in_a_pools_file_is_bad_input(tmp_path: Path) -> None:
    """Skipping it would leave it out of the GitOps output, and the GitOps tool would prune its servers."""
    pools = write(tmp_path / "pools.yaml", *yaml.safe_load_all(POOLS.read_text()), manifest("stray", "other"))
    files = write(tmp_path / "md.yaml", manifest("served"))
    result = render(files, "--pools", pools, "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith(f"modelplane: error: {pools}")
    assert "ModelDeployment other/stray" in line
    assert "--pools" in line
    assert not (tmp_path / "out").exists()


def test_one_namespace_and_name_in_two_files_is_bad_input(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", manifest("chat"))
    second = write(tmp_path / "b.yaml", manifest("chat", maxModelLen=8192))
    result = render(first, second, "--pools", POOLS, "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = error_line(result)
    assert str(first) in line
    assert str(second) in line
    assert "ModelDeployment ns/chat" in line
    assert ".modelplane-render-" not in line
    assert not (tmp_path / "out").exists()


def test_the_same_name_in_two_namespaces_renders_both(tmp_path: Path) -> None:
    files = write(tmp_path / "md.yaml", manifest("chat", "a"), manifest("chat", "b"))
    result = render(files, "--pools", POOLS, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert {path.split("/")[0] for path in written(tmp_path / "out") if "/" in path} == {"a", "b"}


def test_an_unrenderable_setting_names_the_deployment_and_the_field(tmp_path: Path) -> None:
    bad = manifest("bad", extraArgs=["--seed", "1", "--tensor_parallel_size=2"])
    files = write(tmp_path / "md.yaml", manifest("ok"), bad)
    result = render(files, "--pools", POOLS, "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith("modelplane: error: ModelDeployment ns/bad: spec.extraArgs[2]: --tensor_parallel_size")
    assert not (tmp_path / "out").exists()


def test_a_repeated_renderer_variable_is_bad_input(tmp_path: Path) -> None:
    files = write(tmp_path / "md.yaml", manifest("bad", hfTokenSecretRef={"name": "hf"},
                                                  env=[{"name": "HF_TOKEN", "value": "hf_plaintext"}]))  # fmt: skip
    result = render(files, "--pools", POOLS, "-o", "-")
    assert result.exit_code == 1
    assert error_line(result).startswith("modelplane: error: ModelDeployment ns/bad: spec.env[0].name: HF_TOKEN")
    assert "hf_plaintext" not in result.output
