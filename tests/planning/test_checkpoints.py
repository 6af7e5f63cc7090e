"""Pre-quantized checkpoints: the format comes from config.json's quantization_config, compressed-tensors included.

The config.json dicts here are Llama-3.1-8B's fields with the quantization_config that llm-compressor writes
(the shapes of neuralmagic's / RedHatAI's FP8-dynamic, W8A8 INT8 and W4A16 checkpoints of that model).
"""

from typing import Any

import pytest

from modelplane.api.plan import ReasonCode
from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.errors import CatalogError
from modelplane.planning.estimate import estimate_model
from modelplane.planning.parameters import count_parameters
from modelplane.planning.planner import checkpoint_format
from modelplane.planning.service import offers_for, plan_deployment
from tests.planning.test_parameters import DEEPSEEK_V3, LLAMA_31_8B
from tests.support import deployment, pool

POOLS = [pool("a100", "A100-SXM-80GB", 8, 1, cost="1.50"), pool("l4", "L4-24GB", 1, 4, cost="0.70")]


def compressed_tensors(weights: dict[str, Any], activations: dict[str, Any] | None, fmt: str) -> dict[str, Any]:
    group: dict[str, Any] = {"targets": ["Linear"], "weights": weights}
    if activations is not None:
        group["input_activations"] = activations
    quantization = {"quant_method": "compressed-tensors", "format": fmt, "ignore": ["lm_head"],
                    "quantization_status": "compressed", "config_groups": {"group_0": group}}  # fmt: skip
    return {**LLAMA_31_8B, "quantization_config": quantization}


