"""Decode throughput and cost estimates of real plans, against the roofline worked out by hand.

Every expected number below is derived from the catalog's config.json fields, gpus.yaml and
performance.yaml, with the arithmetic written out; none is read back from the code under test.
The roofline (modelplane.planning.estimates): n sequences decode at
n × bandwidth × efficiency / (active weight bytes per GPU + n × KV bytes of a sequence per GPU at maxModelLen / 2)
tokens/s, floored; efficiency is 70 %, times 75 % for TP > 1 over PCIe.
"""

from decimal import Decimal
from typing import Any

import pytest

from modelplane.api.plan import Estimates
from modelplane.planning.estimates import cost_per_hour, cost_per_million_tokens
from modelplane.planning.service import offers_for, plan_deployment
from tests.support import deployment, pool

# Llama-3.1-8B-Instruct, config.json as in the catalog: hidden 4096, intermediate 14336, 32 layers,
# 32 attention heads, 8 KV heads, head_dim 128, vocab 128256, untied embeddings, bf16 (2 bytes).
LAYER_PARAMETERS = (
    2 * 4096 * 4096  # q_proj, o_proj
    + 2 * 4096 * (8 * 128)  # k_proj, v_proj
    + 3 * 4096 * 14336  # gate, up, down
    + 2 * 4096  # input and post-attention RMSNorm
)  # = 218_112_000
# One decode step reads every layer, the final norm and the LM head; of the embedding only one row.
ACTIVE_WEIGHT_BYTES = 2 * (32 * LAYER_PARAMETERS + 4096 + 128256 * 4096)  # = 15_009_849_344
# Per token: K and V × 32 layers × 8 KV heads × 128 × 2 bytes; under TP2 each rank holds 4 of the 8 KV heads.
KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2  # = 131_072
KV_BYTES_PER_TOKEN_TP2 = 2 * 32 * 4 * 128 * 2  # = 65_536

# gpus.yaml memoryBandwidthGBps × performance.yaml memoryBandwidthEfficiencyPercent (70),
# and × pcieTensorParallelEfficiencyPercent (75) for TP > 1 on a PCIe-only card.
H100_SXM_BANDWIDTH = 3350 * 10**9 * 70 // 100  # = 2_345_000_000_000 bytes/s
H100_PCIE_BANDWIDTH = 2000 * 10**9 * 70 // 100  # = 1_400_000_000_000
H100_PCIE_TP_BANDWIDTH = 2000 * 10**9 * 70 * 75 // (100 * 100)  # = 1_050_000_000_000


def rate(sequences: int, bandwidth: int, weight_bytes: int, kv_bytes_per_sequence: int) -> int:
    """The roofline's tokens/s for `sequences` decoded together, floored (integer arithmetic, no rounding)."""
    return sequences * bandwidth // (weight_bytes + sequences * kv_bytes_per_sequence)


def estimates(gpu: str, cost: str | None = "2.00", **spec: Any) -> Estimates:
    """The chosen plan's estimates for Llama-3.1-8B in bf16 on a single pool of one 8-GPU node."""
    md = deployment(quantization="bf16", **spec)
    result = plan_deployment(md, offers_for([pool("p", gpu, 8, 1, cost=cost)]))
    assert result.plan is not None, result.reasons
    return result.plan.estimates


