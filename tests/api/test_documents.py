"""Bad input is refused with one line that names the file, the object and the field."""

import pytest

from modelplane.api.documents import load_documents
from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import ModelDeployment
from modelplane.catalog.models import resolve_architecture

VALID = """
apiVersion: modelplane.dev/v1alpha1
kind: ModelDeployment
metadata: {name: chat, namespace: team-a}
spec:
  model: {name: meta-llama/Llama-3.1-8B-Instruct}
  maxModelLen: 8192
"""


def test_valid_document_gets_defaults() -> None:
    inventory = load_documents(VALID, "md.yaml")
    deployment = inventory.deployments[0]
    assert isinstance(deployment, ModelDeployment)
    assert deployment.spec.gpu_memory_utilization == 90
    assert deployment.spec.max_concurrency == 1
    assert deployment.spec.placement.strategy.value == "cheapest"


def test_namespace_defaults_like_kubectl() -> None:
    text = VALID.replace("namespace: team-a", "labels: {}")
    assert load_documents(text, "md.yaml").deployments[0].metadata.namespace == "default"


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (("maxModelLen: 8192", "maxModelLen: 0"), "spec.maxModelLen", "greater than or equal to 1"),
        (("maxModelLen: 8192", "maxModelLen: many"), "spec.maxModelLen", "integer"),
        (("maxModelLen: 8192", "maxModelLen: 8192\n  quantization: int3"), "spec.quantization", "auto"),
        (("maxModelLen: 8192", "maxModelLen: 8192\n  replica: 2"), "spec.replica", "unknown field"),
        (("maxModelLen: 8192", "maxModelLen: 8192\n  gpuMemoryUtilization: 0.9"), "spec.gpuMemoryUtilization",
         "integer"),
        (("maxModelLen: 8192", "maxModelLen: 8192\n  env: [{name: 'A B', value: x}]"), "spec.env[0].name", "pattern"),
        (("kind: ModelDeployment", "kind: ModelDeploy"), "kind", "unknown kind"),
        (("modelplane.dev/v1alpha1", "modelplane.dev/v1"), "apiVersion", "v1alpha1"),
        (("name: chat,", "name: Chat_1,"), "metadata.name", ""),
    ],
    ids=["zero-len", "string-len", "bad-enum", "unknown-field", "float-percent", "env-name", "kind", "version",
         "name"],
)  # fmt: skip
def test_invalid_documents_name_the_field(edit: tuple[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        load_documents(VALID.replace(*edit), "repo/md.yaml")
    message = str(caught.value)
    assert message.startswith("repo/md.yaml: ")
    assert f": {field}: " in message
    assert words in message
    assert "\n" not in message


def test_yaml_errors_give_line_and_column() -> None:
    with pytest.raises(InvalidObjectError, match=r"repo/md.yaml: invalid YAML: line \d+, column \d+"):
        load_documents("spec: [unclosed", "repo/md.yaml")


def test_lists_and_multiple_documents() -> None:
    pool = """
apiVersion: modelplane.dev/v1alpha1
kind: GPUNodePool
metadata: {name: h100}
spec: {gpu: H100-SXM-80GB, gpusPerNode: 8, nodes: 2, location: on-prem, costPerGpuHour: "2.10"}
"""
    inventory = load_documents(f"{VALID}\n---\nkind: List\napiVersion: v1\nitems:\n" + "".join(
        f"- {line}\n" if index == 0 else f"  {line}\n" for index, line in enumerate(pool.strip().splitlines())
    ), "all.yaml")  # fmt: skip
    assert len(inventory.deployments) == 1
    assert [pool.metadata.name for pool in inventory.pools] == ["h100"]


def test_an_unquoted_date_stays_text_as_kubectl_sends_it() -> None:
    text = VALID.replace("namespace: team-a", "namespace: team-a, labels: {release: 2024-01-31}")
    assert load_documents(text, "md.yaml").deployments[0].metadata.labels == {"release": "2024-01-31"}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("maxModelLen: 8192", "maxModelLen: !!int 1" + "0" * 5000),
         "md.yaml: invalid YAML: line 7, column 16: an integer of 5,001 characters; Kubernetes integers have at most"
         " 19 digits"),
        (("maxModelLen: 8192", "maxModelLen: !!int eight"),
         "md.yaml: invalid YAML: line 7, column 16: not a valid int: 'eight'"),
        (("maxModelLen: 8192", "maxModelLen: 8192\n  env: !!set {A}"),
         "md.yaml: ModelDeployment team-a/chat: a YAML set value is not JSON: write it as a string"),
    ],
    ids=["tagged-integer-of-5000-digits", "tagged-int", "set"],
)  # fmt: skip
def test_values_python_cannot_build_or_json_cannot_carry_are_one_line(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        load_documents(VALID.replace(*edit), "md.yaml")
    assert str(caught.value) == expected


def test_nulls_are_dropped_as_the_api_server_drops_them() -> None:
    """A null for a field not declared nullable is as if absent; config.json keeps its nulls (they mean none)."""
    text = VALID.replace("maxModelLen: 8192", "maxModelLen: 8192\n  image: null\n  env: [{name: A, value: null}]\n"
                         "  placement: null").replace("Llama-3.1-8B-Instruct}",
                                                      "Llama-3.1-8B-Instruct, architecture: {sliding_window: null,"
                                                      " vocab_size: null}}")  # fmt: skip
    spec = load_documents(text, "md.yaml").deployments[0].spec
    assert spec.image is None
    assert spec.env[0].value == ""
    assert spec.placement.strategy.value == "cheapest"
    assert spec.model.architecture == {"sliding_window": None, "vocab_size": None}
    # vocab_size is required, so not nullable in the CRD: the API server drops its null and the catalog's is used.
    architecture, _ = resolve_architecture(spec.model.name, spec.model.architecture, "md.yaml")
    assert architecture.vocab_size == 128256
    with pytest.raises(InvalidObjectError, match=r"spec\.extraArgs\[0\]: Input should be a valid string"):
        load_documents(VALID.replace("maxModelLen: 8192", "maxModelLen: 8192\n  extraArgs: [null]"), "md.yaml")


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (("name: chat,", "name: chat, clusterName: x,"), "metadata.clusterName", "unknown field"),
        (("name: chat,", "name: chat, labels: {'team a': x},"), "metadata.labels.team a", "must be a label key"),
        (("name: chat,", "name: chat, labels: {team: 'a b'},"), "metadata.labels.team", "value must be a label value"),
        (("name: chat,", "name: chat, labels: {team: " + "x" * 64 + "},"), "metadata.labels.team",
         "value must be a label value"),
        (("name: chat,", "name: chat, annotations: {'-x': y},"), "metadata.annotations.-x",
         "must be an annotation key"),
        (("name: chat,", "name: chat, annotations: {x: " + "y" * 300_000 + "},"), "metadata.annotations",
         "more than the API server's 262,144"),
    ],
    ids=["unknown-field", "label-key", "label-value", "label-value-length", "annotation-key", "annotations-size"],
)  # fmt: skip
def test_metadata_is_checked_as_the_api_server_checks_it(edit: tuple[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        load_documents(VALID.replace(*edit), "md.yaml")
    assert caught.value.field == field
    assert words in caught.value.problem
