"""A normalized view of a model's config.json: the handful of numbers sizing depends on.

Hugging Face configs name the same idea differently per family (num_local_experts, num_experts,
n_routed_experts); this module maps them once so the planner never looks at raw keys.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError, UnsupportedArchitectureError

REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
POSITIVE_KEYS = (*REQUIRED_KEYS, "num_key_value_heads", "head_dim", "intermediate_size", "max_position_embeddings")
"""Fields parsed as positive whenever present; the others may be 0 (meaning none: no experts, no window)."""


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
    fp32_router: bool = False
    """The router's weights are held in fp32 (MiniMax-M2's gate: params_dtype float32)."""
    gated_experts: bool = True
    """Experts are gate/up/down MLPs; False for up/down only (Nemotron 3's squared-ReLU experts)."""
    latent_size: int | None = None
    """Nemotron 3 Super's latent MoE: routed experts work in this width, projected to and from the hidden size."""


@dataclass(frozen=True)
class MlaShape:
    """DeepSeek multi-head latent attention; the cache holds one compressed latent per token and layer."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class RecurrentShape:
    """A linear-attention mixer that keeps a fixed state per sequence instead of a KV cache per token.

    Two kinds, named as vLLM's MambaStateShapeCalculator (vllm/model_executor/layers/mamba/mamba_utils.py) sizes
    them: `gated_delta_net` (Qwen3-Next, Qwen3.5) with `groups` key heads of `state_dim` and `heads` value heads
    of `head_dim`; `mamba2` (Nemotron-H, Granite-4.0-H) with `heads` heads of `head_dim`, `groups` B/C groups and
    an SSM state of `state_dim` per head dimension.
    """

    kind: str
    groups: int
    heads: int
    head_dim: int
    state_dim: int
    conv_kernel: int
    conv_bias: bool
    proj_bias: bool
    ssm_state_bytes: int
    """Bytes per element of the temporal (SSM) state: 4 where vLLM keeps it in fp32 (mamba_ssm_cache_dtype)."""

    @property
    def inner_size(self) -> int:
        """Width of the mixer's value path: value heads × head_dim (d_inner of Mamba-2)."""
        return self.heads * self.head_dim

    def groups_with_replicas(self, tensor_parallel: int) -> int:
        """Mamba-2 groups once vLLM replicates a single group to every rank (extra_groups_for_head_shards)."""
        return self.groups if self.groups % tensor_parallel == 0 else tensor_parallel

    def conv_channels(self, tensor_parallel: int) -> int:
        """Channels of the depthwise conv over all ranks: Gated DeltaNet's q, k and v (2 × key heads × key dim +
        value width); Mamba-2's x, B and C (d_inner + 2 × groups × state, groups replicated to cover the ranks)."""
        if self.kind == "gated_delta_net":
            return 2 * self.groups * self.state_dim + self.inner_size
        return self.inner_size + 2 * self.groups_with_replicas(tensor_parallel) * self.state_dim


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
    quant_weight_format: str | None = None
    """The format a pre-quantized checkpoint stores (fp8, int8, awq, gptq, mxfp4, nvfp4): from quant_method, the
    config_groups of compressed-tensors or ModelOpt's quant_algo; None for a scheme modelplane cannot size."""
    quant_scheme: str | None = None
    """What such an unsizable scheme is, for the refusal (e.g. "quant_algo MXFP8", "8-bit weights")."""
    quant_excluded_modules: tuple[str, ...] = ()
    """Decoder-layer linear modules the checkpoint leaves unquantized (ModelOpt exclude_modules, compressed-tensors
    ignore, modules_to_not_convert) where its format would quantize them: the config alone undercounts their bytes,
    so only the safetensors headers size them (planning.planner.unsized_checkpoint)."""
    multimodal: bool = False
    """Read from a multimodal config's `text_config`: the vision tower's weights come on top (from headers)."""
    vision_weight_bytes: int = 0
    """A multimodal model's vision tower and projector, summed from its safetensors headers (catalog.resolve)."""
    recurrent: RecurrentShape | None = None
    """The linear-attention mixer of a hybrid model; its layers are `recurrent_layers`."""
    recurrent_layers: tuple[int, ...] = ()
    mixerless_layers: tuple[int, ...] = ()
    """Layers with neither attention nor a recurrent mixer (Nemotron-H's MLP-only layers): no cache at all."""
    ffn_less_layers: tuple[int, ...] = ()
    """Layers with no feed-forward block (Nemotron-H's Mamba and attention layers)."""
    gated_mlp: bool = True
    """gate/up/down (SwiGLU) MLPs; False for a plain up/down MLP (Nemotron-H's squared-ReLU MLP)."""
    full_width_qk_norm: bool = False
    """The q/k norms span all heads (MiniMax-M2: head_dim × heads, split over the ranks), not one head."""
    attention_output_gate: bool = False
    """q_proj also yields a per-head output gate (Qwen3-Next, Qwen3.5: attn_output_gate), doubling its width."""
    checkpoint_layer_bytes: tuple[int, ...] = ()
    """Bytes of each decoder layer as the checkpoint stores it, from its safetensors headers (catalog.models); empty
    without headers, or when they do not hold exactly these layers."""
    checkpoint_outside_bytes: int = 0
    """Bytes of the language model's tensors outside its decoder layers (embedding, final norm, LM head)."""
    chunked_layers: tuple[int, ...] = ()
    """Layers attending within chunks of `attention_chunk_size` tokens (Llama 4's RoPE layers)."""
    attention_chunk_size: int | None = None

    @property
    def attention_layers(self) -> int:
        """Decoder layers that hold a KV cache."""
        return self.num_layers - len(self.recurrent_layers) - len(self.mixerless_layers)


class ArchitectureBounds(BaseModel):
    """catalog/data/architecture_bounds.yaml: the largest value each sized config.json field may take."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: int
    bounds: dict[str, int]
    max_list_length: int = Field(gt=0)
    sources: dict[str, str]


class ModelTypes(BaseModel):
    """catalog/data/model_types.yaml: the model types sized exactly, and what is missing for some others."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: int
    modelled: dict[str, str]
    config_defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    missing: dict[str, str]


@cache
def model_types() -> ModelTypes:
    text = resources.files("modelplane.catalog").joinpath("data/model_types.yaml").read_text()
    return ModelTypes.model_validate(yaml.safe_load(text))


MODELLED_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})
GATED_DELTANET_TYPES = frozenset({"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"})
"""Qwen3-Next and Qwen3.5's language models: Gated DeltaNet layers (layer_types linear_attention) between full
attention layers (vllm/model_executor/models/qwen3_next.py, qwen3_5.py)."""
HYBRID_LAYER_TYPES = {
    **{model_type: frozenset({"linear_attention"}) for model_type in GATED_DELTANET_TYPES},
    "granitemoehybrid": frozenset({"mamba", "attention"}),
}
"""The layer_types a hybrid model type may name besides full and sliding attention."""
NEMOTRON_H_LAYERS = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
"""hybrid_override_pattern characters vLLM's NemotronH builds (nemotron_h.py ALL_DECODER_LAYER_TYPES)."""
FP32_STATE_BYTES = 4
QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "qwen3_vl_text", "qwen3_vl_moe_text", "gemma3_text", "minimax_m2",
                           *GATED_DELTANET_TYPES})  # fmt: skip
