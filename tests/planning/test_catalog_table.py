"""Every catalog model × quantization, against arithmetic an engineer can redo by hand from config.json.

The expected side is computed here from the raw config fields (num_hidden_layers, hidden_size, heads,
intermediate sizes, experts ...) with the byte model the README states, not by calling weights.py,
stages.py or kv_cache.py; what is checked is `estimate_model`, the function behind `modelplane estimate`.

Byte model (README "The planner, briefly"): 16-bit 2 B per parameter; fp8/int8 1 B per linear weight plus
one fp32 scale per matrix (per 128×128 block for block-quantized checkpoints); awq/gptq half a byte per
linear weight plus 2.5 B (fp16 scale + 4-bit zero) per group of `group_size` (128 unless the checkpoint
says) inputs; mxfp4 half a byte per MoE expert weight plus one byte per 32. Everything that is not a linear
weight (embeddings, LM head, norms, biases, routers) stays 16-bit.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.models import ModelEntry, model_catalog
from modelplane.planning.estimate import estimate_model
from modelplane.planning.parameters import count_parameters

CATALOG = sorted(model_catalog().values(), key=lambda entry: entry.name)
QUANTIZATIONS = ("bf16", "fp8", "int8", "awq", "gptq")


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True)
class RawLayer:
    """One decoder layer's linear weights, from config.json numbers alone."""

    linear: int
    matrices: int
    expert_linear: int


def raw_layers(config: dict[str, Any]) -> list[RawLayer] | None:
    """Per-layer linear weights for standard (GQA) attention with a gated MLP or MoE of gated experts.

    attention: q and o are hidden × heads·head_dim, k and v hidden × kv_heads·head_dim (4 matrices);
    MLP: gate, up, down of hidden × intermediate (3 matrices), per expert for MoE layers.
    None for DeepSeek's MLA (no q/k/v/o of that shape) and for per-layer MoE patterns this does not model.
    """
    if config.get("kv_lora_rank") or config.get("first_k_dense_replace") or config.get("mlp_only_layers"):
        return None
    if config.get("hybrid_override_pattern") or config.get("full_attention_interval"):
        return None  # hybrids: their recurrent layers are checked in test_hybrid.py
    if int(config.get("decoder_sparse_step") or 1) != 1 or config.get("shared_expert_intermediate_size"):
        return None
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    experts = config.get("num_local_experts") or config.get("num_experts") or config.get("n_routed_experts")
    if experts:
        expert = 3 * hidden * (config.get("moe_intermediate_size") or config["intermediate_size"])
        layer = RawLayer(attention + experts * expert, 4 + 3 * experts, experts * expert)
    else:
        layer = RawLayer(attention + 3 * hidden * config["intermediate_size"], 7, 0)
    return [layer] * config["num_hidden_layers"]


def expected_weight_bytes(entry: ModelEntry, weight_format: str, total: int) -> int:
    """Whole-model bytes in `weight_format`: linear weights by the byte model, everything else 16-bit.

    MiniMax-M2's router is the exception: vLLM holds it in fp32, 2 more bytes for each of its hidden × experts.
    """
    config = entry.config
    layers = raw_layers(config)
    assert layers is not None
    rest = total - sum(layer.linear for layer in layers)
    if config["model_type"] == "minimax_m2":
        rest += config["num_hidden_layers"] * config["hidden_size"] * config["num_local_experts"]
    quant = config.get("quantization_config") or {}
    if weight_format == "bf16":
        return 2 * total
    if weight_format in ("fp8", "int8"):
        block = quant.get("weight_block_size")
        if block:
            scales = sum(4 * _ceil(layer.linear, block[0] * block[1]) for layer in layers)
        else:
            scales = sum(4 * layer.matrices for layer in layers)
        return sum(layer.linear for layer in layers) + scales + 2 * rest
    if weight_format in ("awq", "gptq"):
        group = quant.get("group_size") or 128
        return sum(_ceil(layer.linear, 2) + _ceil(5 * layer.linear, 2 * group) for layer in layers) + 2 * rest
    assert weight_format == "mxfp4"
    return (
        sum(
            2 * (layer.linear - layer.expert_linear) + _ceil(layer.expert_linear, 2) + _ceil(layer.expert_linear, 32)
            for layer in layers
        )
        + 2 * rest
    )


def expected_kv_bytes_per_token(config: dict[str, Any], dtype_bytes: int) -> int:
    """2 (K and V) × layers × KV heads × head_dim × bytes; MLA caches kv_lora_rank + rope dims per layer.

    A hybrid caches keys and values in its attention layers only: the "*" of Nemotron-H's pattern, every
    full_attention_interval-th layer of Qwen3-Next.
    """
    layers = int(config["num_hidden_layers"])
    if config.get("hybrid_override_pattern"):
        layers = str(config["hybrid_override_pattern"]).count("*")
    elif config.get("full_attention_interval"):
        layers //= int(config["full_attention_interval"])
    if config.get("kv_lora_rank"):
        return layers * (int(config["kv_lora_rank"]) + int(config["qk_rope_head_dim"])) * dtype_bytes
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def _estimate(entry: ModelEntry, quantization: str, kv: KvCacheDtype = KvCacheDtype.AUTO) -> Any:
    return estimate_model(entry.name, None, Quantization(quantization), kv, "test")


# -- bf16 bytes are exactly twice the published parameter total ------------------------------------------
PUBLISHED = [entry for entry in CATALOG if entry.official_parameters is not None]


