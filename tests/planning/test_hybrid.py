"""Hybrid models (Gated DeltaNet and Mamba-2 layers beside attention), against vLLM's own logs and hand arithmetic.

The block sizes vLLM logs ("Setting attention block size to N tokens to ensure that attention page size is >=
mamba page size") are published numbers nobody here computed: they pin the recurrent-state formula and the
block rule together. The rest is arithmetic from config.json fields, worked in the comments.
"""

from typing import Any

import pytest

from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.models import model_catalog
from modelplane.planning.estimate import estimate_model
from modelplane.planning.kv_cache import KvLayout, block_tokens, recurrent_state_bytes, stage_kv_layouts
from modelplane.planning.parameters import count_parameters
from modelplane.planning.planner import _Planner
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.planning.shapes import heads_problem
from tests.support import deployment, pool
from tests.validation.harness import records

QWEN3_NEXT = model_catalog()["Qwen/Qwen3-Next-80B-A3B-Instruct"].architecture
NEMOTRON_H_56B = model_catalog()["nvidia/Nemotron-H-56B-Base-8K"].architecture

# NVIDIA-Nemotron-Nano-9B-v2's sizing fields as its model card and config publish them (27 Mamba-2, 4 attention
# and 25 MLP layers).
NEMOTRON_NANO_9B: dict[str, Any] = {
    "model_type": "nemotron_h", "hidden_size": 4480, "num_hidden_layers": 56, "num_attention_heads": 40,
    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 15680, "vocab_size": 131072,
    "mamba_num_heads": 128, "mamba_head_dim": 80, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4,
    "hybrid_override_pattern": "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-",
}  # fmt: skip
# Granite-4.0-H-Small: 36 Mamba-2 and 4 attention layers (every layer also has 72 experts, top 10, and a shared MLP).
GRANITE_H_SMALL: dict[str, Any] = {
    "model_type": "granitemoehybrid", "hidden_size": 4096, "num_hidden_layers": 40, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 768, "shared_intermediate_size": 1536, "vocab_size": 100352,
    "num_local_experts": 72, "num_experts_per_tok": 10, "tie_word_embeddings": True,
    "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4,
    "mamba_expand": 2,
    "layer_types": ["attention" if i in (5, 15, 25, 35) else "mamba" for i in range(40)],
}  # fmt: skip


def test_only_the_attention_layers_cache_keys_and_values() -> None:
    # Issue 14: Qwen3-Next caches 24,576 B/token from its 12 full-attention layers (2 KV heads × 256 × 2 × 2 B
    # × 12), Nemotron-H-56B 40,960 B/token from its 10 attention layers (2 × 8 × 128 × 2 B × 10).
    qwen = estimate_model("Qwen/Qwen3-Next-80B-A3B-Instruct", None, Quantization.BF16, KvCacheDtype.AUTO, "t")
    nemotron = estimate_model("nvidia/Nemotron-H-56B-Base-8K", None, Quantization.BF16, KvCacheDtype.AUTO, "t")
    assert (qwen.kv_cache_bytes_per_token, qwen.attention_layers, qwen.layers) == (24_576, 12, 48)
    assert (nemotron.kv_cache_bytes_per_token, nemotron.attention_layers) == (40_960, 10)
    # 36 Gated DeltaNet states of 1,097,728 B (below); 54 Mamba-2 states of 16,900,096 B: conv (8192 + 2 × 8 ×
    # 256) × 3 × 2 B = 73,728 and fp32 SSM 256 heads × 64 × 256 × 4 B = 16,777,216 ... + 49,152 = 16,900,096.
    assert qwen.recurrent_state_bytes_per_sequence == 36 * 1_097_728
    assert nemotron.recurrent_state_bytes_per_sequence == 54 * (73_728 + 16_777_216 + 49_152)


