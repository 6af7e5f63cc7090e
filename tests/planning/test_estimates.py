"""The performance model's estimates in real plans: the inputs it reads, the replicas a rate takes, the costs.

The terms themselves are checked by hand in test_performance.py. Here the catalog's numbers go in: the expected
values below are worked out from config.json fields, gpus.yaml and performance.yaml, never read back from the
code under test, or they are relations any correct model must satisfy (more TP is faster, a cost is the hourly
price over the tokens served).
"""

from decimal import Decimal
from typing import Any

import pytest

from modelplane.api.plan import Estimates, PlanResult, ReasonCode
from modelplane.api.serving import Quantization
from modelplane.catalog.gpus import gpu_catalog
from modelplane.catalog.models import find_model
from modelplane.planning.estimates import compute_tflops, cost_per_hour, cost_per_million_tokens, hardware
from modelplane.planning.planner import _Planner
from modelplane.planning.service import offers_for, plan_deployment
from tests.support import deployment, pool

# Llama-3.1-8B-Instruct: hidden 4096, intermediate 14336, 32 layers, 32 heads, 8 KV heads, head_dim 128,
# vocab 128256. One token multiplies q/o (2 × 4096²), k/v (2 × 4096 × 1024), gate/up/down (3 × 4096 × 14336) in
# each layer and the LM head (128256 × 4096): 2 FLOPs per weight.
LAYER_LINEAR = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
FLOPS_PER_TOKEN = 2 * (32 * LAYER_LINEAR + 128256 * 4096)
KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 heads × 128, bf16


def _result(gpu: str = "H100-SXM-80GB", cost: str | None = "2.00", **spec: Any) -> PlanResult:
    md = deployment(quantization="bf16", **spec)
    return plan_deployment(md, offers_for([pool("p", gpu, 8, 4, cost=cost)]))


def estimates(gpu: str = "H100-SXM-80GB", cost: str | None = "2.00", **spec: Any) -> Estimates:
    result = _result(gpu, cost, **spec)
    assert result.plan is not None, result.reasons
    return result.plan.estimates


def test_the_replica_work_is_the_models_own_arithmetic() -> None:
    entry = find_model("meta-llama/Llama-3.1-8B-Instruct")
    assert entry is not None
    md = deployment(quantization="bf16", maxModelLen=4096, workload={"inputTokens": 2000, "outputTokens": 1000})
    work = _Planner("x", "default", md.spec, entry.architecture, entry).sizer.work(md.spec.quantization, 1, 1)
    (stage,) = work.stages
    assert stage.flops_per_token == FLOPS_PER_TOKEN
    # A decoding sequence attends to its prompt and half its output: 2000 + 500 tokens.
    assert stage.decode_kv_bytes == 2500 * KV_BYTES_PER_TOKEN
    assert stage.prefill_kv_bytes == 1000 * KV_BYTES_PER_TOKEN
    assert stage.attended_token_layers == 2500 * 32
    # 32 query heads share 8 KV heads: 4 × 2 FLOPs per KV byte of 2 bytes.
    assert work.attention_flops_per_kv_byte == 4.0
    tp2 = _Planner("x", "default", md.spec, entry.architecture, entry).sizer.work(md.spec.quantization, 2, 1)
    assert tp2.stages[0].flops_per_token == FLOPS_PER_TOKEN // 2
    assert tp2.stages[0].decode_kv_bytes == 2500 * KV_BYTES_PER_TOKEN // 2


def test_the_hardware_is_the_datasheet_times_the_fitted_fractions() -> None:
    h100, a100 = gpu_catalog()["H100-SXM-80GB"], gpu_catalog()["A100-SXM-80GB"]
    machine = hardware("vllm", Quantization.BF16, h100)
    # 3350 GB/s × vllm's hopper bandwidth fraction 0.63; 989 TFLOPS × 0.45; NVLink 900 GB/s × 0.7
    assert machine.bandwidth == pytest.approx(3350e9 * 0.63)
    assert machine.flops == pytest.approx(989e12 * 0.45)
    assert machine.link_bandwidth == pytest.approx(900e9 * 0.7)
    assert machine.batch_budget == 8192
    # fp8 multiplies at fp8's rate on Hopper, but weight-only (FP8 Marlin) on Ampere: bf16's.
    assert compute_tflops("vllm", Quantization.FP8, h100) == 1979
    assert compute_tflops("vllm", Quantization.FP8, a100) == 312


