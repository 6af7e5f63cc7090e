"""Exact parameter counts from a model's architecture, split by what quantization does to them.

Linear (matmul) weights are what fp8/int8/awq/gptq compress; embeddings, the LM head, norms,
biases and MoE routers stay 16-bit in vLLM and TensorRT-LLM. Counting per layer lets pipeline
parallelism place layers exactly as vLLM does.
"""

from dataclasses import dataclass

from modelplane.catalog.architecture import Architecture


@dataclass(frozen=True)
class LayerParameters:
    """Parameters of one decoder layer."""

    linear: int
    other: int
    active_linear: int
    linear_matrices: int
    expert_linear: int
    active_expert_linear: int

    @property
    def total(self) -> int:
        return self.linear + self.other

    def active_view(self) -> "LayerParameters":
        """The part of the layer one token reads: only the routed experts of an MoE layer."""
        return LayerParameters(
            linear=self.active_linear,
            other=self.other,
            active_linear=self.active_linear,
            linear_matrices=self.linear_matrices,
            expert_linear=self.active_expert_linear,
            active_expert_linear=self.active_expert_linear,
        )


@dataclass(frozen=True)
class ParameterBreakdown:
    embedding: int
    lm_head: int
    final_norm: int
    layers: tuple[LayerParameters, ...]

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.final_norm + sum(layer.total for layer in self.layers)

    @property
    def active(self) -> int:
        """Parameters read to produce one token: MoE layers read only the routed and shared experts."""
        layer_active = sum(layer.active_linear + layer.other for layer in self.layers)
        return self.embedding + self.lm_head + self.final_norm + layer_active


def _attention(arch: Architecture) -> tuple[int, int, int]:
    """(linear, other, matrices) of one attention block."""
    hidden, heads = arch.hidden_size, arch.num_attention_heads
    if arch.mla is not None:
        mla = arch.mla
        qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        if mla.q_lora_rank:
            q_linear = hidden * mla.q_lora_rank + mla.q_lora_rank * heads * qk_head
            q_other, q_matrices = mla.q_lora_rank, 2
        else:
            q_linear, q_other, q_matrices = hidden * heads * qk_head, 0, 1
        kv_linear = hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank * heads * (
            mla.qk_nope_head_dim + mla.v_head_dim
        )
        out_linear = heads * mla.v_head_dim * hidden
        return q_linear + kv_linear + out_linear, q_other + mla.kv_lora_rank, q_matrices + 3
    q_width = heads * arch.head_dim
    kv_width = arch.num_kv_heads * arch.head_dim
    linear = hidden * q_width + 2 * hidden * kv_width + q_width * hidden
    other = 0
    if arch.qkv_bias:
        other += q_width + 2 * kv_width
    if arch.o_bias:
        other += hidden
    if arch.qk_norm:
        other += 2 * arch.head_dim
    if arch.attention_sinks:
        other += heads
    return linear, other, 4


def _gated_mlp(arch: Architecture, intermediate: int, bias: bool) -> tuple[int, int]:
    """(linear, bias) of a gate/up/down MLP."""
    return 3 * arch.hidden_size * intermediate, (2 * intermediate + arch.hidden_size) if bias else 0


def _layer(arch: Architecture, is_moe: bool) -> LayerParameters:
    """A decoder layer is of one of two kinds, dense or MoE; each kind is counted once per model."""
    attention_linear, other, matrices = _attention(arch)
    other += arch.norms_per_layer * arch.hidden_size
    moe = arch.moe
    if moe is None or not is_moe:
        mlp_linear, mlp_bias = _gated_mlp(arch, arch.intermediate_size, arch.mlp_bias)
        return LayerParameters(
            linear=attention_linear + mlp_linear,
            other=other + mlp_bias,
            active_linear=attention_linear + mlp_linear,
            linear_matrices=matrices + 3,
            expert_linear=0,
            active_expert_linear=0,
        )
    expert_linear, expert_bias = _gated_mlp(arch, moe.expert_intermediate_size, moe.expert_bias)
    shared_linear, _ = _gated_mlp(arch, moe.shared_intermediate_size, False)
    other += moe.experts * expert_bias + arch.hidden_size * moe.experts
    if moe.router_bias or moe.routed_scaling_bias:
        other += moe.experts
    if moe.shared_expert_gate:
        other += arch.hidden_size
    routed = moe.experts * expert_linear
    return LayerParameters(
        linear=attention_linear + routed + shared_linear,
        other=other,
        active_linear=attention_linear + moe.experts_per_token * expert_linear + shared_linear,
        linear_matrices=matrices + 3 * moe.experts + (3 if shared_linear else 0),
        expert_linear=routed,
        active_expert_linear=moe.experts_per_token * expert_linear,
    )


def count_parameters(arch: Architecture) -> ParameterBreakdown:
    """Every weight of the model as stored in its checkpoint (MTP/draft modules excluded)."""
    embedding = arch.vocab_size * arch.hidden_size
    moe_layers = set(arch.moe.moe_layers) if arch.moe else set()
    kinds = {is_moe: _layer(arch, is_moe) for is_moe in (False, True)}
    return ParameterBreakdown(
        embedding=embedding,
        lm_head=0 if arch.tie_word_embeddings else embedding,
        final_norm=arch.hidden_size,
        layers=tuple(kinds[index in moe_layers] for index in range(arch.num_layers)),
    )
