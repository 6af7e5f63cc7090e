"""The checked-in CRDs (and the chart's copies) are exactly what the models generate, and structural."""

from typing import Any

import pytest

from hack.gen_crds import expected_files
from modelplane.api.errors import InvalidObjectError
from modelplane.crd import all_crds
from tests.support import deployment, pool


@pytest.mark.parametrize("path", sorted(expected_files()), ids=lambda path: path.name + f"@{path.parent.name}")
def test_checked_in_files_match_the_models(path: Any) -> None:
    assert path.exists(), f"{path} missing: run make crds"
    assert path.read_text() == expected_files()[path], f"{path} is stale: run make crds"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(walk(value, f"{path}[{index}]"))
    return found


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_schema_is_structural(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert "anyOf" not in node, path
        if path.endswith(".properties") or path.endswith("x-kubernetes-validations"):
            continue
        if "properties" in node or "items" in node or "enum" in node:
            assert "type" in node, f"{path} has no type"


def test_printer_columns_and_names() -> None:
    md = all_crds()["modelplane.dev_modeldeployments.yaml"]["spec"]
    columns = [column["name"] for column in md["versions"][0]["additionalPrinterColumns"]]
    assert columns[:7] == ["Model", "Quant", "Pool", "GPUs", "TP", "PP", "Ready"]
    assert md["names"]["shortNames"] == ["md"]
    assert md["names"]["categories"] == ["modelplane"]
    pool_crd = all_crds()["modelplane.dev_gpunodepools.yaml"]["spec"]
    assert [c["name"] for c in pool_crd["versions"][0]["additionalPrinterColumns"]][:4] == [
        "GPU", "Nodes", "Free GPUs", "Location"]  # fmt: skip
    assert pool_crd["scope"] == "Cluster"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"parallelism": {"tensorParallel": 3}}, "spec.parallelism.tensorParallel must divide"),
        ({"quantization": "awq"}, "pre-quantized"),
        ({"quantization": "gptq", "model": {"name": "org/plain-model", "architecture": {"hidden_size": 1}}},
         "pre-quantized"),
    ],
)  # fmt: skip
def test_cel_rules_are_mirrored_in_the_cli(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidObjectError, match=words):
        deployment(**spec)


def test_cel_mirror_allows_what_admission_allows() -> None:
    deployment(parallelism={"tensorParallel": 6},
               model={"name": "org/model", "architecture": {"num_attention_heads": 48}})  # fmt: skip
    deployment(quantization="awq", model={"name": "Qwen/Qwen2.5-72B-Instruct-AWQ"})
    with pytest.raises(InvalidObjectError, match="availableGpus"):
        pool("p", "L4-24GB", 1, 2, availableGpus=3)


@pytest.mark.parametrize(
    ("architecture", "tensor_parallel", "allowed"),
    [
        (None, 8, True),
        (None, 64, True),
        (None, 3, False),
        (None, 6, False),
        ({"hidden_size": 4096}, 6, False),
        # Given heads decide alone: 8 does not divide 12, though it is a power of two; 6 and 3 do.
        ({"num_attention_heads": 12}, 8, False),
        ({"num_attention_heads": 12}, 6, True),
        ({"num_attention_heads": 12}, 3, True),
        ({"num_attention_heads": 48}, 6, True),
        ({"num_attention_heads": 40}, 16, False),
    ],
)
def test_tensor_parallel_divides_given_heads_else_is_a_power_of_two(
    architecture: dict[str, Any] | None, tensor_parallel: int, allowed: bool
) -> None:
    model: dict[str, Any] = {"name": "org/model", **({"architecture": architecture} if architecture else {})}
    if allowed:
        deployment(model=model, parallelism={"tensorParallel": tensor_parallel})
        return
    with pytest.raises(InvalidObjectError, match=r"spec\.parallelism\.tensorParallel must divide"):
        deployment(model=model, parallelism={"tensorParallel": tensor_parallel})


def test_tensor_parallel_rule_reads_the_heads_only_when_given() -> None:
    """The CEL rule is a conditional on has(num_attention_heads), not an "or" that lets powers of two through."""
    rule = str(next(rule for rule in _validations() if rule["fieldPath"] == ".parallelism.tensorParallel")["rule"])
    condition, _, branches = rule.partition(" ? ")
    assert "has(self.model.architecture.num_attention_heads)" in condition
    divides, _, powers = branches.partition(" : ")
    assert "% self.parallelism.tensorParallel == 0" in divides
    assert "[1, 2, 4, 8, 16, 32, 64]" in powers


def _validations() -> list[dict[str, Any]]:
    schema = all_crds()["modelplane.dev_modeldeployments.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validations: list[dict[str, Any]] = schema["properties"]["spec"]["x-kubernetes-validations"]
    return validations


def test_any_model_name_is_admitted_as_catalog_configmaps_and_the_hub_can_resolve_it_later() -> None:
    model = all_crds()["modelplane.dev_modeldeployments.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["properties"]["model"]  # fmt: skip
    assert "x-kubernetes-validations" not in model
