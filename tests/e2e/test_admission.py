"""Bad input is refused at admission by the CRD schema and CEL rules, and the message names the field."""

import json
from typing import Any

import pytest

from modelplane.api.documents import load_documents, parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.cli.inputs import check_references
from tests.e2e.conftest import LocalCluster, kubectl

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MD_BASE: dict[str, Any] = {"model": {"name": LLAMA}, "maxModelLen": 4096}
POOL_BASE: dict[str, Any] = {"gpu": "L4-24GB", "gpusPerNode": 1, "nodes": 2, "location": "cloud"}

MD_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("zero-len", {"maxModelLen": 0}, "spec.maxModelLen"),
    ("string-len", {"maxModelLen": "long"}, "spec.maxModelLen"),
    ("absurd-len", {"maxModelLen": 99999999}, "spec.maxModelLen"),
    ("negative-replicas", {"replicas": -1}, "spec.replicas"),
    ("too-many-replicas", {"replicas": 1001}, "spec.replicas"),
    ("zero-concurrency", {"maxConcurrency": 0}, "spec.maxConcurrency"),
    ("unknown-quantization", {"quantization": "int3"}, "spec.quantization"),
    ("unknown-kv-dtype", {"kvCacheDtype": "fp4"}, "spec.kvCacheDtype"),
    ("unknown-runtime", {"runtime": "sglang"}, "spec.runtime"),
    ("float-utilization", {"gpuMemoryUtilization": 0.9}, "spec.gpuMemoryUtilization"),
    ("utilization-100", {"gpuMemoryUtilization": 100}, "spec.gpuMemoryUtilization"),
    ("tp-not-power-of-two", {"parallelism": {"tensorParallel": 3}}, "spec.parallelism.tensorParallel"),
    (
        "tp-does-not-divide-the-heads",
        {
            "model": {"name": "example/custom-12-heads", "architecture": {"num_attention_heads": 12}},
            "parallelism": {"tensorParallel": 8},
        },
        "spec.parallelism.tensorParallel",
    ),
    ("tp-zero", {"parallelism": {"tensorParallel": 0}}, "spec.parallelism.tensorParallel"),
    (
        "absurd-layers",
        {"model": {"name": "acme/huge", "architecture": {"num_hidden_layers": 5_000_000}}},
        "spec.model.architecture.num_hidden_layers",
    ),
    (
        "absurd-vocab",
        {"model": {"name": "acme/huge", "architecture": {"vocab_size": 10**30}}},
        "spec.model.architecture.vocab_size",
    ),
    (
        "absurd-layer-list",
        {"model": {"name": "acme/huge", "architecture": {"layer_types": ["x"] * 5000}}},
        "spec.model.architecture.layer_types",
    ),
    (
        "zero-layers",
        {"model": {"name": LLAMA, "architecture": {"num_hidden_layers": 0}}},
        "spec.model.architecture.num_hidden_layers",
    ),
    (
        "heads-past-bound",
        {"model": {"name": LLAMA, "architecture": {"num_attention_heads": 8192}}},
        "spec.model.architecture.num_attention_heads",
    ),
    ("pp-too-deep", {"parallelism": {"pipelineParallel": 65}}, "spec.parallelism.pipelineParallel"),
    ("awq-without-awq-model", {"quantization": "awq"}, "spec.quantization"),
    ("unknown-field", {"replica": 2}, "replica"),
    ("workload-beyond-context", {"workload": {"inputTokens": 4000, "outputTokens": 200}}, "spec.workload"),
    ("workload-no-prompt", {"workload": {"inputTokens": 0, "outputTokens": 10}}, "spec.workload.inputTokens"),
    ("workload-no-output", {"workload": {"inputTokens": 10}}, "spec.workload.outputTokens"),
    (
        "rate-not-decimal",
        {"workload": {"inputTokens": 100, "outputTokens": 10, "requestsPerSecond": "fast"}},
        "spec.workload.requestsPerSecond",
    ),
    (
        "rate-zero",
        {"workload": {"inputTokens": 100, "outputTokens": 10, "requestsPerSecond": "0"}},
        "spec.workload.requestsPerSecond",
    ),
    (
        "rate-float",
        {"workload": {"inputTokens": 100, "outputTokens": 10, "requestsPerSecond": 2.5}},
        "spec.workload.requestsPerSecond",
    ),
    ("slo-without-workload", {"slo": {"interTokenLatency": "50ms"}}, "spec.slo"),
    ("slo-empty", {"workload": {"inputTokens": 100, "outputTokens": 10}, "slo": {}}, "spec.slo"),
    (
        "slo-not-a-duration",
        {"workload": {"inputTokens": 100, "outputTokens": 10}, "slo": {"interTokenLatency": "fast"}},
        "spec.slo.interTokenLatency",
    ),
    (
        "slo-zero",
        {"workload": {"inputTokens": 100, "outputTokens": 10}, "slo": {"timeToFirstToken": "0s"}},
        "spec.slo.timeToFirstToken",
    ),
    (
        "slo-beyond-an-hour",
        {"workload": {"inputTokens": 100, "outputTokens": 10}, "slo": {"timeToFirstToken": "2h"}},
        "spec.slo.timeToFirstToken",
    ),
    ("empty-model-name", {"model": {"name": ""}}, "spec.model.name"),
    ("model-name-with-spaces", {"model": {"name": "my model"}}, "spec.model.name"),
    ("oversized-model-name", {"model": {"name": "a" * 300}}, "spec.model.name"),
    ("unknown-strategy", {"placement": {"strategy": "random"}}, "spec.placement.strategy"),
    ("unknown-locality", {"placement": {"locality": "moon"}}, "spec.placement.locality"),
    ("empty-pool-list", {"placement": {"pools": []}}, "spec.placement.pools"),
    ("unknown-mode", {"mode": "Dry"}, "spec.mode"),
    ("bad-env-name", {"env": [{"name": "A B", "value": "x"}]}, "spec.env[0].name"),
    ("oversized-extra-arg", {"extraArgs": ["x" * 5000]}, "spec.extraArgs[0]"),
    ("unknown-service-type", {"serviceType": "Ingress"}, "spec.serviceType"),
    ("bad-secret-name", {"hfTokenSecretRef": {"name": "Bad_Name"}}, "spec.hfTokenSecretRef.name"),
    ("negative-pdb", {"podDisruptionBudget": {"maxUnavailable": -1}}, "spec.podDisruptionBudget.maxUnavailable"),
    ("bad-cpu-quantity", {"resources": {"cpu": "lots"}}, "spec.resources.cpu"),
    ("nbsp-in-image", {"image": "vllm/vllm-openai:v0.33.0\u00a0"}, "spec.image"),
    ("duplicate-env", {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "spec.env"),
    (
        "huge-pdb",
        {"podDisruptionBudget": {"maxUnavailable": 100_000_000_000}},
        "spec.podDisruptionBudget.maxUnavailable",
    ),
]
POOL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("zero-gpus-per-node", {"gpusPerNode": 0}, "spec.gpusPerNode"),
    ("negative-nodes", {"nodes": -3}, "spec.nodes"),
    ("unknown-location", {"location": "mars"}, "spec.location"),
    ("negative-cost", {"costPerGpuHour": "-1"}, "spec.costPerGpuHour"),
    ("float-cost", {"costPerGpuHour": 2.1}, "spec.costPerGpuHour"),
    ("available-beyond-pool", {"availableGpus": 3}, "availableGpus"),
    ("empty-gpu", {"gpu": ""}, "spec.gpu"),
    ("unknown-gpu", {"gpu": "H900-80GB"}, "spec.gpu"),
    ("selector-key-with-space", {"nodeSelector": {"gpu type": "l4"}}, "spec.nodeSelector"),
    ("selector-value-with-space", {"nodeSelector": {"gpu": "NVIDIA L4"}}, "spec.nodeSelector"),
    ("selector-prefix-too-long", {"nodeSelector": {"x" * 254 + "/gpu": "l4"}}, "spec.nodeSelector"),
    ("toleration-bad-key", {"tolerations": [{"key": "bad key", "operator": "Exists"}]}, "spec.tolerations[0].key"),
    ("toleration-keyless-equal", {"tolerations": [{"value": "x"}]}, "spec.tolerations[0].operator"),
    (
        "toleration-exists-with-value",
        {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]},
        "spec.tolerations[0].value",
    ),
    (
        "toleration-seconds-without-no-execute",
        {"tolerations": [{"key": "a", "tolerationSeconds": 5}]},
        "spec.tolerations[0].tolerationSeconds",
    ),
]


