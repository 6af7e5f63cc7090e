"""How vLLM splits each architecture family's weights across tensor-parallel ranks: the one place that says so.

parameters.count_parameters(arch, tensor_parallel) counts one rank's weights by these rules (vllm-0.33.0
wheel; files under vllm/model_executor/):

- q/k/v and gate/up projections: column-parallel, 1/TP of the output rows (layers/linear.py
  ColumnParallelLinear, QKVParallelLinear, MergedColumnParallelLinear).
- k/v projections when TP > KV heads: one KV head per rank, replicated TP / kv_heads times (layers/linear.py
  QKVParallelLinear, num_kv_head_replicas).
- o and down projections: row-parallel, 1/TP of the input columns; the bias whole (layers/linear.py
  RowParallelLinear).
- embedding and LM head: the vocabulary padded to a multiple of 64, then 1/TP of the rows
  (layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE, pad_vocab_size).
- RMSNorm / LayerNorm weights, Qwen3's q_norm and k_norm: replicated (models/llama.py, models/qwen3.py).
- the MoE router `gate` and Qwen2-MoE's `shared_expert_gate`: replicated, ReplicatedLinear (models/mixtral.py,
  models/qwen2_moe.py, models/qwen3_moe.py, models/deepseek_v2.py, models/gpt_oss.py).
- MoE experts: every expert on every rank, its intermediate dimension 1/TP, w13 column- and w2 row-parallel
  (layers/fused_moe/layer.py FusedMoE); gpt-oss's expert biases: w13 bias 1/TP, w2 bias whole.
- shared experts (DeepSeek, Qwen2-MoE): a column/row-parallel MLP (models/deepseek_v2.py DeepseekV2MLP,
  models/qwen2_moe.py).
- MLA's low-rank down projections q_a_proj (fused_qkv_a_proj) and kv_a_proj_with_mqa, and q_a_layernorm and
  kv_a_layernorm: replicated; q_b_proj (or q_proj) and kv_b_proj column-parallel over heads (models/deepseek_v2.py
  DeepseekV2MLAAttention: ReplicatedLinear, MergedColumnParallelLinear with disable_tp).
- gpt-oss attention sinks: one per local head, 1/TP (models/gpt_oss.py OAIAttention.sinks).
- gpt-oss MXFP4 experts: hidden padded to a multiple of 256, the per-rank intermediate to 128
  (layers/fused_moe/oracle/mxfp4.py mxfp4_round_up_hidden_size_and_intermediate_size, for the Marlin and
  TRT-LLM backends, the CUDA ones).

Expert parallelism (`--enable-expert-parallel`) places whole experts instead; the plan does not use it.
"""

VOCAB_PADDING = 64
"""layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE."""
MXFP4_HIDDEN_ALIGNMENT = 256
MXFP4_INTERMEDIATE_ALIGNMENT = 128
"""layers/fused_moe/oracle/mxfp4.py: Marlin (Hopper, Ampere) and TRT-LLM (Blackwell) round hidden up to 256 and the
per-rank intermediate up to 128."""


def _round_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def padded_vocab(vocab_size: int) -> int:
    return _round_up(vocab_size, VOCAB_PADDING)


def mxfp4_padded_dimensions(hidden_size: int, intermediate_per_rank: int) -> tuple[int, int]:
    return _round_up(hidden_size, MXFP4_HIDDEN_ALIGNMENT), _round_up(
        intermediate_per_rank, MXFP4_INTERMEDIATE_ALIGNMENT
    )
