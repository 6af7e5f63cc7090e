"""Checkpoint formats beyond compressed-tensors: ModelOpt (FP8, NVFP4, MIXED_PRECISION; from hf_quant_config.json or
config.json), compressed-tensors NVFP4, AutoRound, and 8-bit GPTQ refused; the NVFP4 hardware gate.

The ModelOpt configs are the two shapes vLLM's ModelOptQuantConfigBase.from_config reads
(vllm/model_executor/layers/quantization/modelopt.py): hf_quant_config.json's `{"producer", "quantization"}` as
nvidia/Llama-3.1-70B-Instruct-FP8 ships it, and config.json's `quantization_config` with quant_method modelopt.
"""

from typing import Any

import pytest

from modelplane.api.plan import ReasonCode
from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.models import ModelEntry, find_model
from modelplane.catalog.resolve import ModelResolver
from modelplane.planning.estimate import estimate_model
from modelplane.planning.parameters import count_parameters
from modelplane.planning.service import offers_for, plan_deployment
from tests.planning.test_checkpoints import NVFP4 as CT_NVFP4
from tests.planning.test_parameters import LLAMA_31_8B
from tests.support import deployment, pool


def _llama_70b() -> ModelEntry:
    entry = find_model("meta-llama/Llama-3.1-70B-Instruct")
    assert entry is not None
    return entry


LLAMA_70B = _llama_70b()
MODELOPT_FP8 = {"producer": {"name": "modelopt", "version": "0.19.0"},
                "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8",
                                 "exclude_modules": ["lm_head"]}}  # fmt: skip
FP8_70B = ModelEntry(name="nvidia/Llama-3.1-70B-Instruct-FP8", config_source="test", config=LLAMA_70B.config,
                     quant_config=MODELOPT_FP8)  # fmt: skip
RESOLVER = ModelResolver([FP8_70B])
POOLS = [pool("h100", "H100-SXM-80GB", 8, 2), pool("b200", "B200-SXM-180GB", 8, 1, cost="6.00"),
         pool("mi300x", "MI300X-192GB", 8, 1), pool("a100", "A100-SXM-80GB", 8, 1, cost="1.50")]  # fmt: skip


def _bytes(config: dict[str, Any], quantization: Quantization = Quantization.AUTO, entry: ModelEntry | None = None,
           ) -> int:  # fmt: skip
    resolver = ModelResolver([entry]) if entry else ModelResolver()
    name = entry.name if entry else "example/model"
    return estimate_model(name, None if entry else config, quantization, KvCacheDtype.AUTO, "t", resolver).weight_bytes


def test_nvidia_llama_70b_fp8_modelopt_is_sized_as_fp8_not_refused() -> None:
    plan = plan_deployment(deployment(model={"name": FP8_70B.name}, maxModelLen=8192), offers_for(POOLS), RESOLVER)
    assert plan.plan is not None, plan.reasons
    assert (plan.plan.quantization, plan.plan.pre_quantized) == ("fp8", True)
    assert {candidate.quantization for candidate in plan.candidates} == {"fp8"}
    bf16_model_as_fp8 = _bytes(LLAMA_70B.config, Quantization.FP8)
    assert _bytes({}, entry=FP8_70B) == bf16_model_as_fp8  # the same bytes: 1 per linear weight + fp32 scales


def test_modelopt_in_config_json_reads_as_in_hf_quant_config_json() -> None:
    inline = {**LLAMA_31_8B, "quantization_config": {"quant_method": "modelopt", "quant_algo": "fp8",
                                                     "ignore": ["lm_head"]}}  # fmt: skip
    nested = {**LLAMA_31_8B, "quantization_config": {**MODELOPT_FP8}}
    assert parse_architecture(inline, "t").quant_weight_format == "fp8"
    assert parse_architecture(nested, "t").quant_weight_format == "fp8"


NVFP4_CONFIG = {**LLAMA_31_8B, "quantization_config": {
    "producer": {"name": "modelopt", "version": "0.29.0"},
    "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None, "group_size": 16,
                     "exclude_modules": ["lm_head"]}}}  # fmt: skip


def test_nvfp4_bytes_are_half_a_byte_a_weight_plus_fp8_group_scales_and_two_fp32_scales_a_matrix() -> None:
    breakdown = count_parameters(parse_architecture(LLAMA_31_8B, "t"))
    linear = sum(layer.linear for layer in breakdown.layers)
    matrices = sum(layer.linear_matrices for layer in breakdown.layers)
    rest = breakdown.total - linear
    assert linear % 16 == 0
    expected = linear // 2 + linear // 16 + 8 * matrices + 2 * rest
    assert _bytes(NVFP4_CONFIG) == expected
    assert _bytes(CT_NVFP4) == expected  # compressed-tensors' nvfp4-pack-quantized stores the same tensors