def dry_run(cluster: LocalCluster, body: dict[str, Any]) -> tuple[int, str]:
    result = kubectl(cluster, "create", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(body),
                     check=False)  # fmt: skip
    return result.returncode, result.stderr


@pytest.mark.parametrize(("edit", "field"), [(e, f) for _, e, f in MD_CASES], ids=[c[0] for c in MD_CASES])
def test_model_deployment_refused(local_cluster: LocalCluster, crds: None, namespace: str, edit: dict[str, Any],
                                  field: str) -> None:  # fmt: skip
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "bad", "namespace": namespace}, "spec": {**MD_BASE, **edit}}  # fmt: skip
    code, message = dry_run(local_cluster, body)
    assert code != 0
    assert field in message, message


@pytest.mark.parametrize("name", ["a" * 49, "9-starts-with-a-digit"])
def test_a_name_no_child_could_carry_is_refused(local_cluster: LocalCluster, crds: None, namespace: str,
                                                name: str) -> None:  # fmt: skip
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": MD_BASE}  # fmt: skip
    code, message = dry_run(local_cluster, body)
    assert code != 0
    assert "metadata.name must be at most 48 characters" in message, message
    with pytest.raises(InvalidObjectError, match=r"metadata\.name must be at most 48 characters"):
        parse_object(body, "test")