# -- decode throughput ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_model_len", "per_sequence", "aggregate"),
    [
        # KV read at 8192 / 2 = 4096 tokens: 4096 × 131_072 = 536_870_912 bytes per sequence.
        # 2_345e9 / (15_009_849_344 + 536_870_912) = 150.8; 8 × 2_345e9 / (15_009_849_344 + 8 × 536_870_912) = 971.8
        (8192, 150, 971),
        # KV read at 32768 / 2 = 16384 tokens: 2_147_483_648 bytes per sequence.
        # 2_345e9 / 17_157_332_992 = 136.7; 8 × 2_345e9 / 32_189_718_528 = 582.8
        (32768, 136, 582),
    ],
)
def test_llama_8b_on_one_h100_decodes_at_the_hand_roofline(max_model_len: int, per_sequence: int,
                                                           aggregate: int) -> None:  # fmt: skip
    kv_per_sequence = KV_BYTES_PER_TOKEN * (max_model_len // 2)
    assert rate(1, H100_SXM_BANDWIDTH, ACTIVE_WEIGHT_BYTES, kv_per_sequence) == per_sequence
    assert rate(8, H100_SXM_BANDWIDTH, ACTIVE_WEIGHT_BYTES, kv_per_sequence) == aggregate
    got = estimates("H100-SXM-80GB", maxModelLen=max_model_len, maxConcurrency=8, parallelism={"tensorParallel": 1})
    assert (got.decode_tokens_per_second_per_sequence, got.decode_tokens_per_second) == (per_sequence, aggregate)


def test_pipeline_stages_add_up_to_the_same_rate() -> None:
    """A token passes through the stages in turn: PP2 reads the same bytes per step as PP1, on twice the GPUs."""
    one = estimates("H100-SXM-80GB", maxConcurrency=8, parallelism={"tensorParallel": 1, "pipelineParallel": 1})
    two = estimates("H100-SXM-80GB", maxConcurrency=8, parallelism={"tensorParallel": 1, "pipelineParallel": 2})
    assert (two.decode_tokens_per_second_per_sequence, two.decode_tokens_per_second) == (150, 971)
    assert (one.decode_tokens_per_second_per_sequence, one.decode_tokens_per_second) == (150, 971)
    # 2 GPUs × $2.00 against 1 × $2.00.
    assert (one.cost_per_hour, two.cost_per_hour) == ("2.00", "4.00")


# TP2 halves the weights per GPU (ceil(15_009_849_344 / 2) = 7_504_924_672) and the KV per GPU
# (4096 tokens × 65_536 = 268_435_456), so one sequence reads 7_773_360_128 bytes per step on each rank.
TP2_WEIGHTS, TP2_KV = 7_504_924_672, KV_BYTES_PER_TOKEN_TP2 * 4096
TP1_KV = KV_BYTES_PER_TOKEN * 4096


@pytest.mark.parametrize(
    ("gpu", "tp", "bandwidth", "weight_bytes", "kv_bytes", "per_sequence", "aggregate"),
    [
        # NVLink: no penalty at any TP. 2_345e9 / 7_773_360_128 = 301.7; 8 × 2_345e9 / 9_652_408_320 = 1943.6
        ("H100-SXM-80GB", 2, H100_SXM_BANDWIDTH, TP2_WEIGHTS, TP2_KV, 301, 1943),
        # PCIe, TP1: no all-reduce, no penalty. 1_400e9 / 15_546_720_256 = 90.1; 8 × 1_400e9 / 19_304_816_640 = 580.2
        ("H100-PCIE-80GB", 1, H100_PCIE_BANDWIDTH, ACTIVE_WEIGHT_BYTES, TP1_KV, 90, 580),
        # PCIe, TP2: 70 % × 75 %. 1_050e9 / 7_773_360_128 = 135.1; 8 × 1_050e9 / 9_652_408_320 = 870.2
        ("H100-PCIE-80GB", 2, H100_PCIE_TP_BANDWIDTH, TP2_WEIGHTS, TP2_KV, 135, 870),
    ],
    ids=["sxm-tp2", "pcie-tp1", "pcie-tp2"],
)
def test_pcie_penalty_applies_only_to_tensor_parallel_over_pcie(
    gpu: str, tp: int, bandwidth: int, weight_bytes: int, kv_bytes: int, per_sequence: int, aggregate: int
) -> None:
    assert (rate(1, bandwidth, weight_bytes, kv_bytes), rate(8, bandwidth, weight_bytes, kv_bytes)) == (
        per_sequence,
        aggregate,
    )
    got = estimates(gpu, maxConcurrency=8, parallelism={"tensorParallel": tp})
    assert (got.decode_tokens_per_second_per_sequence, got.decode_tokens_per_second) == (per_sequence, aggregate)


def test_tp2_doubles_the_rate_over_nvlink_but_gains_only_half_over_pcie() -> None:
    """Per sequence, TP1 → TP2: 150 → 301 on SXM (× 2), 90 → 135 on PCIe (× 2 × 75 % = × 1.5)."""
    rates = [
        estimates(gpu, maxConcurrency=8, parallelism={"tensorParallel": tp}).decode_tokens_per_second_per_sequence
        for gpu in ("H100-SXM-80GB", "H100-PCIE-80GB")
        for tp in (1, 2)
    ]
    assert rates == [150, 301, 90, 135]


# -- cost -----------------------------------------------------------------------------------------------
def test_cost_per_hour_is_gpus_times_price_times_replicas_rounded_half_up_to_cents() -> None:
    # TP2 × $1.0175 × 3 replicas = $6.1050: half-up gives 6.11 (half-even, or a float, would give 6.10).
    got = estimates("H100-SXM-80GB", cost="1.0175", replicas=3, maxConcurrency=8, parallelism={"tensorParallel": 2})
    assert got.cost_per_hour == "6.11"


def test_cost_per_million_tokens_divides_the_hourly_cost_by_the_aggregate_rate() -> None:
    # 3 replicas × 1 GPU × $2.10 = $6.30 an hour, for 3 × 971 tokens/s (the TP1 case above):
    # 6.30 × 1_000_000 / (3 × 971 × 3600) = 6_300_000 / 10_486_800 = 0.600755… → 0.6008 (to 1/100 cent).
    got = estimates("H100-SXM-80GB", cost="2.10", replicas=3, maxConcurrency=8, parallelism={"tensorParallel": 1})
    assert (got.decode_tokens_per_second, got.cost_per_hour, got.cost_per_million_tokens) == (971, "6.30", "0.6008")


@pytest.mark.parametrize(
    ("price", "per_million"),
    [
        # 1 GPU × $1.025 = $1.025 an hour for 971 tokens/s: 1_025_000 / (971 × 3600) = 1_025_000 / 3_495_600
        # = 0.293226… → 0.2932. Rounding the hour to $1.03 first gives 0.2947.
        ("1.025", "0.2932"),
        # A priced pool never costs nothing: 4_000 / 3_495_600 = 0.001144… → 0.0011 (rounding $0.004 to
        # $0.00 first gives 0.0000).
        ("0.0040", "0.0011"),
    ],
)
def test_cost_per_million_tokens_uses_the_unrounded_price(price: str, per_million: str) -> None:
    got = estimates("H100-SXM-80GB", cost=price, maxConcurrency=8, parallelism={"tensorParallel": 1})
    assert got.decode_tokens_per_second == 971
    assert got.cost_per_million_tokens == per_million


def test_an_unpriced_pool_has_the_same_throughput_and_no_costs() -> None:
    """The wire form (keys kept, null) is tests/planning/test_plan_contract.py's; here, the numbers."""
    got = estimates("H100-SXM-80GB", cost=None, maxConcurrency=8, parallelism={"tensorParallel": 1})
    assert (got.decode_tokens_per_second_per_sequence, got.decode_tokens_per_second) == (150, 971)
    assert (got.cost_per_hour, got.cost_per_million_tokens) == (None, None)


@pytest.mark.parametrize(
    ("hourly", "tokens_per_second"),
    [(None, 971), (Decimal("2.10"), 0)],
    ids=["no-price", "no-throughput"],
)
def test_cost_per_million_tokens_is_none_without_a_price_or_a_rate(hourly: Decimal | None,
                                                                   tokens_per_second: int) -> None:  # fmt: skip
    assert cost_per_million_tokens(hourly, tokens_per_second) is None


def test_cost_per_hour_is_none_without_a_price() -> None:
    assert cost_per_hour(None, 8) is None