def test_parameters_are_the_published_totals() -> None:
    # Qwen3-Next: "80B in total and 3B activated" (its MTP layer excluded, as vLLM loads it only to speculate);
    # Nemotron-H: 56B. Issue 14 found 79.0B and 115.0B when the recurrent layers were counted as attention + MLP.
    assert round(count_parameters(QWEN3_NEXT).total / 1e9) == 80
    assert round(count_parameters(QWEN3_NEXT).active / 1e9) in (3, 4)
    assert round(count_parameters(NEMOTRON_H_56B).total / 1e9) == 56


def test_mamba2_hybrids_count_their_published_totals() -> None:
    # Granite-4.0-H-Small: "32B total, 9B active" (32.2B on some pages); NVIDIA-Nemotron-Nano-9B-v2: 8.89B.
    granite = count_parameters(parse_architecture(GRANITE_H_SMALL, "t"))
    nano = count_parameters(parse_architecture(NEMOTRON_NANO_9B, "t"))
    assert (round(granite.total / 1e8), round(granite.active / 1e9)) == (322, 9)
    assert round(nano.total / 1e7) == 889


def test_nemotron_3_moe_layers_have_squared_relu_experts() -> None:
    # NVIDIA-Nemotron-3-Nano-30B-A3B ("31.6B total parameters"): its E layers are NemotronHMoE, 128 experts of up
    # and down projections only (activation_without_mul(relu2)), top 6, one shared expert of the same kind.
    arch = model_catalog()["nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"].architecture
    assert arch.moe is not None
    assert (len(arch.moe.moe_layers), arch.attention_layers, len(arch.recurrent_layers)) == (23, 6, 23)
    layer = count_parameters(arch).layers[arch.moe.moe_layers[0]]
    router = 2688 * 128 + 128  # gate and e_score_correction_bias
    assert layer.linear == 128 * 2 * 2688 * 1856 + 2 * 2688 * 3712
    assert layer.other == router + 2688  # and the layer's one norm
    assert round(count_parameters(arch).total / 1e8) == 316


