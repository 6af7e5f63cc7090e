"""Planner behaviour, table-driven, plus brute-force optimality as a property."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.api.errors import InvalidObjectError
from modelplane.api.plan import PlanResult, ReasonCode
from modelplane.catalog.models import find_model
from modelplane.planning.inventory import offer_from_pool
from modelplane.planning.planner import Evaluation, _Planner, rank_key
from modelplane.planning.service import offers_for, plan_deployment
from tests.planning.brute_force import brute_force_best
from tests.support import deployment, pool

GIB = 1024**3
HYBRID = [
    pool("h100", "H100-SXM-80GB", 8, 2, "on-prem", "1.60"),
    pool("a100", "A100-SXM-80GB", 8, 2, "on-prem", "1.10"),
    pool("h200", "H200-SXM-141GB", 8, 4, "cloud", "3.80"),
    pool("l40s", "L40S-48GB", 4, 4, "cloud", "1.20"),
    pool("l4", "L4-24GB", 1, 8, "cloud", "0.70"),
    pool("mi300x", "MI300X-192GB", 8, 2, "cloud", "3.50"),
]


def plan(**spec: Any) -> PlanResult:
    return plan_deployment(deployment(**spec), offers_for(HYBRID))


def codes(result: PlanResult, pool_name: str) -> set[ReasonCode]:
    return {reason.code for c in result.candidates if c.pool == pool_name for reason in c.reasons}


def test_small_model_goes_to_the_cheapest_gpu_that_holds_it() -> None:
    result = plan(model={"name": "meta-llama/Llama-3.1-8B-Instruct"}, maxModelLen=4096)
    assert result.plan is not None
    # 8B in bf16 is ~15 GiB: one L4 (24 GB, $0.70/h) holds it; nothing else is cheaper per hour.
    assert (result.plan.pool, result.plan.gpus_per_replica) == ("l4", 1)


def test_405b_bf16_needs_a_full_h200_node_or_pipeline_across_h100_nodes() -> None:
    result = plan(model={"name": "meta-llama/Llama-3.1-405B-Instruct"}, quantization="bf16", maxModelLen=8192,
                  placement={"pools": ["h100"]})  # fmt: skip
    assert result.plan is not None
    # 811.7 GB (756 GiB) of bf16 weights; one H100 budgets 0.9 × 79.6 GiB = 71.7 GiB, so at least 11 GPUs:
    # more than one 8-GPU node, hence pipeline parallel across pods on both nodes.
    assert result.plan.nodes_per_replica >= 2
    assert result.plan.gpus_per_pod <= 8
    assert result.plan.gpus_per_replica >= 11
    assert result.plan.pipeline_parallel >= 2
    h200 = plan(model={"name": "meta-llama/Llama-3.1-405B-Instruct"}, quantization="bf16", maxModelLen=8192,
                placement={"pools": ["h200"]})  # fmt: skip
    assert h200.plan is not None
    assert h200.plan.nodes_per_replica == 1


def test_every_rejection_has_a_reason_code() -> None:
    result = plan(model={"name": "meta-llama/Llama-3.1-70B-Instruct"}, quantization="bf16", maxModelLen=8192)
    for candidate in result.candidates:
        assert candidate.feasible == (not candidate.reasons)
    assert ReasonCode.INSUFFICIENT_MEMORY in codes(result, "l4")


def test_locality_on_prem_only_rejects_cloud_pools() -> None:
    result = plan(placement={"locality": "on-prem-only"})
    assert result.plan is not None
    assert result.plan.location == "on-prem"
    assert codes(result, "l4") == {ReasonCode.LOCALITY_POLICY}


def test_prefer_on_prem_bursts_to_cloud_only_when_on_prem_is_full() -> None:
    full = [p.model_copy(update={"spec": p.spec.model_copy(update={"available_gpus": 0})})
            if p.spec.location.value == "on-prem" else p for p in HYBRID]  # fmt: skip
    spec: dict[str, Any] = {"placement": {"locality": "prefer-on-prem"}}
    assert plan_deployment(deployment(**spec), offers_for(HYBRID)).plan.location == "on-prem"  # type: ignore[union-attr]
    burst = plan_deployment(deployment(**spec), offers_for(full))
    assert burst.plan is not None
    assert burst.plan.location == "cloud"
    assert ReasonCode.INSUFFICIENT_CAPACITY in codes(burst, "h100")


def test_tensorrt_llm_is_nvidia_only() -> None:
    result = plan(runtime="tensorrt-llm")
    assert codes(result, "mi300x") == {ReasonCode.RUNTIME_UNSUPPORTED}


def test_tensorrt_llm_never_spans_nodes() -> None:
    result = plan(model={"name": "meta-llama/Llama-3.1-405B-Instruct"}, quantization="bf16", runtime="tensorrt-llm",
                  placement={"pools": ["h100"]})  # fmt: skip
    assert not result.feasible
    assert ReasonCode.RUNTIME_UNSUPPORTED in codes(result, "h100")
    vllm = plan(
        model={"name": "meta-llama/Llama-3.1-405B-Instruct"}, quantization="bf16", placement={"pools": ["h100"]}
    )
    assert vllm.plan is not None
    assert vllm.plan.nodes_per_replica > 1


def test_prequantized_formats_are_never_invented() -> None:
    # vLLM serves int8 only from an int8 checkpoint; awq/gptq are refused before planning (admission rule).
    result = plan(quantization="int8")
    assert not result.feasible
    assert result.reasons[0].code is ReasonCode.UNSUPPORTED_QUANTIZATION
    with pytest.raises(InvalidObjectError):
        plan(quantization="awq")
    awq = plan(model={"name": "Qwen/Qwen2.5-72B-Instruct-AWQ"}, quantization="auto", maxModelLen=4096)
    assert awq.plan is not None
    assert awq.plan.quantization == "awq"
    assert awq.plan.pre_quantized


def test_infeasible_gets_suggestions() -> None:
    result = plan(model={"name": "meta-llama/Llama-3.1-405B-Instruct"}, quantization="bf16", maxModelLen=131072,
                  maxConcurrency=32, placement={"locality": "on-prem-only"})  # fmt: skip
    assert not result.feasible
    assert result.plan is None
    assert result.suggestions
    assert any("maxModelLen" in text or "quantization" in text or "pool" in text for text in result.suggestions)


def test_pinned_shape_is_checked_not_searched() -> None:
    result = plan(parallelism={"tensorParallel": 16})
    assert not result.feasible
    assert all(c.tensor_parallel == 16 for c in result.candidates)
    assert codes(result, "h100") == {ReasonCode.EXCEEDS_GPUS_PER_NODE}
    # 6 divides neither Llama's 32 heads nor is a power of two; with the architecture's heads it is checked.
    odd = plan(
        model={"name": "meta-llama/Llama-3.1-8B-Instruct", "architecture": {"num_attention_heads": 48}},
        parallelism={"tensorParallel": 6},
    )
    assert ReasonCode.HEADS_NOT_DIVISIBLE in codes(odd, "h100")  # fmt: skip


def test_kv_fp8_doubles_the_tokens_that_fit() -> None:
    base = plan(maxModelLen=4096, placement={"pools": ["h100"]}, parallelism={"tensorParallel": 1})
    fp8 = plan(maxModelLen=4096, kvCacheDtype="fp8", placement={"pools": ["h100"]},
               parallelism={"tensorParallel": 1})  # fmt: skip
    assert base.plan is not None
    assert fp8.plan is not None
    assert fp8.plan.memory.kv_cache_bytes_per_token * 2 == base.plan.memory.kv_cache_bytes_per_token
    assert fp8.plan.memory.kv_cache_tokens in range(2 * base.plan.memory.kv_cache_tokens - 2,
                                                     2 * base.plan.memory.kv_cache_tokens + 3)  # fmt: skip


def test_cost_is_gpus_times_price_times_replicas() -> None:
    result = plan(replicas=3, placement={"pools": ["a100"]})
    assert result.plan is not None
    assert result.plan.estimates.cost_per_hour is not None
    expected = Decimal("1.10") * result.plan.gpus_per_replica * 3
    assert Decimal(result.plan.estimates.cost_per_hour) == expected


# -- properties ---------------------------------------------------------------------------------
MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
          "mistralai/Mixtral-8x7B-Instruct-v0.1", "deepseek-ai/DeepSeek-V3"]  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS),
    strategy=st.sampled_from(["cheapest", "fewest-gpus", "fastest"]),
    quantization=st.sampled_from(["auto", "bf16", "fp8"]),
    max_model_len=st.sampled_from([2048, 8192, 32768]),
    concurrency=st.integers(min_value=1, max_value=16),
    replicas=st.integers(min_value=1, max_value=3),
)
def test_plan_is_the_brute_force_optimum(model: str, strategy: str, quantization: str, max_model_len: int,
                                         concurrency: int, replicas: int) -> None:  # fmt: skip
    spec: dict[str, Any] = {"model": {"name": model}, "quantization": quantization, "maxModelLen": max_model_len,
            "maxConcurrency": concurrency, "replicas": replicas, "placement": {"strategy": strategy}}  # fmt: skip
    if model == "deepseek-ai/DeepSeek-V3" and quantization != "auto":
        spec["quantization"] = "auto"
    result = plan_deployment(deployment(**spec), offers_for(HYBRID))
    best = brute_force_best(spec, HYBRID)
    assert result.feasible == (best is not None)
    if result.plan is not None:
        chosen = next(e for e in _evaluations(spec) if e.feasible and e.offer.name == result.plan.pool
                      and e.layout.tensor_parallel == result.plan.tensor_parallel
                      and e.layout.pipeline_parallel == result.plan.pipeline_parallel
                      and e.weight_format.value == result.plan.quantization)  # fmt: skip
        assert rank_key(deployment(**spec).spec, chosen) == best


def _evaluations(spec: dict[str, Any]) -> list[Evaluation]:
    md = deployment(**spec)
    entry = find_model(md.spec.model.name)
    assert entry is not None
    return _Planner("x", "default", md.spec, entry.architecture, entry).evaluations(offers_for(HYBRID))


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    max_model_len=st.sampled_from([1024, 8192, 65536]),
    concurrency=st.integers(min_value=1, max_value=64),
    utilization=st.integers(min_value=50, max_value=95),
    kv=st.sampled_from(["auto", "fp8"]),
)
def test_no_feasible_candidate_exceeds_its_budget(model: str, max_model_len: int, concurrency: int,
                                                  utilization: int, kv: str) -> None:  # fmt: skip
    result = plan(model={"name": model}, maxModelLen=max_model_len, maxConcurrency=concurrency,
                  gpuMemoryUtilization=utilization, kvCacheDtype=kv)  # fmt: skip
    for candidate in result.candidates:
        if not candidate.feasible:
            continue
        memory = candidate.memory
        assert memory is not None
        assert memory.budget_bytes_per_gpu == memory.gpu_memory_bytes * utilization // 100
        kv_needed_upper = memory.kv_cache_bytes_per_token * max_model_len * concurrency
        assert memory.kv_cache_tokens >= max_model_len * concurrency
        used_without_kv = memory.weight_bytes_per_gpu + memory.overhead_bytes_per_gpu
        assert used_without_kv < memory.budget_bytes_per_gpu
        # Without sliding windows the KV cache of the load fits in what is left, byte for byte.
        if not find_model(model).architecture.sliding_window_layers:  # type: ignore[union-attr]
            assert used_without_kv + kv_needed_upper <= memory.budget_bytes_per_gpu


def test_offer_free_gpus_follow_available_gpus() -> None:
    assert offer_from_pool(pool("p", "L4-24GB", 1, 4, availableGpus=2)).free_gpus == 2
    assert offer_from_pool(pool("p", "L4-24GB", 1, 4)).free_gpus == 4


@pytest.mark.parametrize("name", MODELS)
def test_catalog_models_resolve(name: str) -> None:
    assert find_model(name) is not None
