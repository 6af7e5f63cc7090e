"""What a plan says beyond its shape: cost keys, notes, the order of reasons, and locality over precision."""

from typing import Any

import pytest
from rich.console import Console

from modelplane.api.plan import PlanResult, ReasonCode
from modelplane.catalog.gpus import Vendor, gpu_catalog
from modelplane.cli.output import print_table
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.context import plan_hash
from tests.support import deployment, pool


def _plan(pools: list[Any], **spec: Any) -> PlanResult:
    return plan_deployment(deployment(**spec), offers_for(pools))


# -- estimates: cost keys present, null without a price ----------------------------------------------
def test_cost_keys_are_null_not_missing_without_a_price() -> None:
    result = _plan([pool("free", "L4-24GB", 1, 2, cost=None)], maxModelLen=4096)
    assert result.plan is not None
    wire = result.to_wire()
    estimates = wire["plan"]["estimates"]
    assert estimates["costPerHour"] is None
    assert estimates["costPerMillionTokens"] is None
    assert estimates["decodeTokensPerSecond"] > 0
    for candidate in wire["candidates"]:
        if "estimates" in candidate:
            assert {"costPerHour", "costPerMillionTokens"} <= set(candidate["estimates"])


def test_priced_pool_keeps_its_costs() -> None:
    wire = _plan([pool("paid", "L4-24GB", 1, 2, cost="0.70")], maxModelLen=4096).to_wire()
    assert wire["plan"]["estimates"]["costPerHour"] == "0.70"


# -- ranking: locality before precision ----------------------------------------------------------------
def test_prefer_on_prem_uses_on_prem_at_fp8_before_cloud_at_bf16() -> None:
    # One on-prem L4 holds Llama-3.1-8B at 32k context only in fp8; the cloud H100 holds it in bf16.
    pools = [pool("onprem-l4", "L4-24GB", 1, 1, "on-prem", "0.50"), pool("cloud-h100", "H100-SXM-80GB", 8, 1, "cloud")]
    result = _plan(pools, maxModelLen=32768, placement={"locality": "prefer-on-prem"})
    assert result.plan is not None
    assert (result.plan.pool, result.plan.quantization) == ("onprem-l4", "fp8")
    bf16 = next(c for c in result.candidates if c.pool == "onprem-l4" and c.quantization == "bf16")
    assert not bf16.feasible
    # Without the locality preference, auto still prefers the highest precision that fits.
    anywhere = _plan(pools, maxModelLen=32768)
    assert anywhere.plan is not None
    assert (anywhere.plan.pool, anywhere.plan.quantization) == ("cloud-h100", "bf16")


# -- the order of reasons: the first one is the answer ------------------------------------------------------
HYBRID = [
    pool("h100", "H100-SXM-80GB", 8, 2, "on-prem"),
    pool("a100", "A100-SXM-80GB", 8, 2, "on-prem"),
    pool("l4", "L4-24GB", 1, 1, "cloud"),
    pool("t4", "T4-16GB", 4, 2, "cloud"),
    pool("v100", "V100-SXM-32GB", 8, 1, "on-prem"),
]


@pytest.mark.parametrize(
    ("spec", "codes"),
    [
        # The only selected pool cannot run fp8: that is the answer, not the five pools left out.
        ({"quantization": "fp8", "placement": {"pools": ["t4"]}},
         [ReasonCode.UNSUPPORTED_QUANTIZATION, ReasonCode.POOL_NOT_SELECTED]),
        # The selected pool is on-prem and the locality is cloud-only: the locality is the answer.
        ({"placement": {"pools": ["a100"], "locality": "cloud-only"}},
         [ReasonCode.LOCALITY_POLICY, ReasonCode.POOL_NOT_SELECTED]),
        # More pools first: two cannot run fp8 (T4, V100), one lacks memory (the L4).
        ({"model": {"name": "meta-llama/Llama-3.1-405B-Instruct"}, "quantization": "fp8",
          "placement": {"pools": ["t4", "v100", "l4"]}},
         [ReasonCode.UNSUPPORTED_QUANTIZATION, ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.POOL_NOT_SELECTED]),
        # Only exclusions: they are the answer then.
        ({"placement": {"pools": ["nowhere"]}}, [ReasonCode.POOL_NOT_SELECTED]),
    ],
    ids=["only-pool-cannot-fp8", "locality-excludes-the-chosen-pool", "most-pools-first", "only-exclusions"],
)  # fmt: skip
def test_first_reason_is_the_most_informative(spec: dict[str, Any], codes: list[ReasonCode]) -> None:
    result = _plan(HYBRID, **spec)
    assert not result.feasible
    assert [reason.code for reason in result.reasons] == codes


