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
        ({"parallelism": {"tensorParallel": 3}}, "power of two"),
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
        pool("p", "L4-24GB", 1, 2, available_gpus=3)
