"""Exact parameter counts from a model's architecture, split by what quantization does to them.

Linear (matmul) weights are what fp8/int8/awq/gptq compress; embeddings, the LM head, norms,
biases and MoE routers stay 16-bit in vLLM and TensorRT-LLM. Counting per layer lets pipeline
parallelism place layers exactly as vLLM does.
"""

from dataclasses import dataclass

from modelplane.catalog.architecture import Architecture
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
    linear = hidden * q_width + 2 * hidden * kv_width + q_width * hidden
    other = 0
    if arch.qkv_bias:
        other += q_width + 2 * kv_width
    if arch.o_bias:
        other += hidden  # a row-parallel bias is whole on every rank
    if arch.qk_norm:
        other += 2 * arch.head_dim
    if arch.attention_sinks:
        other += heads
    return linear, other, 4


def _gated_mlp(arch: Architecture, intermediate: int, bias: bool, tp: int) -> tuple[int, int]:
    """(linear, bias) of a gate/up (column-parallel) and down (row-parallel) MLP on one of `tp` ranks."""
    shard = _shard(intermediate, tp)
    return 3 * arch.hidden_size * shard, (2 * shard + arch.hidden_size) if bias else 0


def _layer(arch: Architecture, is_moe: bool, tp: int, padded: bool) -> LayerParameters:
    """A decoder layer is of one of two kinds, dense or MoE; each kind is counted once per model."""
    attention_linear, other, matrices = _attention(arch, tp)
    other += arch.norms_per_layer * arch.hidden_size
    moe = arch.moe
    if moe is None or not is_moe:
        mlp_linear, mlp_bias = _gated_mlp(arch, arch.intermediate_size, arch.mlp_bias, tp)
        return LayerParameters(
            linear=attention_linear + mlp_linear,
            other=other + mlp_bias,
            active_linear=attention_linear + mlp_linear,
            linear_matrices=matrices + 3,
            expert_linear=0,
            active_expert_linear=0,
            mxfp4_expert_linear=0,
        )
    expert_linear, expert_bias = _gated_mlp(arch, moe.expert_intermediate_size, moe.expert_bias, tp)
    shared_linear, _ = _gated_mlp(arch, moe.shared_intermediate_size, False, tp)
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
        linear=attention_linear + routed + shared_linear,
        other=other,
        active_linear=attention_linear + moe.experts_per_token * expert_linear + shared_linear,
        linear_matrices=matrices + 3 * moe.experts + (3 if shared_linear else 0),
        expert_linear=routed,
        active_expert_linear=moe.experts_per_token * expert_linear,
        mxfp4_expert_linear=mxfp4_routed,
    )


def count_parameters(arch: Architecture, tensor_parallel: int | None = None) -> ParameterBreakdown:
    """Every weight of the model as stored in its checkpoint (MTP/draft modules excluded).

    With `tensor_parallel`, the weights one of that many ranks holds once vLLM has loaded them (sharding.py):
    column- and row-parallel matrices split, replicated tensors whole, the vocabulary padded.
    """
    tp = tensor_parallel or 1
    vocab = padded_vocab(arch.vocab_size) // tp if tensor_parallel else arch.vocab_size
    embedding = vocab * arch.hidden_size
    moe_layers = set(arch.moe.moe_layers) if arch.moe else set()
    kinds = {is_moe: _layer(arch, is_moe, tp, tensor_parallel is not None) for is_moe in (False, True)}
    return ParameterBreakdown(
        embedding=embedding,
        lm_head=0 if arch.tie_word_embeddings else embedding,
        final_norm=arch.hidden_size,
        layers=tuple(kinds[index in moe_layers] for index in range(arch.num_layers)),
    )