QKV_BIAS_ONLY_TYPES = frozenset({"qwen2", "qwen2_moe", "glm4_moe"})
"""attention_bias (or the family's default) puts a bias on q, k and v but not on o_proj (Glm4MoeAttention)."""
USE_QK_NORM_TYPES = frozenset({"glm4_moe"})
"""Families with per-config q/k norms (use_qk_norm): GLM-4.5 has them, GLM-4.5-Air not."""
SHARED_EXPERT_GATE_TYPES = frozenset({"qwen2_moe", "qwen3_next", "qwen3_5_moe_text"})
"""MoE blocks whose shared expert is scaled by a sigmoid gate (Qwen2MoeSparseMoeBlock, Qwen3NextSparseMoeBlock)."""
SIXTEEN_BIT_STATE_BYTES = 2


def _check_modelled(config: Mapping[str, Any], model_type: str | None, source: str) -> str:
    """The model type, when the planner models its layers; otherwise a refusal naming what is missing."""
    known = model_types()
    modelled = ", ".join(sorted(known.modelled))
    if model_type is None:
        raise UnsupportedArchitectureError(
            f"{source}: config.json has no model_type, so its layer structure is unknown; add the model_type of"
            f" its config.json (modelplane sizes {modelled})"
        )
    if model_type not in known.modelled:
        missing = known.missing.get(model_type, "its layer structure is not modelled")
        raise UnsupportedArchitectureError(
            f"{source}: model_type {model_type!r} cannot be sized exactly: modelplane lacks {missing}; it is"
            f" refused rather than guessed (modelplane sizes {modelled})"
        )
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list):
        allowed = MODELLED_LAYER_TYPES | HYBRID_LAYER_TYPES.get(model_type, frozenset())
        other = sorted({str(kind) for kind in layer_types} - allowed)
        if other:
            raise UnsupportedArchitectureError(
                f"{source}: model_type {model_type!r} has layer_types {', '.join(other)}, which modelplane does"
                f" not model for it (it sizes {', '.join(sorted(allowed))} layers); refused rather than guessed"
            )
    return model_type


TEXT_CONFIG_INHERITED = ("quantization_config", "tie_word_embeddings")
"""Fields transformers' multimodal configs keep at the top level that apply to the language model too."""


def text_config(config: Mapping[str, Any], source: str) -> tuple[Mapping[str, Any], bool]:
    """The language model's fields: a multimodal config's `text_config` (Llama-4, Qwen3-VL, Gemma 3), else itself."""
    text = config.get("text_config")
    if text is None:
        return config, False
    if not isinstance(text, Mapping):
        raise CatalogError(f"{source}: config field 'text_config' must be an object")
    inherited = {key: config[key] for key in TEXT_CONFIG_INHERITED if key in config and key not in text}
    return {**inherited, **text}, True


