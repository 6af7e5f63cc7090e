"""A normalized view of a model's config.json: the handful of numbers sizing depends on.

Hugging Face configs name the same idea differently per family (num_local_experts, num_experts,
n_routed_experts); this module maps them once so the planner never looks at raw keys.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.catalog.errors import CatalogError

REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class MoeShape:
    """Mixture-of-experts layout. Every expert stays resident; only `experts_per_token` are read per token."""

    experts: int
    experts_per_token: int
    expert_intermediate_size: int
    shared_intermediate_size: int
    shared_expert_gate: bool
    router_bias: bool
    expert_bias: bool
    routed_scaling_bias: bool
    moe_layers: tuple[int, ...]


@dataclass(frozen=True)
class MlaShape:
    """DeepSeek multi-head latent attention; the cache holds one compressed latent per token and layer."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class Architecture:
    model_type: str
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool
    norms_per_layer: int
    attention_sinks: bool
    sliding_window_layers: tuple[int, ...]
    sliding_window: int | None
    moe: MoeShape | None
    mla: MlaShape | None
    quant_method: str | None
    quant_bits: int | None
    quant_group_size: int | None
    quant_block_elements: int | None


def _int(config: Mapping[str, Any], key: str, source: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{source}: config field {key!r} must be a positive integer, got {value!r}")
    return value


def _optional_int(config: Mapping[str, Any], key: str, source: str) -> int | None:
    if config.get(key) is None:
        return None
    return _int(config, key, source)


def _moe_layers(config: Mapping[str, Any], num_layers: int, source: str) -> tuple[int, ...]:
    """Which decoder layers are MoE, following each family's own convention."""
    if "first_k_dense_replace" in config:
        first_dense = int(config.get("first_k_dense_replace") or 0)
        frequency = int(config.get("moe_layer_freq") or 1)
        return tuple(i for i in range(first_dense, num_layers) if i % frequency == 0)
    step = int(config.get("decoder_sparse_step") or 1)
    dense_only = set(config.get("mlp_only_layers") or [])
    return tuple(i for i in range(num_layers) if i not in dense_only and (i + 1) % step == 0)


def _moe(config: Mapping[str, Any], model_type: str, num_layers: int, source: str) -> MoeShape | None:
    experts_key = next((k for k in ("n_routed_experts", "num_local_experts", "num_experts") if config.get(k)), None)
    if experts_key is None:
        return None
    experts = _int(config, experts_key, source)
    per_token_key = "num_experts_per_tok" if "num_experts_per_tok" in config else "experts_per_token"
    experts_per_token = _int(config, per_token_key, source)
    expert_size = config.get("moe_intermediate_size") or config.get("intermediate_size")
    if not isinstance(expert_size, int) or expert_size <= 0:
        raise CatalogError(f"{source}: MoE config needs a positive 'moe_intermediate_size' or 'intermediate_size'")
    shared = int(config.get("shared_expert_intermediate_size") or 0)
    if config.get("n_shared_experts"):
        shared = int(config["n_shared_experts"]) * expert_size
    return MoeShape(
        experts=experts,
        experts_per_token=experts_per_token,
        expert_intermediate_size=expert_size,
        shared_intermediate_size=shared,
        shared_expert_gate=model_type == "qwen2_moe",
        router_bias=model_type == "gpt_oss",
        expert_bias=model_type == "gpt_oss",
        routed_scaling_bias=config.get("topk_method") == "noaux_tc",
        moe_layers=_moe_layers(config, num_layers, source),
    )


def _mla(config: Mapping[str, Any], source: str) -> MlaShape | None:
    if not config.get("kv_lora_rank"):
        return None
    return MlaShape(
        q_lora_rank=_optional_int(config, "q_lora_rank", source),
        kv_lora_rank=_int(config, "kv_lora_rank", source),
        qk_nope_head_dim=_int(config, "qk_nope_head_dim", source),
        qk_rope_head_dim=_int(config, "qk_rope_head_dim", source),
        v_head_dim=_int(config, "v_head_dim", source),
    )


def _sliding_layers(config: Mapping[str, Any], model_type: str, num_layers: int) -> tuple[int, ...]:
    """Layers whose KV cache is capped at the sliding window."""
    window = config.get("sliding_window")
    if not window or config.get("use_sliding_window") is False:
        return ()
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list):
        return tuple(i for i, kind in enumerate(layer_types) if kind == "sliding_attention")
    if model_type == "gemma2":
        return tuple(range(0, num_layers, 2))
    return tuple(range(num_layers))


def _block_elements(block: Any) -> int | None:
    """Elements per scale of a block-quantized checkpoint (weight_block_size [128, 128] -> 16384)."""
    if isinstance(block, list) and len(block) == 2 and all(isinstance(side, int) for side in block):
        return int(block[0]) * int(block[1])
    return None


def parse_architecture(config: Mapping[str, Any], source: str) -> Architecture:
    """Validate config.json fields and normalize them; errors name the source and the field."""
    for key in REQUIRED_KEYS:
        _int(config, key, source)
    model_type = str(config.get("model_type") or "unknown")
    hidden = _int(config, "hidden_size", source)
    layers = _int(config, "num_hidden_layers", source)
    heads = _int(config, "num_attention_heads", source)
    kv_heads = _optional_int(config, "num_key_value_heads", source) or heads
    head_dim = _optional_int(config, "head_dim", source) or hidden // heads
    moe = _moe(config, model_type, layers, source)
    intermediate = _optional_int(config, "intermediate_size", source)
    if intermediate is None:
        if moe is None:
            raise CatalogError(f"{source}: config field 'intermediate_size' is required for dense models")
        intermediate = moe.expert_intermediate_size
    quant = config.get("quantization_config") or {}
    if not isinstance(quant, Mapping):
        raise CatalogError(f"{source}: config field 'quantization_config' must be an object")
    qwen2_family = model_type in {"qwen2", "qwen2_moe"}
    attention_bias = bool(config.get("attention_bias", False))
    sliding_layers = _sliding_layers(config, model_type, layers)
    return Architecture(
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=_int(config, "vocab_size", source),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        max_position_embeddings=_optional_int(config, "max_position_embeddings", source),
        qkv_bias=qwen2_family or attention_bias or bool(config.get("qkv_bias", False)),
        o_bias=attention_bias and not qwen2_family,
        mlp_bias=bool(config.get("mlp_bias", False)),
        qk_norm=model_type in {"qwen3", "qwen3_moe", "gemma3"},
        norms_per_layer=4 if model_type in {"gemma2", "gemma3"} else 2,
        attention_sinks=model_type == "gpt_oss",
        sliding_window_layers=sliding_layers,
        sliding_window=int(config["sliding_window"]) if sliding_layers else None,
        moe=moe,
        mla=_mla(config, source),
        quant_method=str(quant["quant_method"]).lower() if quant.get("quant_method") else None,
        quant_bits=int(quant["bits"]) if quant.get("bits") else None,
        quant_group_size=int(quant["group_size"]) if quant.get("group_size") else None,
        quant_block_elements=_block_elements(quant.get("weight_block_size")),
    )
