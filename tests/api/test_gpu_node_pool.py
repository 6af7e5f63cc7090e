"""A pool's nodeSelector and tolerations are copied onto serving pods: refuse what the API server refuses there."""

from typing import Any

import pytest

from modelplane.api.documents import parse_object
from modelplane.api.errors import InvalidObjectError
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.labels import is_label_key, is_label_value

SPEC: dict[str, Any] = {"gpu": "L4-24GB", "gpusPerNode": 1, "nodes": 2, "location": "cloud"}


def pool(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "p"},
            "spec": {**SPEC, **spec}}  # fmt: skip


@pytest.mark.parametrize(
    "key",
    ["gpu", "nvidia.com/gpu.product", "a_b.c-d", "A" * 63, "x" * 253 + "/" + "y" * 63, "kubernetes.io/hostname"],
)
def test_label_keys_the_api_server_accepts(key: str) -> None:
    assert is_label_key(key)


@pytest.mark.parametrize(
    "key",
    ["", "gpu type", "-gpu", "gpu-", "a" * 64, "x" * 254 + "/y", "Upper.Case/gpu", "a/b/c", "/gpu", "gpu/", "gpu\n",
     "gpu\u00a0"],
)  # fmt: skip
def test_label_keys_the_api_server_refuses(key: str) -> None:
    assert not is_label_key(key)


@pytest.mark.parametrize(("value", "valid"), [("", True), ("NVIDIA-L4", True), ("a" * 63, True), ("a" * 64, False),
                                              ("NVIDIA L4", False), ("-x", False), ("x\n", False)])  # fmt: skip
def test_label_values(value: str, valid: bool) -> None:
    assert is_label_value(value) is valid


def test_valid_selectors_and_tolerations_pass() -> None:
    parsed = parse_object(pool(
        nodeSelector={"nvidia.com/gpu.product": "NVIDIA-L4", "pool": ""},
        tolerations=[{"operator": "Exists"}, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                     {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30}],
    ), "test")  # fmt: skip
    assert isinstance(parsed, GPUNodePool)
    assert len(parsed.spec.tolerations) == 3


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"nodeSelector": {"gpu type": "l4"}}, "spec.nodeSelector", "nodeSelector keys must each be a label key"),
        ({"nodeSelector": {"gpu": "NVIDIA L4"}}, "spec.nodeSelector", "nodeSelector values must each be a label value"),
        ({"nodeSelector": {"gpu": "x" * 64}}, "spec.nodeSelector.gpu", "at most 63 characters"),
        ({"tolerations": [{"key": "bad key"}]}, "spec.tolerations[0].key", "toleration key must be a label key"),
        ({"tolerations": [{}]}, "spec.tolerations[0].operator", "a toleration without a key must have operator Exists"),
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}, "spec.tolerations[0].value",
         "and empty when operator is Exists"),
        ({"tolerations": [{"key": "a", "value": "b c"}]}, "spec.tolerations[0].value",
         "toleration value must be a label value"),
        ({"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 30}]},
         "spec.tolerations[0].tolerationSeconds", "tolerationSeconds needs effect NoExecute"),
        ({"tolerations": [{"key": "a", "effect": "NoExecute", "tolerationSeconds": 10**19}]},
         "spec.tolerations[0].tolerationSeconds", "less than or equal to 2147483647"),
    ],
    ids=["selector-key", "selector-value", "selector-value-length", "toleration-key", "keyless-equal",
         "exists-with-value", "toleration-value", "seconds-without-no-execute", "seconds-past-int64"],
)  # fmt: skip
def test_what_the_api_server_would_refuse_on_the_pods_is_refused_here(spec: dict[str, Any], field: str,
                                                                      words: str) -> None:  # fmt: skip
    with pytest.raises(InvalidObjectError) as caught:
        parse_object(pool(**spec), "pools.yaml")
    assert caught.value.field == field
    assert words in caught.value.problem
    assert not caught.value.problem.startswith("Value error")