def test_nvfp4_is_w4a4_on_blackwell_weight_only_on_hopper_and_refused_on_amd_and_by_tensorrt_llm() -> None:
    md = deployment(model={"name": "example/Llama-3.1-8B-Instruct-NVFP4", "architecture": NVFP4_CONFIG})
    result = plan_deployment(md, offers_for(POOLS))
    by_pool = {candidate.pool: candidate for candidate in result.candidates}
    assert {candidate.quantization for candidate in result.candidates} == {"nvfp4"}
    assert any(candidate.feasible for candidate in result.candidates if candidate.pool == "b200")
    assert any(candidate.feasible for candidate in result.candidates if candidate.pool == "h100")
    [amd_reason] = by_pool["mi300x"].reasons
    assert amd_reason.code is ReasonCode.UNSUPPORTED_QUANTIZATION
    hopper = plan_deployment(deployment(model=md.spec.model.model_dump(by_alias=True, exclude_none=True),
                                        placement={"pools": ["h100"]}), offers_for(POOLS))  # fmt: skip
    assert hopper.plan is not None
    assert any("nvfp4 weight-only on H100-SXM-80GB" in note and "FP4 Marlin" in note for note in hopper.plan.notes)
    blackwell = plan_deployment(deployment(model=md.spec.model.model_dump(by_alias=True, exclude_none=True),
                                           placement={"pools": ["b200"]}), offers_for(POOLS))  # fmt: skip
    assert blackwell.plan is not None
    assert blackwell.plan.notes == []
    model = md.spec.model.model_dump(by_alias=True, exclude_none=True)
    trt = plan_deployment(deployment(model=model, runtime="tensorrt-llm", placement={"pools": ["h100"]}),
                          offers_for(POOLS))  # fmt: skip
    assert not trt.feasible
    assert "tensorrt-llm needs compute capability 10.0 or newer for nvfp4" in trt.reasons[0].message


def test_mixed_precision_is_sized_in_its_widest_layer_format_and_an_unknown_algorithm_refused() -> None:
    layers = {"model.layers.0.mlp.down_proj": {"quant_algo": "FP8"}, "model.layers.1.mlp.down_proj":
              {"quant_algo": "NVFP4", "group_size": 16}}  # fmt: skip
    mixed = {**LLAMA_31_8B, "quantization_config": {"quant_method": "modelopt", "quantization": {
        "quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": "FP8", "quantized_layers": layers}}}  # fmt: skip
    assert parse_architecture(mixed, "t").quant_weight_format == "fp8"
    layers["model.layers.1.mlp.down_proj"] = {"quant_algo": "MXFP8"}
    result = plan_deployment(deployment(model={"name": "example/mixed", "architecture": mixed}), offers_for(POOLS))
    assert not result.feasible
    assert "quant_method modelopt (MIXED_PRECISION with MXFP8)" in result.reasons[0].message


@pytest.mark.parametrize(
    ("quantization_config", "weight_format", "message"),
    [
        ({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True,
          "packing_format": "auto_round:auto_gptq"}, "gptq", None),
        ({"quant_method": "gptq", "bits": 8, "group_size": 128}, None, "quant_method gptq (8-bit weights)"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, None, "quant_method bitsandbytes"),
    ],
    ids=["auto-round-w4g128", "gptq-8-bit", "bitsandbytes"],
)  # fmt: skip
def test_four_bit_int_checkpoints_are_sized_and_others_refused_naming_them(
    quantization_config: dict[str, Any], weight_format: str | None, message: str | None
) -> None:
    config = {**LLAMA_31_8B, "quantization_config": quantization_config}
    assert parse_architecture(config, "t").quant_weight_format == weight_format
    result = plan_deployment(deployment(model={"name": "example/q", "architecture": config}), offers_for(POOLS))
    if message is None:
        assert result.plan is not None
        assert result.plan.quantization == "gptq"
    else:
        assert not result.feasible
        assert message in result.reasons[0].message


def test_nvfp4_from_a_16_bit_checkpoint_needs_an_nvfp4_checkpoint() -> None:
    result = plan_deployment(deployment(quantization="nvfp4"), offers_for(POOLS))
    assert not result.feasible
    assert "vllm serves nvfp4 only from a checkpoint already quantized that way" in result.reasons[0].message
