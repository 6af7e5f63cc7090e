"""Exact parameter counts from a model's architecture, split by what quantization does to them.

Linear (matmul) weights are what fp8/int8/awq/gptq compress; embeddings, the LM head, norms,
biases and MoE routers stay 16-bit in vLLM and TensorRT-LLM. Counting per layer lets pipeline
parallelism place layers exactly as vLLM does.
"""

from dataclasses import dataclass
from typing import NamedTuple

from modelplane.catalog.architecture import Architecture, RecurrentShape
from modelplane.planning.sharding import mxfp4_padded_dimensions, padded_vocab


@dataclass(frozen=True)
class LayerParameters:
    """Parameters of one decoder layer."""

    linear: int
    other: int
    active_linear: int
    linear_matrices: int
    expert_linear: int
    active_expert_linear: int
    mxfp4_expert_linear: int
    """The routed experts as vLLM's MXFP4 MoE kernels hold them (dimensions padded, sharding.py)."""
    fp32_other: int = 0
    """Of `other`, the parameters held in fp32 rather than 16 bits (a router vLLM keeps in float32)."""

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
            mxfp4_expert_linear=self.active_expert_linear,
            fp32_other=self.fp32_other,
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


def _shard(size: int, tensor_parallel: int) -> int:
    """One rank's slice of a column- or row-parallel dimension (vllm/model_executor/layers/linear.py)."""
    return -(-size // tensor_parallel)


def _attention(arch: Architecture, tp: int) -> tuple[int, int, int]:
    """(linear, other, matrices) of one attention block on one of `tp` ranks (tp 1: the checkpoint's)."""
    hidden, heads = arch.hidden_size, _shard(arch.num_attention_heads, tp)
    if arch.mla is not None:
        mla = arch.mla
        qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        # sharding.py: the low-rank down projections (q_a_proj, kv_a_proj_with_mqa) and their norms are
        # replicated; q_b_proj / q_proj and kv_b_proj are column-parallel, o_proj row-parallel.
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
    # QKVParallelLinear: ranks beyond the KV heads hold a replica of one KV head.
    kv_width = max(1, arch.num_kv_heads // tp) * arch.head_dim
    # An output gate (Qwen3-Next) doubles q_proj: it yields the query and the gate of every head.
    gate_width = q_width if arch.attention_output_gate else 0
    linear = hidden * (q_width + gate_width) + 2 * hidden * kv_width + q_width * hidden
    other = 0
    if arch.qkv_bias:
        other += q_width + 2 * kv_width
    if arch.o_bias:
        other += hidden  # a row-parallel bias is whole on every rank
    if arch.qk_norm:
        other += q_width + kv_width if arch.full_width_qk_norm else 2 * arch.head_dim
    if arch.attention_sinks:
        other += heads
    return linear, other, 4


def _recurrent(arch: Architecture, shape: RecurrentShape, tp: int) -> tuple[int, int, int]:
    """(linear, other, matrices) of one linear-attention mixer on one of `tp` ranks.

    Gated DeltaNet (vllm qwen3_next.py Qwen3NextGatedDeltaNet): in_proj_qkvz and in_proj_ba column-parallel,
    a depthwise conv1d over the q/k/v channels, A_log and dt_bias per value head, a gated RMSNorm of one head's
    width (replicated) and out_proj row-parallel. Mamba-2 (vllm mamba_mixer2.py MambaMixer2): in_proj yields
    z, x, B, C and dt (B and C per group, groups replicated to cover the ranks), conv1d over x, B and C, A, D
    and dt_bias per head, a gated RMSNorm of d_inner (split) and out_proj row-parallel. The conv weights are
    counted 16-bit: no checkpoint modelplane sizes quantizes them.
    """
    hidden, inner = arch.hidden_size, shape.inner_size
    heads = _shard(shape.heads, tp)
    conv_width = _shard(shape.conv_channels(tp), tp)
    if shape.kind == "gated_delta_net":
        # in_proj_qkvz (q, k, v and the z gate: conv channels + value width) and in_proj_ba (a b and an a per head)
        in_proj = hidden * _shard(shape.conv_channels(tp) + inner + 2 * shape.heads, tp)
        out_proj = _shard(inner, tp) * hidden
        return in_proj + out_proj, conv_width * shape.conv_kernel + 2 * heads + shape.head_dim, 3
    in_width = _shard(shape.conv_channels(tp) + inner + shape.heads, tp)  # z, then x, B and C, then dt
    other = conv_width * shape.conv_kernel + 3 * heads + _shard(inner, tp)
    if shape.conv_bias:
        other += conv_width
    if shape.proj_bias:
        other += in_width + hidden
    return hidden * in_width + _shard(inner, tp) * hidden, other, 2


def _mlp(
    arch: Architecture, intermediate: int, bias: bool, tp: int, gated: bool = True, width: int | None = None
) -> tuple[int, int]:
    """(linear, bias) of a gate/up (column-parallel) and down (row-parallel) MLP on one of `tp` ranks.

    Without a gate (Nemotron-H's squared-ReLU MLP) it is up and down only; `width` is its input and output size
    (the hidden size unless a latent MoE's experts work in their latent space).
    """
    shard, width = _shard(intermediate, tp), width or arch.hidden_size
    matrices = 3 if gated else 2
    return matrices * width * shard, ((matrices - 1) * shard + width) if bias else 0


class LayerKind(NamedTuple):
    """What one decoder layer holds: its mixer (attention, recurrent, none) and its feed-forward (dense, moe, none)."""

    mixer: str
    ffn: str


def layer_kinds(arch: Architecture) -> tuple[LayerKind, ...]:
    """Each decoder layer's kind, in order."""
    moe_layers = set(arch.moe.moe_layers) if arch.moe else set()
    recurrent, mixerless, ffn_less = set(arch.recurrent_layers), set(arch.mixerless_layers), set(arch.ffn_less_layers)
    return tuple(
        LayerKind(
            "recurrent" if index in recurrent else "none" if index in mixerless else "attention",
            "none" if index in ffn_less else "moe" if index in moe_layers else "dense",
        )
        for index in range(arch.num_layers)
    )


def _mixer(arch: Architecture, mixer: str, tp: int) -> tuple[int, int, int]:
    if mixer == "attention":
        return _attention(arch, tp)
    if mixer == "recurrent" and arch.recurrent is not None:
        return _recurrent(arch, arch.recurrent, tp)
    return 0, 0, 0


def _layer(arch: Architecture, kind: LayerKind, tp: int, padded: bool) -> LayerParameters:
    """A decoder layer of one kind (mixer, feed-forward); each kind is counted once per model."""
    mixer_linear, other, matrices = _mixer(arch, kind.mixer, tp)
    other += arch.norms_per_layer * arch.hidden_size
    moe = arch.moe
    if kind.ffn != "moe" or moe is None:
        mlp_linear, mlp_bias, mlp_matrices = 0, 0, 0
        if kind.ffn == "dense":
            mlp_linear, mlp_bias = _mlp(arch, arch.intermediate_size, arch.mlp_bias, tp, arch.gated_mlp)
            mlp_matrices = 3 if arch.gated_mlp else 2
        return LayerParameters(
            linear=mixer_linear + mlp_linear,
            other=other + mlp_bias,
            active_linear=mixer_linear + mlp_linear,
            linear_matrices=matrices + mlp_matrices,
            expert_linear=0,
            active_expert_linear=0,
            mxfp4_expert_linear=0,
        )
    expert_linear, expert_bias = _mlp(arch, moe.expert_intermediate_size, moe.expert_bias, tp, moe.gated_experts,
                                      moe.latent_size)  # fmt: skip
    if moe.latent_size:
        # nemotron_h.py NemotronHMoE: fc1_latent_proj (hidden -> latent) and fc2_latent_proj (latent -> hidden) are
        # ReplicatedLinear, whole on every rank, and unquantized in every checkpoint (UnquantizedLinearMethod).
        other += 2 * arch.hidden_size * moe.latent_size
    shared_linear, _ = _mlp(arch, moe.shared_intermediate_size, False, tp, moe.gated_experts)
    expert_matrices = 3 if moe.gated_experts else 2
    # The router (gate) is a ReplicatedLinear in every MoE family; so is Qwen2-MoE's shared_expert_gate.
    other += moe.experts * expert_bias + arch.hidden_size * moe.experts
    if moe.router_bias or moe.routed_scaling_bias:
        other += moe.experts
    if moe.shared_expert_gate:
        other += arch.hidden_size
    routed = moe.experts * expert_linear
    mxfp4_routed = routed
    if padded:
        hidden, shard = mxfp4_padded_dimensions(arch.hidden_size, _shard(moe.expert_intermediate_size, tp))
        mxfp4_routed = moe.experts * 3 * hidden * shard
    return LayerParameters(
        linear=mixer_linear + routed + shared_linear,
        other=other,
        active_linear=mixer_linear + moe.experts_per_token * expert_linear + shared_linear,
        linear_matrices=matrices + expert_matrices * (moe.experts + (1 if shared_linear else 0)),
        expert_linear=routed,
        active_expert_linear=moe.experts_per_token * expert_linear,
        mxfp4_expert_linear=mxfp4_routed,
        fp32_other=arch.hidden_size * moe.experts if moe.fp32_router else 0,
    )


def count_parameters(arch: Architecture, tensor_parallel: int | None = None) -> ParameterBreakdown:
    """Every weight of the model as stored in its checkpoint (MTP/draft modules excluded).

    With `tensor_parallel`, the weights one of that many ranks holds once vLLM has loaded them (sharding.py):
    column- and row-parallel matrices split, replicated tensors whole, the vocabulary padded.
    """
    tp = tensor_parallel or 1
    vocab = padded_vocab(arch.vocab_size) // tp if tensor_parallel else arch.vocab_size
    embedding = vocab * arch.hidden_size
    kinds = layer_kinds(arch)
    counted = {kind: _layer(arch, kind, tp, tensor_parallel is not None) for kind in set(kinds)}
    return ParameterBreakdown(
        embedding=embedding,
        lm_head=0 if arch.tie_word_embeddings else embedding,
        final_norm=arch.hidden_size,
        layers=tuple(counted[kind] for kind in kinds),
    )