@cache
def architecture_bounds() -> ArchitectureBounds:
    text = resources.files("modelplane.catalog").joinpath("data/architecture_bounds.yaml").read_text()
    return ArchitectureBounds.model_validate(yaml.safe_load(text))


def _shown(value: Any) -> str:
    """A value for an error message, never thousands of digits long (vocab_size: 10**400)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _bounded(value: int, key: str, source: str) -> int:
    limit = architecture_bounds().bounds.get(key)
    if limit is not None and value > limit:
        raise CatalogError(
            f"{source}: config field {key!r} is {_shown(value)}, above the largest modelplane sizes"
            f" ({limit:,}; catalog/data/architecture_bounds.yaml): use the model's real config.json"
        )
    return value


def _int(config: Mapping[str, Any], key: str, source: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{source}: config field {key!r} must be a positive integer, got {_shown(value)}")
    return _bounded(value, key, source)


def _integer(value: Any, field: str, source: str) -> int:
    """A field Hugging Face writes as a JSON integer that may be 0 (first_k_dense_replace); not text or a list."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogError(f"{source}: config field {field!r} must be a non-negative integer, got {_shown(value)}")
    return _bounded(value, field, source)


def _layer_list(value: Any, field: str, source: str) -> list[Any]:
    """A per-layer list (layer_types, mlp_only_layers), no longer than any model has layers."""
    if not isinstance(value, list):
        raise CatalogError(f"{source}: config field {field!r} must be a list")
    limit = architecture_bounds().max_list_length
    if len(value) > limit:
        raise CatalogError(f"{source}: config field {field!r} has {len(value):,} entries, more than {limit:,}")
    return value


def _optional_int(config: Mapping[str, Any], key: str, source: str) -> int | None:
    if config.get(key) is None:
        return None
    return _int(config, key, source)


def _moe_layers(config: Mapping[str, Any], num_layers: int, source: str) -> tuple[int, ...]:
    """Which decoder layers are MoE, following each family's own convention."""
    if "first_k_dense_replace" in config:
        first_dense = _integer(config.get("first_k_dense_replace") or 0, "first_k_dense_replace", source)
        frequency = _integer(config.get("moe_layer_freq") or 1, "moe_layer_freq", source)
        return tuple(i for i in range(first_dense, num_layers) if i % frequency == 0)
    step = _integer(config.get("decoder_sparse_step") or 1, "decoder_sparse_step", source)
    dense_layers = _layer_list(config.get("mlp_only_layers") or [], "mlp_only_layers", source)
    if not all(isinstance(layer, int) for layer in dense_layers):
        raise CatalogError(f"{source}: config field 'mlp_only_layers' must be a list of layer indices")
    dense_only = set(dense_layers)
    return tuple(i for i in range(num_layers) if i not in dense_only and (i + 1) % step == 0)


def _moe(config: Mapping[str, Any], model_type: str, num_layers: int, source: str) -> MoeShape | None:
    experts_key = next((k for k in ("n_routed_experts", "num_local_experts", "num_experts") if config.get(k)), None)
    if experts_key is None:
        return None
    experts = _int(config, experts_key, source)
    per_token_key = "num_experts_per_tok" if "num_experts_per_tok" in config else "experts_per_token"
    experts_per_token = _int(config, per_token_key, source)
    expert_key = "moe_intermediate_size" if config.get("moe_intermediate_size") else "intermediate_size"
    if not config.get(expert_key):
        raise CatalogError(f"{source}: MoE config needs a positive 'moe_intermediate_size' or 'intermediate_size'")
    expert_size = _int(config, expert_key, source)
    shared = _integer(config.get("shared_expert_intermediate_size") or 0, "shared_expert_intermediate_size", source)
    if config.get("n_shared_experts"):
        shared = _int(config, "n_shared_experts", source) * expert_size
    return MoeShape(
        gated_experts=model_type != "nemotron_h",
        latent_size=_optional_int(config, "moe_latent_size", source) if model_type == "nemotron_h" else None,
        experts=experts,
        experts_per_token=experts_per_token,
        expert_intermediate_size=expert_size,
        shared_intermediate_size=shared,
        shared_expert_gate=model_type in SHARED_EXPERT_GATE_TYPES,
        router_bias=model_type == "gpt_oss",
        expert_bias=model_type == "gpt_oss",
        # DeepSeek's noaux_tc, MiniMax's use_routing_bias and Nemotron 3 keep an e_score_correction_bias per expert
        routed_scaling_bias=config.get("topk_method") == "noaux_tc"
        or bool(config.get("use_routing_bias"))
        or model_type in {"nemotron_h", "glm4_moe"},
        moe_layers=_moe_layers(config, num_layers, source),
        fp32_router=model_type in {"minimax_m2", "glm4_moe"},
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


def _sliding_layers(config: Mapping[str, Any], model_type: str, num_layers: int, source: str) -> tuple[int, ...]:
    """Layers whose KV cache is capped at the sliding window."""
    window = config.get("sliding_window")
    if not window or config.get("use_sliding_window") is False:
        return ()
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list):
        _layer_list(layer_types, "layer_types", source)
        return tuple(i for i, kind in enumerate(layer_types) if kind == "sliding_attention")
    if model_type == "gemma2":
        return tuple(range(0, num_layers, 2))
    if "sliding_window_pattern" in config:
        pattern = _int(config, "sliding_window_pattern", source)
        return tuple(i for i in range(num_layers) if (i + 1) % pattern)
    return tuple(range(num_layers))


