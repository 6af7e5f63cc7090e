"""The operator sizes a model it has never heard of from a model catalog ConfigMap, as an air-gapped GitOps
repository would add one: `modelplane catalog add` on real safetensors files, the ConfigMap applied in the
operator's namespace (read with the chart's namespaced Role), the deployment planned without an operator restart."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.catalog.checkpoints import TINY_LLAMA, llama_tensors, write_model
from tests.e2e.operator_support import OPERATOR_NAMESPACE, Cluster, model_deployment

MODEL = "acme/e2e-catalog-tiny"


def catalog_configmap(tmp_path: Path) -> dict[str, Any]:
    directory = write_model(tmp_path / "tiny", TINY_LLAMA, llama_tensors(TINY_LLAMA))
    result = subprocess.run([str(Path(sys.executable).with_name("modelplane")), "catalog", "add", str(directory),
                             "--name", MODEL, "-o", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    configmap: dict[str, Any] = json.loads(result.stdout)
    return configmap


def test_an_unknown_model_is_planned_once_its_catalog_configmap_is_applied(
    kube: Cluster, namespace: str, operator: Any, tmp_path: Path
) -> None:
    kube.create_md(model_deployment("tiny", namespace, model={"name": MODEL}))
    kube.wait_condition(namespace, "tiny", "Planned", "False")
    unknown = kube.condition(namespace, "tiny", "Planned")
    assert unknown["reason"] == "ModelUnknown", unknown["message"]
    assert f"modelplane catalog add {MODEL} -o yaml" in unknown["message"]
    assert "enable Hub resolution" in unknown["message"]

    configmap = catalog_configmap(tmp_path)
    kube.core.create_namespaced_config_map(OPERATOR_NAMESPACE, configmap)
    try:
        md = kube.wait_condition(namespace, "tiny", "Planned", "True", timeout=90)
        plan = md["status"]["plan"]
        assert (plan["tensorParallel"], plan["quantization"]) == (1, "bf16")
        header_bytes = sum(_tensor_bytes(configmap))
        assert plan["memory"]["weightBytesPerGpu"] == header_bytes  # what the headers hold, nothing guessed
        assert kube.exists(lambda: kube.deployment(namespace, "tiny"))
    finally:
        kube.core.delete_namespaced_config_map(configmap["metadata"]["name"], OPERATOR_NAMESPACE)
    kube.create_md(model_deployment("again", namespace, model={"name": MODEL}))
    kube.wait_condition(namespace, "again", "Planned", "False")
    assert kube.condition(namespace, "again", "Planned")["reason"] == "ModelUnknown"


def _tensor_bytes(configmap: dict[str, Any]) -> list[int]:
    entry = yaml.safe_load(configmap["data"]["model.yaml"])
    return [group["bytes"] for group in entry["tensors"]["groups"]]


def test_a_configmap_without_the_label_is_not_a_catalog(kube: Cluster, namespace: str, operator: Any,
                                                        tmp_path: Path) -> None:  # fmt: skip
    configmap = catalog_configmap(tmp_path)
    configmap["metadata"] = {"name": "not-a-catalog-tiny"}
    kube.core.create_namespaced_config_map(OPERATOR_NAMESPACE, configmap)
    try:
        kube.create_md(model_deployment("tiny", namespace, model={"name": MODEL}))
        kube.wait_condition(namespace, "tiny", "Planned", "False")
        assert kube.condition(namespace, "tiny", "Planned")["reason"] == "ModelUnknown"
    finally:
        kube.core.delete_namespaced_config_map("not-a-catalog-tiny", OPERATOR_NAMESPACE)
