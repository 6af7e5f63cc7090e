"""Valid but infeasible deployments on the real control plane: Planned=False with the exact reason code and what
would make them fit, and nothing created. The pools are the simulated estate of examples/pools/hybrid.yaml."""

from typing import Any

import pytest

from tests.e2e.operator_support import Cluster, model_deployment

L405 = {"name": "meta-llama/Llama-3.1-405B-Instruct"}
TRT_ON_A100: dict[str, Any] = {"runtime": "tensorrt-llm", "placement": {"pools": ["a100-onprem"]}}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("too-large-for-the-allowed-pool", {"model": L405, "placement": {"pools": ["l4-cloud"]}}, "InsufficientMemory"),
    ("capacity-exhausted", {"replicas": 60, "placement": {"pools": ["l4-cloud"]}}, "InsufficientCapacity"),
    ("locality-forbids-every-pool", {"placement": {"locality": "cloud-only", "pools": ["a100-onprem"]}},
     "LocalityPolicy"),
    ("long-context-on-prem", {"model": L405, "quantization": "bf16", "maxModelLen": 131072, "maxConcurrency": 32,
                              "placement": {"locality": "on-prem-only"}}, "InsufficientMemory"),
    ("fp8-the-runtime-cannot-produce", {**TRT_ON_A100, "quantization": "fp8"}, "UnsupportedQuantization"),
    ("int8-needs-an-int8-checkpoint", {"quantization": "int8"}, "UnsupportedQuantization"),
    ("context-beyond-the-model", {"model": {"name": "Qwen/Qwen2.5-7B-Instruct"}, "maxModelLen": 65536},
     "MaxModelLenExceeded"),
    ("tensorrt-llm-on-amd-only", {"runtime": "tensorrt-llm", "placement": {"pools": ["mi300x-cloud"]}},
     "RuntimeUnsupported"),
    ("fp8-kv-the-gpu-cannot-hold", {**TRT_ON_A100, "kvCacheDtype": "fp8"}, "UnsupportedKvCacheDtype"),
    ("pool-that-does-not-exist", {"placement": {"pools": ["h900-dreams"]}}, "PoolNotSelected"),
    ("tensor-parallel-wider-than-a-node",
     {"parallelism": {"tensorParallel": 16}, "placement": {"pools": ["h100-onprem"]}}, "ExceedsGpusPerNode"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "code"), [(spec, code) for _, spec, code in CASES], ids=[c[0] for c in CASES])
def test_infeasible_deployments_say_why_and_what_would_fit(kube: Cluster, namespace: str, operator: Any,
                                                           spec: dict[str, Any], code: str) -> None:  # fmt: skip
    kube.create_md(model_deployment("unfit", namespace, **spec))
    md = kube.wait_condition(namespace, "unfit", "Planned", "False")
    planned = kube.condition(namespace, "unfit", "Planned")
    assert planned["reason"] == code, planned["message"]
    assert "would fit" in planned["message"], planned["message"]
    assert "plan" not in md["status"]
    assert md["status"]["rejected"] or code in ("MaxModelLenExceeded", "UnsupportedQuantization")
    assert not kube.exists(lambda: kube.deployment(namespace, "unfit"))