FP8_DYNAMIC = compressed_tensors(
    {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel", "dynamic": False},
    {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True},
    "float-quantized",
)
W8A8_INT8 = compressed_tensors(
    {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False},
    {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token", "dynamic": True},
    "int-quantized",
)
W4A16 = compressed_tensors(
    {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 64}, None, "pack-quantized"
)
NVFP4 = compressed_tensors(
    {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "tensor_group", "group_size": 16},
    {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "tensor_group", "group_size": 16},
    "nvfp4-pack-quantized",
)

LLAMA = parse_architecture(LLAMA_31_8B, "test")
BREAKDOWN = count_parameters(LLAMA)
LINEAR = sum(layer.linear for layer in BREAKDOWN.layers)
MATRICES = sum(layer.linear_matrices for layer in BREAKDOWN.layers)
REST = BREAKDOWN.total - LINEAR


@pytest.mark.parametrize(
    ("config", "weight_format", "group_size"),
    [(FP8_DYNAMIC, Quantization.FP8, None), (W8A8_INT8, Quantization.INT8, None), (W4A16, Quantization.GPTQ, 64)],
    ids=["fp8-dynamic", "w8a8-int8", "w4a16-g64"],
)
def test_compressed_tensors_format_comes_from_config_groups(
    config: dict[str, Any], weight_format: Quantization, group_size: int | None
) -> None:
    arch = parse_architecture(config, "test")
    assert arch.quant_method == "compressed-tensors"
    assert arch.quant_group_size == group_size
    assert checkpoint_format(arch, None) is weight_format


def _estimate(config: dict[str, Any]) -> int:
    name = "example/Llama-3.1-8B-Instruct-quantized"
    return estimate_model(name, config, Quantization.AUTO, KvCacheDtype.AUTO, "test").weight_bytes


def test_compressed_tensors_weights_are_not_counted_as_16_bit() -> None:
    # 8-bit: 1 byte per linear weight + one fp32 scale per matrix; embeddings, head and norms stay 16-bit.
    eight_bit = LINEAR + 4 * MATRICES + 2 * REST
    assert _estimate(FP8_DYNAMIC) == eight_bit
    assert _estimate(W8A8_INT8) == eight_bit
    # 4-bit in groups of 64 inputs: half a byte per weight + 2.5 bytes (16-bit scale, 4-bit zero) per group.
    # Every linear weight count of Llama-3.1-8B's layers is a multiple of 128, so no rounding here.
    per_layer = BREAKDOWN.layers[0].linear
    assert per_layer % 128 == 0
    assert _estimate(W4A16) == LINEAR // 2 + LINEAR * 5 // (2 * 64) + 2 * REST
    assert _estimate(FP8_DYNAMIC) < BREAKDOWN.total * 2 * 6 // 10


def test_compressed_tensors_checkpoint_is_planned_in_its_format() -> None:
    md = deployment(model={"name": "example/Llama-3.1-8B-Instruct-FP8-dynamic", "architecture": FP8_DYNAMIC})
    result = plan_deployment(md, offers_for(POOLS))
    assert result.plan is not None
    assert (result.plan.quantization, result.plan.pre_quantized) == ("fp8", True)
    assert {candidate.quantization for candidate in result.candidates} == {"fp8"}
    int8 = plan_deployment(
        deployment(model={"name": "example/Llama-3.1-8B-Instruct-W8A8", "architecture": W8A8_INT8}), offers_for(POOLS)
    )
    # vLLM serves int8 only from such a checkpoint, and this is one.
    assert int8.plan is not None
    assert (int8.plan.quantization, int8.plan.pre_quantized) == ("int8", True)


MXFP4_DENSE = compressed_tensors(
    {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "group", "group_size": 32},
    {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "group", "group_size": 32},
    "mxfp4-pack-quantized",
)


def test_a_compressed_tensors_scheme_modelplane_cannot_size_is_refused() -> None:
    md = deployment(model={"name": "example/Llama-3.1-8B-Instruct-MXFP4", "architecture": MXFP4_DENSE})
    result = plan_deployment(md, offers_for(POOLS))
    assert not result.feasible
    [reason] = result.reasons
    assert reason.code is ReasonCode.UNSUPPORTED_QUANTIZATION
    assert "4-bit weight scheme is not int8, fp8, 4-bit int or nvfp4" in reason.message


def test_bad_quantization_config_numbers_name_the_field() -> None:
    with pytest.raises(CatalogError, match=r"quantization_config\.bits must be an integer from 1 to 1048576"):
        parse_architecture({**LLAMA_31_8B, "quantization_config": {"quant_method": "awq", "bits": [4]}}, "test")
    bad = compressed_tensors({"num_bits": "8", "type": "float"}, None, "float-quantized")
    with pytest.raises(CatalogError, match=r"config_groups\.group_0\.weights\.num_bits"):
        parse_architecture(bad, "test")


def test_gptq_group_size_minus_one_means_no_groups_given() -> None:
    config = {**LLAMA_31_8B, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": -1}}
    assert parse_architecture(config, "test").quant_group_size is None


def test_prequantized_mismatch_suggests_auto_or_the_checkpoint_format_and_both_plan() -> None:
    gpt_oss = plan_deployment(deployment(model={"name": "openai/gpt-oss-20b"}, quantization="bf16"), offers_for(POOLS))
    [reason] = gpt_oss.reasons
    assert reason.code is ReasonCode.UNSUPPORTED_QUANTIZATION
    assert reason.message.endswith("set quantization to auto or mxfp4")
    # Both suggestions are values the spec accepts, and both give the same plan.
    auto, named = (plan_deployment(deployment(model={"name": "openai/gpt-oss-20b"}, quantization=value),
                                   offers_for(POOLS)).plan for value in ("auto", "mxfp4"))  # fmt: skip
    assert auto is not None
    assert named is not None
    assert auto.quantization is named.quantization is Quantization.MXFP4
    assert auto.to_wire() == named.to_wire()
    awq = plan_deployment(
        deployment(model={"name": "Qwen/Qwen2.5-72B-Instruct-AWQ"}, quantization="fp8"), offers_for(POOLS)
    )
    assert awq.reasons[0].message.endswith("set quantization to auto or awq")


def test_estimate_refuses_to_count_an_unsized_checkpoint_as_16_bit() -> None:
    with pytest.raises(CatalogError, match="is a compressed-tensors checkpoint whose 4-bit weight scheme"):
        _estimate(MXFP4_DENSE)
    # Asked for a format explicitly, it is a what-if and still answers.
    what_if = estimate_model("example/mxfp4", MXFP4_DENSE, Quantization.FP8, KvCacheDtype.AUTO, "test")
    assert what_if.weight_format == "fp8"


def _deepseek_nvfp4_quant(exclusions: list[str]) -> dict[str, Any]:
    """nvidia/DeepSeek-V3.1-NVFP4's hf_quant_config.json shape (ai-dynamo/aiconfigurator's copy, commit 095f58a5)."""
    return {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8",
            "group_size": 16, "exclude_modules": exclusions}}  # fmt: skip


DEEPSEEK_ATTENTION = [f"model.layers.{layer}.self_attn.{name}" for layer in range(61)
                      for name in ("kv_a_proj_with_mqa", "kv_b_proj", "q_a_proj", "q_b_proj")]  # fmt: skip


@pytest.mark.parametrize(
    ("exclusions", "refused"),
    [
        (["lm_head", "model.layers.61*"], False),  # the LM head stays 16-bit anyway; layer 61 is the MTP module
        (["lm_head", *DEEPSEEK_ATTENTION, "model.layers.61*"], True),  # as NVIDIA ships DeepSeek-V3.1-NVFP4
        (["lm_head", "re:.*mlp.gate$"], False),  # compressed-tensors' regex for routers, 16-bit anyway
    ],
    ids=["head-and-mtp", "attention-in-bf16", "router-regex"],
)
def test_a_checkpoint_leaving_layers_unquantized_is_sized_only_from_its_headers(
    exclusions: list[str], refused: bool
) -> None:
    """NVIDIA's DeepSeek-V3.1-NVFP4 keeps every attention projection in BF16: sized from config.json as NVFP4 they
    would count a quarter of their bytes, and the KV cache would be overestimated, so the config alone is refused."""
    config = {**DEEPSEEK_V3, "quantization_config": _deepseek_nvfp4_quant(exclusions)}
    if not refused:
        assert estimate_model("acme/ds", config, Quantization.AUTO, KvCacheDtype.AUTO, "t").weight_format == "nvfp4"
        return
    with pytest.raises(
        CatalogError,
        match=r"leaves model\.layers\.0\.self_attn\.kv_a_proj_with_mqa, .* and 241 more"
        r" unquantized, whose bytes only its safetensors headers give",
    ):
        estimate_model("acme/ds", config, Quantization.AUTO, KvCacheDtype.AUTO, "t")