def test_more_tensor_parallel_is_faster_but_not_linearly() -> None:
    work = {"inputTokens": 1000, "outputTokens": 200}
    one = estimates(maxModelLen=4096, maxConcurrency=4, workload=work, parallelism={"tensorParallel": 1})
    two = estimates(maxModelLen=4096, maxConcurrency=4, workload=work, parallelism={"tensorParallel": 2})
    assert one.inter_token_latency_seconds is not None
    assert two.inter_token_latency_seconds is not None
    assert two.inter_token_latency_seconds < one.inter_token_latency_seconds
    # Half the bytes per GPU, but the step overhead and 64 all-reduces do not halve.
    assert two.inter_token_latency_seconds > one.inter_token_latency_seconds / 2


def test_pipeline_stages_never_beat_one_stage() -> None:
    one = estimates(maxConcurrency=8, parallelism={"tensorParallel": 1, "pipelineParallel": 1})
    two = estimates(maxConcurrency=8, parallelism={"tensorParallel": 1, "pipelineParallel": 2})
    assert two.inter_token_latency_seconds is not None
    assert one.inter_token_latency_seconds is not None
    assert two.inter_token_latency_seconds >= one.inter_token_latency_seconds


def test_longer_prompts_slow_the_other_sequences_and_the_first_token() -> None:
    short = estimates(maxModelLen=8192, maxConcurrency=16, workload={"inputTokens": 200, "outputTokens": 300})
    long = estimates(maxModelLen=8192, maxConcurrency=16, workload={"inputTokens": 5000, "outputTokens": 300})
    assert long.inter_token_latency_seconds > short.inter_token_latency_seconds  # type: ignore[operator]
    assert long.time_to_first_token_seconds > short.time_to_first_token_seconds  # type: ignore[operator]


def test_a_rate_sets_the_replicas_and_spec_replicas_is_the_minimum() -> None:
    work = {"inputTokens": 2000, "outputTokens": 300}
    one = _result(maxModelLen=4096, workload=work, parallelism={"tensorParallel": 1})
    assert one.plan is not None
    most = one.plan.estimates.max_requests_per_second_per_replica
    assert most is not None
    rate = round(most * 2.5, 3)
    scaled = _result(maxModelLen=4096, workload={**work, "requestsPerSecond": str(rate)},
                     parallelism={"tensorParallel": 1})  # fmt: skip
    assert scaled.plan is not None
    assert scaled.plan.replicas == 3
    per_replica = scaled.plan.estimates.requests_per_second_per_replica
    assert per_replica == pytest.approx(rate / 3, rel=1e-2)
    # 3 replicas × 1 GPU × $2.00
    assert scaled.plan.estimates.cost_per_hour == "6.00"
    at_least = _result(maxModelLen=4096, replicas=5, workload={**work, "requestsPerSecond": str(rate)},
                       parallelism={"tensorParallel": 1})  # fmt: skip
    assert at_least.plan is not None
    assert at_least.plan.replicas == 5


def test_a_rate_beyond_the_pool_is_insufficient_capacity() -> None:
    result = _result(maxModelLen=4096, workload={"inputTokens": 2000, "outputTokens": 300, "requestsPerSecond": "5000"},
                     parallelism={"tensorParallel": 1})  # fmt: skip
    assert not result.feasible
    assert result.reasons[0].code is ReasonCode.INSUFFICIENT_CAPACITY