# -- notes: fp8 served weight-only on Ampere -----------------------------------------------------------------
NVIDIA = sorted(gpu.id for gpu in gpu_catalog().values() if gpu.vendor is Vendor.NVIDIA)


@pytest.mark.parametrize("gpu_id", NVIDIA)
def test_fp8_on_ampere_says_it_runs_weight_only(gpu_id: str) -> None:
    gpu = gpu_catalog()[gpu_id]
    capability = gpu.compute_capability_tuple
    assert capability is not None
    result = _plan([pool("p", gpu_id, 8, 2)], quantization="fp8", maxModelLen=4096)
    if result.plan is None:  # T4 and V100 cannot serve fp8 at all
        assert capability < (8, 0)
        return
    # The rule, independent of the data file: compute capability ≥ 8.0 and < 8.9.
    if (8, 0) <= capability < (8, 9):
        [note] = result.plan.notes
        assert "weight-only" in note
        assert "W8A16" in note
        assert "FP8 Marlin" in note
        assert gpu_id in note
    else:
        assert result.plan.notes == []


def test_notes_follow_the_served_format_not_the_request() -> None:
    a100 = [pool("a100", "A100-SXM-80GB", 8, 1)]
    bf16 = _plan(a100, quantization="bf16")
    assert bf16.plan is not None
    assert bf16.plan.notes == []
    # A pre-quantized fp8 checkpoint under auto is served in fp8, so weight-only on an A10G (8.6) too.
    checkpoint = _plan([pool("a10g", "A10G-24GB", 1, 2)], model={"name": "Qwen/Qwen3-8B-FP8"}, maxModelLen=4096)
    assert checkpoint.plan is not None
    assert checkpoint.plan.quantization == "fp8"
    assert len(checkpoint.plan.notes) == 1
    amd = _plan([pool("mi300x", "MI300X-192GB", 8, 1)], quantization="fp8")
    assert amd.plan is not None
    assert amd.plan.notes == []


def test_notes_are_on_the_wire_and_in_the_table() -> None:
    result = _plan([pool("a100", "A100-SXM-80GB", 8, 1)], quantization="fp8")
    assert result.plan is not None
    wire = result.to_wire()
    assert wire["plan"]["notes"] == result.plan.notes
    assert result.plan.to_wire()["notes"] == result.plan.notes
    console = Console(record=True, width=400)
    print_table([result], console)
    assert result.plan.notes[0] in console.export_text()
    # A plan without notes prints the key in `plan -o json` but keeps the status form (and its hash) as it was.
    plain = _plan([pool("h100", "H100-SXM-80GB", 8, 1)], quantization="fp8")
    assert plain.plan is not None
    assert plain.to_wire()["plan"]["notes"] == []
    assert "notes" not in plain.plan.to_wire()
    assert plan_hash(plain.plan) == plan_hash(plain.plan.model_copy(update={"notes": []}))


def test_the_plan_hash_ignores_the_estimates() -> None:
    """Recalibrating the performance model changes every estimate; the serving pods must not roll for that."""
    result = _plan([pool("h100", "H100-SXM-80GB", 8, 1)], quantization="fp8")
    assert result.plan is not None
    faster = result.plan.estimates.model_copy(update={"inter_token_latency_seconds": 0.001})
    assert plan_hash(result.plan) == plan_hash(result.plan.model_copy(update={"estimates": faster}))
    assert plan_hash(result.plan) != plan_hash(result.plan.model_copy(update={"tensor_parallel": 2}))