class Hybrid(NamedTuple):
    """Where a hybrid model's recurrent mixers are, and how its layers differ from a transformer's."""

    recurrent: RecurrentShape
    recurrent_layers: tuple[int, ...]
    mixerless_layers: tuple[int, ...] = ()
    ffn_less_layers: tuple[int, ...] = ()
    gated_mlp: bool = True
    norms_per_layer: int = 2


def _state_bytes(dtype: Any, default: int, field: str, source: str) -> int:
    """Bytes of an SSM state element from a config's dtype name (None: `default`)."""
    if dtype is None:
        return default
    sizes = {"float32": FP32_STATE_BYTES, "bfloat16": SIXTEEN_BIT_STATE_BYTES, "float16": SIXTEEN_BIT_STATE_BYTES}
    if not isinstance(dtype, str) or dtype not in sizes:
        raise CatalogError(f"{source}: config field {field!r} must be one of {', '.join(sizes)}, got {_shown(dtype)}")
    return sizes[dtype]


def _gated_deltanet(config: Mapping[str, Any], num_layers: int, source: str) -> Hybrid:
    """Qwen3-Next / Qwen3.5: a layer attends fully where layer_types says so (or every full_attention_interval-th)."""
    layer_types = config.get("layer_types")
    if layer_types is None:
        interval = _int(config, "full_attention_interval", source)
        layer_types = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(num_layers)]
    kinds = _layer_list(layer_types, "layer_types", source)
    if len(kinds) != num_layers:
        raise CatalogError(f"{source}: config field 'layer_types' has {len(kinds)} entries for {num_layers} layers")
    shape = RecurrentShape(
        kind="gated_delta_net",
        groups=_int(config, "linear_num_key_heads", source),
        heads=_int(config, "linear_num_value_heads", source),
        head_dim=_int(config, "linear_value_head_dim", source),
        state_dim=_int(config, "linear_key_head_dim", source),
        conv_kernel=_int(config, "linear_conv_kernel_dim", source),
        conv_bias=False,
        proj_bias=False,
        # vllm/model_executor/models/config.py Qwen3_5ForConditionalGenerationConfig: the config's mamba_ssm_dtype
        ssm_state_bytes=_state_bytes(config.get("mamba_ssm_dtype"), SIXTEEN_BIT_STATE_BYTES, "mamba_ssm_dtype", source),
    )
    return Hybrid(shape, tuple(i for i, kind in enumerate(kinds) if kind == "linear_attention"))


MAMBA2_FIELDS = {
    "granitemoehybrid": {"heads": "mamba_n_heads", "head_dim": "mamba_d_head", "state": "mamba_d_state",
                         "groups": "mamba_n_groups", "conv": "mamba_d_conv", "conv_bias": "mamba_conv_bias",
                         "proj_bias": "mamba_proj_bias"},
    "nemotron_h": {"heads": "mamba_num_heads", "head_dim": "mamba_head_dim", "state": "ssm_state_size",
                   "groups": "n_groups", "conv": "conv_kernel", "conv_bias": "use_conv_bias", "proj_bias": "use_bias"},
}  # fmt: skip
"""Each family's config.json names for a Mamba-2 mixer's fields (GraniteMoeHybridConfig, NemotronHConfig)."""


def _mamba2(config: Mapping[str, Any], model_type: str, source: str, ssm_state_bytes: int) -> RecurrentShape:
    """A Mamba-2 mixer, from the family's own field names (MAMBA2_FIELDS)."""
    names = MAMBA2_FIELDS[model_type]
    return RecurrentShape(
        kind="mamba2",
        groups=_int(config, names["groups"], source),
        heads=_int(config, names["heads"], source),
        head_dim=_int(config, names["head_dim"], source),
        state_dim=_int(config, names["state"], source),
        conv_kernel=_int(config, names["conv"], source),
        conv_bias=bool(config.get(names["conv_bias"], True)),
        proj_bias=bool(config.get(names["proj_bias"], False)),
        ssm_state_bytes=ssm_state_bytes,
    )