def test_a_latent_moe_runs_its_experts_in_the_latent_width() -> None:
    # NVIDIA-Nemotron-3-Super-120B-A12B (config from ai-dynamo/aiconfigurator @ 095f58a5; "120B total, 12B active"):
    # 512 experts of up/down 1024 × 2688 behind replicated, unquantized fc1/fc2_latent_proj (4096 <-> 1024), a
    # shared expert of 4096 × 5376 at the hidden width, a router of 4096 × 512.
    config = {"model_type": "nemotron_h", "hidden_size": 4096, "num_hidden_layers": 4, "num_attention_heads": 32,
              "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 2688, "vocab_size": 131072,
              "mamba_num_heads": 128, "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4,
              "hybrid_override_pattern": "ME*E", "n_routed_experts": 512, "num_experts_per_tok": 22,
              "moe_intermediate_size": 2688, "moe_latent_size": 1024, "moe_shared_expert_intermediate_size": 5376,
              "n_shared_experts": 1}  # fmt: skip
    arch = parse_architecture(config, "t")
    for tp in (1, 4):
        layer = count_parameters(arch, tp if tp > 1 else None).layers[1]
        assert layer.linear == 512 * 2 * 1024 * (2688 // tp) + 2 * 4096 * (5376 // tp)
        assert layer.other == 2 * 4096 * 1024 + 4096 * 512 + 512 + 4096  # latent projections whole on every rank


@pytest.mark.parametrize(("tp", "state"), [(1, 1_097_728), (2, 548_864), (4, 274_432)])
def test_gated_deltanet_state_per_sequence(tp: int, state: int) -> None:
    # Conv state: (2 × 16 key heads × 128 + 32 value heads × 128) = 8192 channels × (4 − 1) × 2 B = 49,152;
    # temporal: 32 value heads × 128 × 128 × 2 B = 1,048,576. Both split over the ranks.
    assert QWEN3_NEXT.recurrent is not None
    assert recurrent_state_bytes(QWEN3_NEXT.recurrent, tp) == state


def test_gated_deltanet_state_matches_the_block_a_qwen36_log_printed() -> None:
    # RedHatAI/Qwen3.6-35B-A3B-NVFP4 with fp8 KV on vLLM 0.20 (code-index 51900802258, vllm_startup_logs.yaml):
    # "attention block size set to 2096 tokens". Its Triton GDN path aligns to 16: 2096 = 16 × (state / (16 ×
    # 1024 B, the fp8 page of 2 KV heads × 256 × 2)), so the state is 131 × 16,384 = 2,146,304 B exactly.
    record = next(r for r in records() if r["id"] == "codeindex-51900802258-qwen36-35b-a3b-nvfp4-unnamed-tp1")
    arch = parse_architecture(record["architecture"], "t")
    assert arch.recurrent is not None
    assert recurrent_state_bytes(arch.recurrent, 1) == 2096 // 16 * 16 * 1024
    assert block_tokens(arch, 1, 1) == 64 * -(-2096 // 64)  # 0.33's FlashInfer path rounds up to 64 tokens


@pytest.mark.parametrize(("tp", "block"), [(1, 576), (2, 576), (4, 320)])
def test_gated_deltanet_block_holds_one_state_in_64_token_steps(tp: int, block: int) -> None:
    # The attention page per token is 2 KV heads × 256 × 2 × 2 B = 2048 B (1024 from TP 2 on: one head per rank);
    # 64 × ceil(1,097,728 / (64 × 2048)) = 576; 64 × ceil(548,864 / 65,536) = 576; 64 × ceil(274,432 / 65,536)
    # = 320.
    assert block_tokens(QWEN3_NEXT, 2, tp) == block


@pytest.mark.parametrize(("ssm_dtype", "block"), [(None, 1312), ("float16", 672)])
def test_mamba2_block_matches_vllm_log_for_nemotron_nano(ssm_dtype: str | None, block: int) -> None:
    # vllm-project/vllm#24280: NVIDIA-Nemotron-Nano-9B-v2 logs "Setting attention block size to 1312 tokens"
    # with the default fp32 SSM state and 672 with --mamba-ssm-cache-dtype float16.
    config = dict(NEMOTRON_NANO_9B, **({"mamba_ssm_cache_dtype": ssm_dtype} if ssm_dtype else {}))
    assert block_tokens(parse_architecture(config, "t"), 2, 1) == block


def test_mamba2_block_matches_vllm_for_granite_h_small() -> None:
    # vllm-project/vllm-gaudi#1564: for Granite 4.0-H "the platform inflates cache_config.block_size to 528".
    arch = parse_architecture(GRANITE_H_SMALL, "t")
    assert block_tokens(arch, 2, 1) == 528
    # By hand: conv (8192 + 2 × 1 × 128) × 3 × 2 B = 50,688, SSM 128 × 64 × 128 × 2 B = 2,097,152 (Granite keeps
    # it in the model dtype); 16 × ceil(2,147,840 / (16 × 4096)) = 528.
    assert arch.recurrent is not None
    assert recurrent_state_bytes(arch.recurrent, 1) == 2_147_840


def test_a_single_mamba2_group_is_replicated_to_every_rank() -> None:
    # mamba_mixer2.py: with one group, every rank holds it whole (extra_groups_for_head_shards), so the conv
    # state at TP 4 is (8192 + 2 × 4 × 128) / 4 × 3 × 2 B = 13,824 B, not (8192 + 256) / 4 × 6 = 12,672.
    arch = parse_architecture(GRANITE_H_SMALL, "t")
    assert arch.recurrent is not None
    assert recurrent_state_bytes(arch.recurrent, 4) == 13_824 + 32 * 64 * 128 * 2


def test_hybrid_layout_counts_attention_blocks_and_state_blocks() -> None:
    # Qwen3-Next at TP 1, 32,768 tokens: 12 full-attention layers and 36 recurrent ones form groups of 12 (the
    # smaller bucket): one attention group of ceil(32768 / 576) = 57 blocks and three recurrent groups of 3
    # blocks each (2 states + a prefill checkpoint, mamba_cache_mode align); a block is 12 pages of 576 × 2048 B.
    layout = stage_kv_layouts(QWEN3_NEXT, [range(48)], 2, 1, 32768, 16384)[0]
    assert layout == KvLayout(12 * 576 * 2048, 57 + 3 * 3)


def test_without_flashinfer_gdn_the_block_aligns_to_16_and_a_request_holds_two_states() -> None:
    # Ampere, Ada and ROCm run the Triton GDN prefill, which exports no checkpoint (overhead.yaml): 16 ×
    # ceil(1,097,728 / (16 × 2048)) = 544 tokens, ceil(32768 / 544) = 61 attention blocks and 2 per state group.
    assert block_tokens(QWEN3_NEXT, 2, 1, prefill_checkpoints=False) == 544
    layout = stage_kv_layouts(QWEN3_NEXT, [range(48)], 2, 1, 32768, 16384, prefill_checkpoints=False)[0]
    assert layout == KvLayout(12 * 544 * 2048, 61 + 3 * 2)
    # Mamba-2 layers export checkpoints on every GPU: Nemotron's block and blocks stay as on Hopper.
    nano = parse_architecture(NEMOTRON_NANO_9B, "t")
    assert block_tokens(nano, 2, 1, prefill_checkpoints=False) == block_tokens(nano, 2, 1) == 1312


def test_the_planner_takes_the_kernel_path_of_each_gpu() -> None:
    sizer = _Planner("x", "default", deployment(model={"name": "Qwen/Qwen3-Next-80B-A3B-Instruct"}).spec,
                     QWEN3_NEXT, None).sizer  # fmt: skip
    assert sizer.gpu_class(get_gpu("H100-SXM-80GB")).state_checkpoints
    assert not sizer.gpu_class(get_gpu("A100-SXM-80GB")).state_checkpoints
    assert not sizer.gpu_class(get_gpu("MI300X-192GB")).state_checkpoints


def test_mlp_only_layers_hold_no_cache() -> None:
    # Nemotron-H's "-" layers have no mixer: a stage of only those holds nothing per request.
    nano = parse_architecture(NEMOTRON_NANO_9B, "t")
    assert stage_kv_layouts(nano, [range(1, 2)], 2, 1, 8192, 8192)[0] == KvLayout(0, 0)


@pytest.mark.parametrize(
    ("config", "tp", "problem"),
    [
        (dict(NEMOTRON_NANO_9B, num_attention_heads=48), 16, "tensorParallel 16 does not divide the 8 mamba2 groups"),
        (dict(NEMOTRON_NANO_9B, num_attention_heads=48, mamba_num_heads=40), 16,
         "tensorParallel 16 does not divide the 40 mamba2 heads"),
        (GRANITE_H_SMALL, 8, None),
    ],
    ids=["groups", "heads", "one-group-replicates"],
)  # fmt: skip
def test_tensor_parallel_must_split_the_recurrent_heads(config: dict[str, Any], tp: int, problem: str | None) -> None:
    assert heads_problem(parse_architecture(config, "t"), tp) == problem


def test_qwen3_next_plans_on_h100_with_its_kv_from_twelve_layers() -> None:
    result = plan_deployment(
        deployment(model={"name": "Qwen/Qwen3-Next-80B-A3B-Instruct"}, maxModelLen=32768, maxConcurrency=16),
        offers_for([pool("h100", "H100-SXM-80GB", 8, 1, "on-prem", "2.00")]),
    )
    assert result.plan is not None
    memory = result.plan.memory
    # 159 GB of bf16 weights take at least three 80 GB GPUs; every fourth layer of each stage caches KV.
    assert result.plan.gpus_per_replica >= 3
    assert memory.kv_cache_tokens >= 16 * 32768
    tp, pp = result.plan.tensor_parallel, result.plan.pipeline_parallel
    assert memory.kv_cache_bytes_per_token * pp == 24_576 // min(tp, 2)
