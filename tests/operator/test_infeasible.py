"""Valid but infeasible deployments: Planned=False with the exact reason code and what would make them fit."""

from typing import Any

import pytest

from modelplane.api.contract import PLANNED
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for
from tests.operator.test_decide import body
from tests.support import pool

HYBRID = [
    pool("h100-onprem", "H100-SXM-80GB", 8, 2, "on-prem", "1.60"),
    pool("a100-onprem", "A100-SXM-80GB", 8, 2, "on-prem", "0.90"),
    pool("l4-cloud", "L4-24GB", 1, 8, "cloud", "0.75"),
    pool("mi300x-cloud", "MI300X-192GB", 8, 2, "cloud", "2.50"),
    pool("t4-cloud", "T4-16GB", 4, 2, "cloud", "0.35"),
    pool("v100-onprem", "V100-SXM-32GB", 8, 1, "on-prem", "0.40"),
]
L405 = {"name": "meta-llama/Llama-3.1-405B-Instruct"}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("too-large-for-the-allowed-pool", {"model": L405, "placement": {"pools": ["l4-cloud"]}}, "InsufficientMemory"),
    ("capacity-exhausted", {"replicas": 60, "placement": {"pools": ["l4-cloud", "t4-cloud"]}},
     "InsufficientCapacity"),
    ("locality-forbids-every-pool", {"placement": {"locality": "cloud-only", "pools": ["a100-onprem"]}},
     "LocalityPolicy"),
    ("long-context-on-prem", {"model": L405, "quantization": "bf16", "maxModelLen": 131072, "maxConcurrency": 32,
                              "placement": {"locality": "on-prem-only"}}, "InsufficientMemory"),
    ("fp8-only-pool-cannot", {"quantization": "fp8", "placement": {"pools": ["t4-cloud"]}}, "UnsupportedQuantization"),
    ("int8-needs-an-int8-checkpoint", {"quantization": "int8"}, "UnsupportedQuantization"),
    ("context-beyond-the-model", {"model": {"name": "Qwen/Qwen2.5-7B-Instruct"}, "maxModelLen": 65536},
     "MaxModelLenExceeded"),
    ("tensorrt-llm-on-amd-only", {"runtime": "tensorrt-llm", "placement": {"pools": ["mi300x-cloud"]}},
     "RuntimeUnsupported"),
    ("fp8-kv-on-volta", {"kvCacheDtype": "fp8", "placement": {"pools": ["v100-onprem"]}}, "UnsupportedKvCacheDtype"),
    # The excluded AMD pool would also refuse TensorRT-LLM: that says nothing about the pool that was chosen.
    ("fp8-kv-on-the-only-chosen-pool", {"runtime": "tensorrt-llm", "kvCacheDtype": "fp8",
                                        "placement": {"pools": ["a100-onprem"]}}, "UnsupportedKvCacheDtype"),
    ("pool-that-does-not-exist", {"placement": {"pools": ["h900-dreams"]}}, "PoolNotSelected"),
    ("tensor-parallel-wider-than-a-node",
     {"parallelism": {"tensorParallel": 16}, "placement": {"pools": ["h100-onprem"]}}, "ExceedsGpusPerNode"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "code"), [(spec, code) for _, spec, code in CASES], ids=[c[0] for c in CASES])
def test_infeasible_says_why_and_what_would_fit(spec: dict[str, Any], code: str) -> None:
    decision = decide(body(**spec), lambda: offers_for(HYBRID))
    planned = decision.conditions[PLANNED]
    assert planned.status == "False"
    assert decision.objects is None
    # The condition's reason is the first summarized code: the most informative, never the user's own
    # exclusions (PoolNotSelected, LocalityPolicy) while another code explains a pool they did select.
    assert planned.reason == code, planned.message
    assert "would fit" in planned.message, planned.message