def _nemotron_h(config: Mapping[str, Any], num_layers: int, source: str) -> Hybrid:
    """Nemotron-H: one mixer or one MLP per layer, as hybrid_override_pattern spells them (M, *, -)."""
    pattern = config.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or len(pattern) != num_layers:
        raise CatalogError(f"{source}: config field 'hybrid_override_pattern' must be a string of one character per"
                           f" layer ({num_layers}), got {_shown(pattern)}")  # fmt: skip
    unknown = sorted(set(pattern) - set(NEMOTRON_H_LAYERS))
    if unknown:
        raise UnsupportedArchitectureError(
            f"{source}: model_type 'nemotron_h' has layers {', '.join(map(repr, unknown))} in hybrid_override_pattern,"
            " which modelplane does not model; it sizes M (Mamba-2), * (attention), - (MLP) and E (MoE) layers;"
            " refused rather than guessed"
        )
    if "E" in pattern and not config.get("n_routed_experts"):
        raise CatalogError(f"{source}: config field 'n_routed_experts' must be a positive integer: the E layers of"
                           " hybrid_override_pattern are mixture-of-experts")  # fmt: skip
    # vllm/model_executor/models/config.py NemotronHForCausalLMConfig: the SSM state is fp32 unless the config says.
    state = _state_bytes(config.get("mamba_ssm_cache_dtype"), FP32_STATE_BYTES, "mamba_ssm_cache_dtype", source)
    return Hybrid(
        _mamba2(config, "nemotron_h", source, state),
        recurrent_layers=tuple(i for i, kind in enumerate(pattern) if kind == "M"),
        mixerless_layers=tuple(i for i, kind in enumerate(pattern) if kind in "-E"),
        ffn_less_layers=tuple(i for i, kind in enumerate(pattern) if kind in "M*"),
        gated_mlp=False,
        norms_per_layer=1,
    )


def _granite_hybrid(config: Mapping[str, Any], num_layers: int, source: str) -> Hybrid:
    """Granite-4.0-H: every layer a Mamba-2 or attention mixer (layer_types), then its MoE and shared MLP."""
    kinds = _layer_list(config.get("layer_types"), "layer_types", source)
    if len(kinds) != num_layers:
        raise CatalogError(f"{source}: config field 'layer_types' has {len(kinds)} entries for {num_layers} layers")
    shape = _mamba2(config, "granitemoehybrid", source, SIXTEEN_BIT_STATE_BYTES)
    expand = _int(config, "mamba_expand", source)
    if expand * _int(config, "hidden_size", source) != shape.inner_size:
        raise CatalogError(f"{source}: mamba_expand × hidden_size must equal mamba_n_heads × mamba_d_head, as"
                           " vLLM's MambaMixer2 requires")  # fmt: skip
    return Hybrid(shape, tuple(i for i, kind in enumerate(kinds) if kind == "mamba"))


def _hybrid(config: Mapping[str, Any], model_type: str, num_layers: int, source: str) -> Hybrid | None:
    if model_type in GATED_DELTANET_TYPES:
        return _gated_deltanet(config, num_layers, source)
    if model_type == "nemotron_h":
        return _nemotron_h(config, num_layers, source)
    if model_type == "granitemoehybrid":
        return _granite_hybrid(config, num_layers, source)
    return None


def _family_fields(config: Mapping[str, Any], model_type: str, source: str) -> Mapping[str, Any]:
    """Config fields a family names its own way, under the names the parser reads.

    Granite-4.0-H calls its shared expert `shared_intermediate_size`, and a dense one (no local experts) has only
    that shared MLP; Nemotron-H may name its head size `attention_head_dim`.
    """
    if model_type == "granitemoehybrid" and "shared_intermediate_size" in config:
        shared = _int(config, "shared_intermediate_size", source)
        renamed: dict[str, Any] = {"shared_expert_intermediate_size": shared}
        if not config.get("num_local_experts"):
            renamed["intermediate_size"] = shared
        return {**config, **renamed}
    if model_type == "nemotron_h":
        renamed = {}
        if config.get("head_dim") is None and "attention_head_dim" in config:
            renamed["head_dim"] = config["attention_head_dim"]
        pattern = config.get("hybrid_override_pattern")
        if isinstance(pattern, str) and "E" in pattern:
            # Nemotron 3: the E layers are MoE (NemotronHMoE), with a shared expert of
            # moe_shared_expert_intermediate_size × n_shared_experts; every other layer has no experts.
            shared = _integer(config.get("moe_shared_expert_intermediate_size") or 0,
                              "moe_shared_expert_intermediate_size", source)  # fmt: skip
            count = _integer(config.get("n_shared_experts") or 0, "n_shared_experts", source)
            renamed["mlp_only_layers"] = [i for i, kind in enumerate(pattern) if kind != "E"]
            renamed["n_shared_experts"] = None
            renamed["shared_expert_intermediate_size"] = shared * count
        return {**config, **renamed}
    if model_type == "llama4_text":
        # Llama4TextConfig: intermediate_size is an expert's (and the shared expert's), intermediate_size_mlp a
        # dense layer's; a layer is MoE when (i + 1) % interleave_moe_layer_step == 0 (vllm llama4.py).
        expert = config.get("intermediate_size")
        dense = _int(config, "intermediate_size_mlp", source)
        return {**config, "intermediate_size": dense, "moe_intermediate_size": expert,
                "shared_expert_intermediate_size": expert,
                "decoder_sparse_step": config.get("interleave_moe_layer_step")}  # fmt: skip
    return config


NO_ROPE_LAYER_INTERVAL = 4
"""Llama4TextConfig's default: every 4th layer has no RoPE and attends globally; the others use RoPE."""