@pytest.mark.parametrize(("edit", "field"), [(e, f) for _, e, f in MD_CASES], ids=[c[0] for c in MD_CASES])
def test_the_cli_refuses_what_admission_refuses(edit: dict[str, Any], field: str) -> None:
    """As the CLI reads a file: the object's schema, then its model and config.json against the catalog."""
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "bad", "namespace": "ns"}, "spec": {**MD_BASE, **edit}}  # fmt: skip
    with pytest.raises(InvalidObjectError):
        check_references(load_documents(json.dumps(body), "test"), "test")


@pytest.mark.parametrize(("edit", "field"), [(e, f) for _, e, f in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_gpu_node_pool_refused(local_cluster: LocalCluster, crds: None, edit: dict[str, Any], field: str) -> None:
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "bad-pool"},
            "spec": {**POOL_BASE, **edit}}  # fmt: skip
    code, message = dry_run(local_cluster, body)
    assert code != 0
    assert field in message, message


@pytest.mark.parametrize(("edit", "field"), [(e, f) for _, e, f in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_the_cli_refuses_what_admission_refuses_in_a_pool(edit: dict[str, Any], field: str) -> None:
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "bad-pool"},
            "spec": {**POOL_BASE, **edit}}  # fmt: skip
    with pytest.raises(InvalidObjectError):
        check_references(load_documents(json.dumps(body), "test"), "test")


def test_a_valid_pool_with_selectors_and_tolerations_passes(local_cluster: LocalCluster, crds: None) -> None:
    tolerations = [{"operator": "Exists"}, {"key": "nvidia.com/gpu", "operator": "Exists"},
                   {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30}]  # fmt: skip
    spec = {
        **POOL_BASE,
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4", "pool": ""},
        "tolerations": tolerations,
    }
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "good-pool"},
            "spec": spec}  # fmt: skip
    code, message = dry_run(local_cluster, body)
    assert code == 0, message
    parse_object(body, "test")


def test_pool_gpu_and_location_are_immutable(local_cluster: LocalCluster, crds: None) -> None:
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "immutable-test"},
            "spec": POOL_BASE}  # fmt: skip
    kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(body))
    try:
        changed = {**body, "spec": {**POOL_BASE, "gpu": "L40S-48GB"}}
        result = kubectl(local_cluster, "apply", "-f", "-", input=json.dumps(changed), check=False)
        assert result.returncode != 0
        assert "immutable" in result.stderr
    finally:
        kubectl(local_cluster, "delete", "gpunodepool", "immutable-test", check=False)


def test_valid_objects_pass(local_cluster: LocalCluster, crds: None, namespace: str) -> None:
    spec = {**MD_BASE, "quantization": "awq", "model": {"name": "Qwen/Qwen2.5-72B-Instruct-AWQ"},
            "parallelism": {"tensorParallel": 4}}  # fmt: skip
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "good", "namespace": namespace}, "spec": spec}  # fmt: skip
    code, message = dry_run(local_cluster, body)
    assert code == 0, message