@pytest.mark.parametrize("entry", PUBLISHED, ids=[entry.name for entry in PUBLISHED])
def test_bf16_bytes_are_twice_the_published_total(entry: ModelEntry) -> None:
    estimate = _estimate(entry, "bf16")
    assert estimate.weight_format == "bf16"
    published = entry.official_parameters
    assert published is not None
    if entry.parameters_rounding is None:
        # The checkpoint's own count (safetensors metadata): exact, to the byte.
        assert estimate.weight_bytes == 2 * published
        assert estimate.parameters == published
    else:
        # A rounded figure from the model card ("671B"): exact up to that rounding.
        assert abs(estimate.weight_bytes - 2 * published) <= entry.parameters_rounding
    if entry.pre_quantized is None:
        # A 16-bit checkpoint: what `estimate` reports for it unasked is those bytes.
        assert _estimate(entry, "auto").weight_bytes == estimate.weight_bytes
    else:
        # fp8 and mxfp4 checkpoints hold parts in fewer bits: less than 2 bytes per parameter.
        assert _estimate(entry, "auto").weight_bytes < estimate.weight_bytes


# -- models × quantizations ------------------------------------------------------------------------------
def _cases() -> list[tuple[ModelEntry, str]]:
    """Every format for 16-bit checkpoints; a pre-quantized one only in its own format (quantization auto)."""
    cases: list[tuple[ModelEntry, str]] = []
    for entry in CATALOG:
        if raw_layers(entry.config) is None:
            continue
        formats = QUANTIZATIONS if entry.pre_quantized is None else ("auto",)
        cases.extend((entry, quantization) for quantization in formats)
    return cases


CASES = _cases()


@pytest.mark.parametrize(("entry", "quantization"), CASES, ids=[f"{e.name}-{q}" for e, q in CASES])
def test_weight_bytes_follow_the_byte_model(entry: ModelEntry, quantization: str) -> None:
    estimate = _estimate(entry, quantization)
    weight_format = entry.pre_quantized if quantization == "auto" else quantization
    assert estimate.weight_format == weight_format
    total = count_parameters(entry.architecture).total
    assert estimate.parameters == total
    assert estimate.weight_bytes == expected_weight_bytes(entry, str(weight_format), total)


def test_the_table_covers_the_catalog() -> None:
    covered = {entry.name for entry, _ in CASES}
    # Only DeepSeek's MLA models, the first_k_dense_replace MoE ones (Kimi, GLM) and the hybrids fall outside the
    # raw formulas (their totals are checked against the card, the hybrids' recurrent layers in test_hybrid.py).
    assert {entry.name for entry in CATALOG} - covered == {
        "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V2-Lite-Chat", "deepseek-ai/DeepSeek-V3",
        "moonshotai/Kimi-K2-Instruct", "Qwen/Qwen3-Next-80B-A3B-Instruct", "nvidia/Nemotron-H-56B-Base-8K",
        "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "zai-org/GLM-4.5-Air"}  # fmt: skip
    assert {quantization for _, quantization in CASES} == {*QUANTIZATIONS, "auto"}


@pytest.mark.parametrize("entry", [e for e in CATALOG if e.pre_quantized is None], ids=lambda e: e.name)
def test_formats_order_and_pair_up(entry: ModelEntry) -> None:
    sizes = {quantization: _estimate(entry, quantization).weight_bytes for quantization in QUANTIZATIONS}
    assert sizes["fp8"] == sizes["int8"]  # both 1 byte + fp32 scales
    assert sizes["awq"] == sizes["gptq"]  # both 4 bits + per-128 fp16 scale and 4-bit zero
    assert sizes["bf16"] > sizes["fp8"] > sizes["awq"]


def test_raw_linear_weights_agree_with_the_parameter_breakdown() -> None:
    """The raw formula above and parameters.py describe the same weights (totals are checked elsewhere)."""
    for entry in CATALOG:
        layers = raw_layers(entry.config)
        if layers is None:
            continue
        breakdown = count_parameters(entry.architecture)
        assert [layer.linear for layer in layers] == [layer.linear for layer in breakdown.layers], entry.name
        assert [layer.matrices for layer in layers] == [layer.linear_matrices for layer in breakdown.layers]
        assert [layer.expert_linear for layer in layers] == [layer.expert_linear for layer in breakdown.layers]


@pytest.mark.parametrize("entry", CATALOG, ids=[entry.name for entry in CATALOG])
@pytest.mark.parametrize(("kv", "dtype_bytes"), [(KvCacheDtype.AUTO, 2), (KvCacheDtype.FP8, 1)])
def test_kv_bytes_per_token_from_raw_config(entry: ModelEntry, kv: KvCacheDtype, dtype_bytes: int) -> None:
    estimate = estimate_model(entry.name, None, Quantization.AUTO, kv, "test")
    assert estimate.kv_cache_bytes_per_token == expected_kv_bytes_per_token(entry.config, dtype_bytes)


def test_hand_checked_examples() -> None:
    """Three numbers worked by hand, so a wrong formula above cannot agree with a wrong one in the code."""
    llama_70b = model_catalog()["meta-llama/Llama-3.1-70B-Instruct"]
    # 2 × 80 layers × 8 KV heads × 128 × 2 bytes = 327,680 bytes (320 KiB) per token.
    assert _estimate(llama_70b, "bf16").kv_cache_bytes_per_token == 327_680
    # 70,553,706,496 parameters × 2 bytes.
    assert _estimate(llama_70b, "bf16").weight_bytes == 141_107_412_992
    # Linear per layer: 2·8192·8192 (q, o) + 2·8192·1024 (k, v) + 3·8192·28672 (MLP) = 855,638,016; × 80 layers
    # = 68,451,041,280 at 1 byte, + 80 × 7 matrices × 4 bytes of scales, + 2 bytes × the other 2,102,665,216.
    assert _estimate(llama_70b, "fp8").weight_bytes == 68_451_041_280 + 80 * 7 * 4 + 2 * 2_102_665_216