def _chunked_layers(config: Mapping[str, Any], model_type: str, num_layers: int, source: str) -> tuple[int, ...]:
    """Llama 4: its RoPE layers attend within chunks of attention_chunk_size (vllm llama4.py
    use_chunked_local_attn), its no-RoPE layers (no_rope_layers[i] == 0) to the whole sequence."""
    if model_type != "llama4_text" or not config.get("attention_chunk_size"):
        return ()
    flags = config.get("no_rope_layers") or [int((i + 1) % NO_ROPE_LAYER_INTERVAL != 0) for i in range(num_layers)]
    flags = _layer_list(flags, "no_rope_layers", source)
    if len(flags) != num_layers:
        raise CatalogError(f"{source}: config field 'no_rope_layers' has {len(flags)} entries for {num_layers} layers")
    return tuple(i for i, rope in enumerate(flags) if rope)


def _block_elements(block: Any) -> int | None:
    """Elements per scale of a block-quantized checkpoint (weight_block_size [128, 128] -> 16384)."""
    if isinstance(block, list) and len(block) == 2 and all(
            isinstance(side, int) and 0 < side <= QUANT_FIELD_MAX for side in block):  # fmt: skip
        return int(block[0]) * int(block[1])
    return None


COMPRESSED_TENSORS = "compressed-tensors"
QUANT_FIELD_MAX = 1 << 20
"""Bits and group sizes of a quantization config: 4, 8, 128 in practice; bounded so no size grows with them."""


class QuantConfig(NamedTuple):
    method: str | None
    bits: int | None
    group_size: int | None
    block_elements: int | None
    weight_format: str | None
    scheme: str | None = None
    """What a checkpoint stores that modelplane cannot size (for the refusal), when weight_format is None."""


def _compressed_tensors_weights(quant: Mapping[str, Any], source: str) -> QuantConfig:
    """The weights of a compressed-tensors checkpoint, from `config_groups.*.weights` of its quantization_config.

    Each config group quantizes its `targets` (normally every Linear but those in `ignore`, such as lm_head)
    with the QuantizationArgs under `weights`: `num_bits` (default 8) and `type` (`int` by default, or
    `float`), a `strategy` (tensor, channel, group, block), `group_size` and `block_structure`. vLLM picks
    its scheme from exactly these fields (vllm/model_executor/layers/quantization/compressed_tensors/
    compressed_tensors.py `_get_scheme_from_parts`): 8-bit float weights are FP8 (`_is_fp8_w8a8`, W8A8 on
    compute capability 8.9+, else `_is_fp8_w8a16` through FP8 Marlin), 8-bit int weights with quantized
    activations are INT8 W8A8 (`_is_static_tensor_w8a8`, `_is_dynamic_token_w8a8`), and 4-bit int weights
    without activation quantization are WNA16 (`_is_wNa16_group_channel` -> CompressedTensorsWNA16: 4-bit
    values packed into int32 with a 16-bit scale per `group_size` inputs, as GPTQ stores them). The
    Hugging Face transformers docs (quantization/compressed_tensors) name the same three on-disk formats:
    float-quantized (fp8), int-quantized (int8) and pack-quantized (int4).

    So 8-bit float is sized as fp8, 8-bit int as int8 and 4-bit int as gptq (4 bits + per-group scale and
    zero point: a symmetric checkpoint stores no zero point, so this over-counts by 0.5 byte per group;
    a channel-wise one, with no group_size, is counted at 128-weight groups). 8-bit per-channel scales
    are counted as one per matrix, like per-tensor ones (one fp32 per output row is under 0.1% of the
    weights). Any other scheme (4-bit float NVFP4/MXFP4, 2:4 sparsity-only) yields no format, and the
    planner refuses to size the checkpoint rather than count it as 16-bit. With several groups, the known
    format with the most bits is sized for every linear weight (an upper bound).
    """
    groups = quant.get("config_groups") or {}
    if not isinstance(groups, Mapping):
        raise CatalogError(f"{source}: quantization_config.config_groups must be an object")
    best: QuantConfig | None = None
    for name, group in groups.items():
        weights = group.get("weights") if isinstance(group, Mapping) else None
        if not isinstance(weights, Mapping):
            continue
        where = f"quantization_config.config_groups.{name}.weights"
        bits = _quant_int(weights, "num_bits", where, source) or 8
        kind = str(weights.get("type") or "int").lower()
        group_size = _quant_int(weights, "group_size", where, source)
        weight_format = None
        if bits == 8:
            weight_format = "fp8" if kind == "float" else "int8" if kind == "int" else None
        elif bits == 4 and kind == "int":
            weight_format = "gptq"
        elif bits == 4 and kind == "float" and group_size == NVFP4_GROUP:
            # nvfp4-pack-quantized: vllm compressed_tensors.py _is_fp4a4_nvfp4 / _is_fp4a16_nvfp4 (group_size 16)
            weight_format = "nvfp4"
        candidate = QuantConfig(COMPRESSED_TENSORS, bits, group_size, _block_elements(weights.get("block_structure")),
                                weight_format)  # fmt: skip
        if best is None or _weight_rank(candidate) > _weight_rank(best):
            best = candidate
    return best or QuantConfig(COMPRESSED_TENSORS, None, None, None, None)