def test_an_unreachable_slo_says_what_would_meet_it() -> None:
    work = {"inputTokens": 1000, "outputTokens": 200}
    tight = _result(maxModelLen=4096, workload=work, slo={"interTokenLatency": "1ms"})
    assert not tight.feasible
    assert tight.reasons[0].code is ReasonCode.SLO_UNREACHABLE
    assert "interTokenLatency" in tight.reasons[0].message
    assert "> 1.0ms" in tight.reasons[0].message
    # Meets it at one sequence, not at 200: the reason says up to how many it does.
    loose = _result(maxModelLen=4096, maxConcurrency=200, workload=work, slo={"interTokenLatency": "12ms"},
                    parallelism={"tensorParallel": 1})  # fmt: skip
    assert not loose.feasible
    assert "meets the SLO up to" in loose.reasons[0].message
    ok = _result(maxModelLen=4096, maxConcurrency=1, workload=work, slo={"interTokenLatency": "1s"})
    assert ok.feasible
    assert ok.inter_token_latency_target_seconds == 1.0


# -- cost -----------------------------------------------------------------------------------------------
def test_cost_per_hour_is_gpus_times_price_times_replicas_rounded_half_up_to_cents() -> None:
    # TP2 × $1.0175 × 3 replicas = $6.1050: half-up gives 6.11 (half-even, or a float, would give 6.10).
    got = estimates(cost="1.0175", replicas=3, maxConcurrency=8, parallelism={"tensorParallel": 2})
    assert got.cost_per_hour == "6.11"


def test_cost_per_million_tokens_is_one_replicas_price_over_the_tokens_it_serves() -> None:
    work = {"inputTokens": 1000, "outputTokens": 500}
    got = estimates(cost="2.10", replicas=3, maxModelLen=4096, maxConcurrency=8, workload=work,
                    parallelism={"tensorParallel": 1})  # fmt: skip
    assert got.requests_per_second_per_replica is not None
    tokens_per_second = Decimal(str(got.requests_per_second_per_replica)) * 500
    expected = Decimal("2.10") * 1_000_000 / (tokens_per_second * 3600)
    assert Decimal(got.cost_per_million_tokens or "0") == pytest.approx(expected, rel=Decimal("0.002"))


def test_an_unpriced_pool_has_the_same_latency_and_no_costs() -> None:
    priced = estimates(maxConcurrency=8, parallelism={"tensorParallel": 1})
    free = estimates(cost=None, maxConcurrency=8, parallelism={"tensorParallel": 1})
    assert free.inter_token_latency_seconds == priced.inter_token_latency_seconds
    assert (free.cost_per_hour, free.cost_per_million_tokens) == (None, None)


@pytest.mark.parametrize(("hourly", "tokens_per_second"), [(None, 971), (Decimal("2.10"), 0)],
                         ids=["no-price", "no-throughput"])  # fmt: skip
def test_cost_per_million_tokens_is_none_without_a_price_or_a_rate(hourly: Decimal | None,
                                                                   tokens_per_second: int) -> None:  # fmt: skip
    assert cost_per_million_tokens(hourly, tokens_per_second) is None


def test_cost_per_million_tokens_of_a_known_rate() -> None:
    # $1.025 an hour for 971 tokens/s: 1_025_000 / (971 × 3600) = 0.293226… → 0.2932
    assert cost_per_million_tokens(Decimal("1.025"), 971) == Decimal("0.2932")


def test_cost_per_hour_is_none_without_a_price() -> None:
    assert cost_per_hour(None, 8) is None


def test_an_unreachable_slo_suggests_the_targets_the_best_plan_reaches() -> None:
    result = _result(maxModelLen=4096, workload={"inputTokens": 1000, "outputTokens": 200},
                     slo={"interTokenLatency": "1ms"})  # fmt: skip
    (looser,) = [text for text in result.suggestions if text.startswith("an slo of")]
    free = _result(maxModelLen=4096, workload={"inputTokens": 1000, "outputTokens": 200})
    assert free.plan is not None
    itl = free.plan.estimates.inter_token_latency_seconds
    assert itl is not None
    assert f"interTokenLatency {itl * 1000:.0f}ms" in looser
    assert f"pool {free.plan.pool}" in looser