MD_YAML = """apiVersion: modelplane.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: md, namespace: {namespace}{metadata}}}
spec:
  model: {{name: {model}}}
  maxModelLen: {length}
  env: [{{name: A, value: {value}}}]
"""
# Plain scalars where PyYAML's YAML 1.1 tables and kubectl's go-yaml v2 disagree, and their neighbours.
LENGTHS = ["4096", "4096.0", "4.096e3", "0o10000", "010000", "0x1000", "1_024", "+4096", "0b1000000000000", "08",
           "4096.5", "1e400", "12:30", "1" + "0" * 30, "!!int 4096", "'4096'"]  # fmt: skip
VALUES = ["x", "y", "n", "yes", "0o17", "017", "1e3", "12:30", "2020-01-01", "~", ".inf", "0x10", "null", "'y'"]


def _stored_and_read(cluster: LocalCluster, text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The spec the API server stores (None: refused) and the one the CLI reads (None: refused as bad input)."""
    result = kubectl(cluster, "create", "--dry-run=server", "-o", "json", "-f", "-", input=text, check=False)
    stored = json.loads(result.stdout)["spec"] if result.returncode == 0 else None
    try:
        found = load_documents(text, "test")
        check_references(found, "test")
        read = found.deployments[0].to_wire()["spec"]
    except InvalidObjectError:
        read = None
    return stored, read


def test_an_unknown_model_is_admitted_while_the_cli_without_a_catalog_entry_cannot_plan_it(
    local_cluster: LocalCluster, crds: None, namespace: str
) -> None:
    """The one intended difference: catalog ConfigMaps and the Hub can make any name known to the operator later
    (it reports ModelUnknown meanwhile); the CLI plans now, so it needs the entry now (--catalog, --hub)."""
    text = MD_YAML.format(namespace=namespace, metadata="", model="acme/unknown", length=4096, value="x")
    stored, read = _stored_and_read(local_cluster, text)
    assert stored is not None
    assert stored["model"] == {"name": "acme/unknown"}
    assert read is None


@pytest.mark.parametrize("length", LENGTHS)
def test_the_cli_reads_a_number_as_kubectl_sends_it(local_cluster: LocalCluster, crds: None, namespace: str,
                                                    length: str) -> None:  # fmt: skip
    text = MD_YAML.format(namespace=namespace, metadata="", model=LLAMA, length=length, value="x")
    stored, read = _stored_and_read(local_cluster, text)
    assert (stored and stored["maxModelLen"]) == (read and read["maxModelLen"]), (stored, read)


@pytest.mark.parametrize("value", VALUES)
def test_the_cli_reads_a_string_as_kubectl_sends_it(local_cluster: LocalCluster, crds: None, namespace: str,
                                                    value: str) -> None:  # fmt: skip
    text = MD_YAML.format(namespace=namespace, metadata="", model=LLAMA, length=4096, value=value)
    stored, read = _stored_and_read(local_cluster, text)
    assert (stored and stored["env"]) == (read and read["env"]), (stored, read)


@pytest.mark.parametrize(
    ("metadata", "model"),
    [
        (", labels: {team: a}", LLAMA),
        (", labels: {'team a': a}", LLAMA),
        (", labels: {team: 'a b'}", LLAMA),
        (", annotations: {'-x': y}", LLAMA),
        (", clusterName: x", LLAMA),
        ("", LLAMA + ", architecture: {vocab_size: null, sliding_window: null}"),
        ("", LLAMA + ", architecture: {num_hidden_layers: 32.0}"),
    ],
    ids=["label", "label-key", "label-value", "annotation-key", "unknown-metadata", "nulls", "whole-float-layers"],
)  # fmt: skip
def test_the_cli_accepts_exactly_what_the_api_server_accepts(local_cluster: LocalCluster, crds: None, namespace: str,
                                                              metadata: str, model: str) -> None:  # fmt: skip
    text = MD_YAML.format(namespace=namespace, metadata=metadata, model=model, length=4096, value="x")
    stored, read = _stored_and_read(local_cluster, text)
    assert (stored is None) == (read is None), (stored, read)