def _weight_rank(config: QuantConfig) -> tuple[bool, int]:
    """Groups whose format is known first (so one unknown group does not hide them), then the most bits."""
    return config.weight_format is not None, config.bits or 0


MODELOPT = "modelopt"
NVFP4_GROUP = 16
MODELOPT_FORMATS = {
    "FP8": "fp8", "FP8_PER_CHANNEL_PER_TOKEN": "fp8", "FP8_PB_WO": "fp8",
    "NVFP4": "nvfp4", "W4A16_NVFP4": "nvfp4", "NVFP4_AWQ": "nvfp4",
}  # fmt: skip
"""ModelOpt quant_algo values and the format whose bytes they store (vllm/model_executor/layers/quantization/
modelopt.py QUANT_ALGOS; MXFP8 is left out: modelplane has no byte model for it yet, so it is refused)."""
FORMAT_BITS = {"fp8": 8, "nvfp4": 4}
FOUR_BIT_INT = {"awq": "awq", "gptq": "gptq", "auto-round": "gptq", "auto_round": "gptq"}
"""4-bit integer checkpoints and the format whose bytes they store: AutoRound packs as GPTQ or AWQ does
(vllm/model_executor/layers/quantization/auto_round.py serves it through the GPTQ/AWQ Marlin kernels)."""


def _modelopt(quant: Mapping[str, Any], source: str) -> QuantConfig:
    """A ModelOpt checkpoint, from hf_quant_config.json (`{"quantization": {"quant_algo": ...}}`) or from config.json
    (`{"quant_method": "modelopt", "quant_algo": ...}`), as ModelOptQuantConfigBase.from_config reads both.

    MIXED_PRECISION names an algorithm per layer (`quantized_layers`, ModelOptMixedPrecisionConfig); it is sized
    in the algorithm with the most bits among them, an upper bound (exact bytes come from the headers).
    """
    nested = quant.get("quantization")
    fields = nested if isinstance(nested, Mapping) else quant
    algo = str(fields.get("quant_algo") or "").upper()
    group_size = _quant_int(fields, "group_size", "quantization_config", source)
    if algo == "MIXED_PRECISION":
        layers = fields.get("quantized_layers")
        if not isinstance(layers, Mapping) or not layers:
            raise CatalogError(f"{source}: a ModelOpt MIXED_PRECISION config needs quantized_layers (an object)")
        algos = {str(layer.get("quant_algo") or "").upper() for layer in layers.values() if isinstance(layer, Mapping)}
        formats = {MODELOPT_FORMATS.get(name) for name in algos}
        if None in formats or not formats:
            unknown = sorted(name for name in algos if name not in MODELOPT_FORMATS)
            return QuantConfig(MODELOPT, None, None, None, None, f"MIXED_PRECISION with {', '.join(unknown)}")
        widest = max((name for name in formats if name), key=FORMAT_BITS.__getitem__)
        return QuantConfig(MODELOPT, FORMAT_BITS[widest], NVFP4_GROUP if widest == "nvfp4" else None, None, widest)
    weight_format = MODELOPT_FORMATS.get(algo)
    if weight_format is None:
        return QuantConfig(MODELOPT, None, None, None, None, f"quant_algo {algo or '(none)'}")
    return QuantConfig(MODELOPT, FORMAT_BITS[weight_format], group_size or (NVFP4_GROUP if weight_format == "nvfp4"
                       else None), None, weight_format)  # fmt: skip


def _is_modelopt(quant: Mapping[str, Any], method: str | None) -> bool:
    """config.json's quant_method modelopt (or modelopt_fp4), or hf_quant_config.json, which names no method."""
    if method is not None:
        return method.startswith(MODELOPT)
    producer = quant.get("producer")
    return isinstance(quant.get("quantization"), Mapping) or (isinstance(producer, Mapping)
                                                              and producer.get("name") == MODELOPT)  # fmt: skip


def _quant_config(quant: Mapping[str, Any], source: str) -> QuantConfig:
    method = str(quant["quant_method"]).lower() if quant.get("quant_method") else None
    if method == COMPRESSED_TENSORS:
        return _compressed_tensors_weights(quant, source)
    if quant and _is_modelopt(quant, method):
        return _modelopt(quant, source)
    bits = _quant_int(quant, "bits", "quantization_config", source)
    weight_format: str | None = None
    scheme = None
    if method in FOUR_BIT_INT:
        weight_format = FOUR_BIT_INT[method] if bits in (None, 4) else None
        scheme = f"{bits}-bit weights" if weight_format is None else None
    elif method in ("fp8", "mxfp4"):
        weight_format = method
    return QuantConfig(
        method,
        bits,
        _quant_int(quant, "group_size", "quantization_config", source),
        _block_elements(quant.get("weight_block_size")),
        weight_format,
        scheme,
    )


def _quant_int(quant: Mapping[str, Any], key: str, where: str, source: str) -> int | None:
    """A positive integer field of a quantization config, None when absent or null (-1 means none: GPTQ)."""
    value = quant.get(key)
    if value is None or (value == -1 and not isinstance(value, bool)):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= QUANT_FIELD_MAX:
        raise CatalogError(f"{source}: config field {where}.{key} must be an integer from 1 to {QUANT_FIELD_MAX},"
                           f" got {_shown(value)}")  # fmt: skip
    return value


EXCLUSION_KEYS = ("exclude_modules", "ignore", "modules_to_not_convert", "ignored_layers")
"""Where quantization configs list modules left unquantized: ModelOpt, compressed-tensors, transformers (fp8,
AWQ, GPTQ, MXFP4) and vLLM's own fp8 config."""
SIXTEEN_BIT_ANYWAY = re.compile(
    r"(lm_head|embed|norm|(^|\.)(gate|router)$|e_score_correction_bias|visual|vision|mm_projector|multi_modal)"
)
"""Modules the byte model keeps in 16 bits in every format, so leaving them unquantized changes nothing."""
LAYER_NUMBER = re.compile(r"layers\.(\d+)(?:\.|\*|$)")


def _excluded_linear_modules(quant: Mapping[str, Any], weight_format: str | None, num_layers: int) -> tuple[str, ...]:
    """The exclusion patterns that name decoder-layer linear weights the format would otherwise quantize."""
    if weight_format is None:
        return ()
    nested = quant.get("quantization")
    fields = nested if isinstance(nested, Mapping) else quant
    patterns: list[str] = []
    for key in EXCLUSION_KEYS:
        listed = fields.get(key, quant.get(key))
        if isinstance(listed, list):
            patterns += [str(item) for item in listed]
    harmful = []
    for pattern in dict.fromkeys(patterns):
        name = pattern.removeprefix("re:").replace(".*", "").strip("*$^.")
        number = LAYER_NUMBER.search(pattern)
        if SIXTEEN_BIT_ANYWAY.search(name) or (number and int(number.group(1)) >= num_layers):
            continue
        if weight_format == "mxfp4" and "expert" not in name:
            continue  # MXFP4 quantizes only the routed experts (weights.py)
        harmful.append(pattern)
    return tuple(harmful)


def parse_architecture(config: Mapping[str, Any], source: str) -> Architecture:
    """Validate config.json fields and normalize them; errors name the source and the field.

    A multimodal config is read from its `text_config` (errors then name `text_config`); an architecture the
    planner does not model is refused (UnsupportedArchitectureError) rather than sized as something else.
    """
    config, multimodal = text_config(config, source)
    if multimodal:
        source = f"{source} (text_config)"
    declared = config.get("model_type")
    config = {**model_types().config_defaults.get(str(declared), {}), **config}
    for key in REQUIRED_KEYS:
        _int(config, key, source)
    model_type = _check_modelled(config, str(declared) if declared else None, source)
    config = _family_fields(config, model_type, source)
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
    quantized = _quant_config(quant, source)
    qkv_bias_only = model_type in QKV_BIAS_ONLY_TYPES
    attention_bias = bool(config.get("attention_bias", False))
    sliding_layers = _sliding_layers(config, model_type, layers, source)
    hybrid = _hybrid(config, model_type, layers, source)
    chunked = _chunked_layers(config, model_type, layers, source)
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
        qkv_bias=model_type in {"qwen2", "qwen2_moe"} or attention_bias or bool(config.get("qkv_bias", False)),
        o_bias=attention_bias and not qkv_bias_only,
        mlp_bias=bool(config.get("mlp_bias", False)),
        qk_norm=model_type in QK_NORM_TYPES or (model_type in USE_QK_NORM_TYPES and bool(config.get("use_qk_norm"))),
        full_width_qk_norm=model_type == "minimax_m2",
        norms_per_layer=hybrid.norms_per_layer if hybrid else 4 if model_type in {"gemma2", "gemma3_text"} else 2,
        attention_sinks=model_type == "gpt_oss",
        sliding_window_layers=sliding_layers,
        sliding_window=_int(config, "sliding_window", source) if sliding_layers else None,
        moe=moe,
        mla=_mla(config, source),
        quant_method=quantized.method,
        quant_bits=quantized.bits,
        quant_group_size=quantized.group_size,
        quant_block_elements=quantized.block_elements,
        quant_weight_format=quantized.weight_format,
        quant_scheme=quantized.scheme,
        quant_excluded_modules=_excluded_linear_modules(quant, quantized.weight_format, layers),
        multimodal=multimodal,
        recurrent=hybrid.recurrent if hybrid else None,
        recurrent_layers=hybrid.recurrent_layers if hybrid else (),
        mixerless_layers=hybrid.mixerless_layers if hybrid else (),
        ffn_less_layers=hybrid.ffn_less_layers if hybrid else (),
        gated_mlp=hybrid.gated_mlp if hybrid else True,
        # qwen3_next.py Qwen3NextAttention: attn_output_gate defaults to true; Qwen3.5 configs set it
        attention_output_gate=model_type in GATED_DELTANET_TYPES and bool(config.get("attn_output_gate", True)),
        chunked_layers=chunked,
        attention_chunk_size=_int(config, "attention_chunk_size", source) if chunked else None,
    )
