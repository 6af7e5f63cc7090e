"""KV cache, weight bytes and pipeline stages, checked against hand arithmetic."""

import pytest

from modelplane.api.serving import Quantization
from modelplane.catalog.architecture import parse_architecture
from modelplane.planning.kv_cache import (
    KvLayout,
    kv_bytes_per_token_per_layer,
    kv_cache_bytes_per_token,
    sequence_kv_bytes,
    stage_kv_layouts,
)
from modelplane.planning.parameters import count_parameters
from modelplane.planning.stages import stage_layers, stage_weight_bytes
from tests.planning.test_parameters import DEEPSEEK_V3, LLAMA_31_8B

LLAMA = parse_architecture(LLAMA_31_8B, "test")
DEEPSEEK = parse_architecture(DEEPSEEK_V3, "test")
GEMMA2_9B = parse_architecture(
    {"model_type": "gemma2", "hidden_size": 3584, "num_hidden_layers": 42, "num_attention_heads": 16,
     "num_key_value_heads": 8, "head_dim": 256, "intermediate_size": 14336, "vocab_size": 256000,
     "sliding_window": 4096, "tie_word_embeddings": True},
    "test",
)  # fmt: skip


def test_llama_kv_bytes_per_token() -> None:
    # 2 (K and V) × 32 layers × 8 KV heads × 128 head_dim × 2 bytes = 128 KiB per token.
    assert kv_cache_bytes_per_token(LLAMA, 2) == 131_072
    assert kv_cache_bytes_per_token(LLAMA, 1) == 65_536


def test_mla_caches_one_latent_per_layer_and_is_replicated_across_tp() -> None:
    # 61 layers × (kv_lora_rank 512 + rope 64) × 2 bytes.
    assert kv_cache_bytes_per_token(DEEPSEEK, 2) == 61 * 576 * 2
    assert kv_bytes_per_token_per_layer(DEEPSEEK, 2, 8) == kv_bytes_per_token_per_layer(DEEPSEEK, 2, 1)


@pytest.mark.parametrize(("tp", "heads_per_rank"), [(1, 8), (2, 4), (8, 1), (16, 1)])
def test_kv_heads_split_then_replicate(tp: int, heads_per_rank: int) -> None:
    assert kv_bytes_per_token_per_layer(LLAMA, 2, tp) == 2 * heads_per_rank * 128 * 2


def test_sliding_window_layers_hold_window_plus_in_flight_tokens() -> None:
    # vLLM 0.33.0 SlidingWindowSpec: ceil(min(window - 1 + in-flight, L) / 16) + 1 blocks per request; full
    # attention ceil(L / 16). Gemma 2 alternates 21 sliding and 21 full layers: one group of 21 layers each,
    # a block holds one 16-token page per layer slot of a group.
    page = 16 * 2 * 8 * 256 * 2
    in_flight = 2 * 2048  # async scheduling keeps two 2048-token batches in flight (A100, L40S class)
    sliding_blocks = -(-(4096 - 1 + in_flight) // 16) + 1  # 513
    assert sequence_kv_bytes(GEMMA2_9B, range(42), 2, 1, 32768, in_flight) == 21 * page * (2048 + sliding_blocks)
    # Short sequences: a sliding layer holds as much as a full one (plus the block the window may straddle).
    assert sequence_kv_bytes(GEMMA2_9B, range(42), 2, 1, 4096, in_flight) == 21 * page * (256 + 257)


def test_hybrid_groups_follow_the_smaller_bucket() -> None:
    # Gemma 3 27B's attention: 62 layers, every 6th full (10 full, 52 sliding of 1024 tokens): groups of 10
    # layers, ceil(52 / 10) = 6 sliding groups and one full group (vLLM pads the last sliding group).
    gemma3 = parse_architecture(
        {"model_type": "gemma2", "hidden_size": 5376, "num_hidden_layers": 62, "num_attention_heads": 32,
         "num_key_value_heads": 16, "head_dim": 128, "intermediate_size": 21504, "vocab_size": 262208,
         "sliding_window": 1024,
         "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(62)]},
        "test",
    )  # fmt: skip
    page = 16 * 2 * 16 * 128 * 2
    layout = stage_kv_layouts(gemma3, [range(62)], 2, 1, 32768, 16384)[0]
    assert layout == KvLayout(10 * page, 2048 + 6 * (-(-(1023 + 16384) // 16) + 1))


@pytest.mark.parametrize(
    ("layers", "pp", "sizes"),
    # vLLM gives the remainder to the stages before the last; tests/distributed/test_pipeline_partition.py
    # in vLLM has (5 layers, PP 3) -> [(0, 2), (2, 4), (4, 5)].
    [(32, 1, [32]), (32, 2, [16, 16]), (61, 4, [15, 15, 16, 15]), (5, 3, [2, 2, 1]), (80, 3, [27, 27, 26])],
)
def test_stage_layers_follow_vllm(layers: int, pp: int, sizes: list[int]) -> None:
    ranges = stage_layers(layers, pp)
    assert [len(r) for r in ranges] == sizes
    assert ranges[0].start == 0
    assert ranges[-1].stop == layers


def test_sixteen_bit_weights_are_two_bytes_per_parameter() -> None:
    breakdown = count_parameters(LLAMA)
    assert stage_weight_bytes(LLAMA, breakdown, Quantization.BF16, range(32), 0, 1) == 2 * breakdown.total


def test_fp8_keeps_embeddings_and_norms_in_16_bit() -> None:
    breakdown = count_parameters(LLAMA)
    linear = sum(layer.linear for layer in breakdown.layers)
    other = breakdown.total - linear
    matrices = sum(layer.linear_matrices for layer in breakdown.layers)
    expected = linear + 4 * matrices + 2 * other
    assert stage_weight_bytes(LLAMA, breakdown, Quantization.FP8, range(32), 0, 1) == expected


def test_awq_is_half_a_byte_plus_group_scales_and_zeros() -> None:
    breakdown = count_parameters(LLAMA)
    layer = breakdown.layers[0]
    awq = stage_weight_bytes(LLAMA, breakdown, Quantization.AWQ, range(1), 1, 3)
    # 4-bit weights + per 128-weight group an fp16 scale and a 4-bit zero (2.5 bytes) + 16-bit rest.
    assert awq == layer.linear // 2 + layer.linear * 5 // 256 + 2 * layer.other


def test_pipeline_stages_hold_embedding_first_and_head_last() -> None:
    breakdown = count_parameters(LLAMA)
    stages = stage_layers(32, 2)
    first = stage_weight_bytes(LLAMA, breakdown, Quantization.BF16, stages[0], 0, 2)
    last = stage_weight_bytes(LLAMA, breakdown, Quantization.BF16, stages[1], 1, 2)
    assert first + last == 2 * breakdown.total
    assert last - first == 2 * breakdown.final_norm


GEMMA3_1B = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
             "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
             "head_dim": 256, "vocab_size": 262144, "max_position_embeddings": 32768, "sliding_window": 512,
             "sliding_window_pattern": 6}  # fmt: skip


def test_gemma3_counts_qk_norms_four_layer_norms_and_a_tied_head() -> None:
    # Per layer: q 1152×1024, k and v 1152×256, o 1024×1152; gate/up/down 3 × 1152 × 6912; four 1152 norms and
    # the q/k norms of one 256-wide head each. The embedding (262144 × 1152) is the LM head: config.json leaves
    # tie_word_embeddings out and Gemma3TextConfig defaults it to true (vLLM asserts it).
    per_layer = 1152 * 1024 + 2 * 1152 * 256 + 1024 * 1152 + 3 * 1152 * 6912 + 4 * 1152 + 2 * 256
    arch = parse_architecture(GEMMA3_1B, "test")
    assert arch.tie_word_embeddings
    assert count_parameters(arch).total == 262144 * 1152 + 26 * per_layer + 1152


def test_gemma3_attends_locally_except_every_sixth_layer() -> None:
    arch = parse_architecture(GEMMA3_1B, "test")
    assert (arch.sliding_window, arch.sliding_window_layers) == (512, tuple(i for i in range(26) if i % 6 != 5))
    listed = {**GEMMA3_1B, "layer_types": ["full_attention" if i in (0, 1) else "sliding_attention" for i in range(26)]}
    assert parse_architecture(listed, "test").sliding_window_layers == tuple(range(2, 26))


def test_a_multimodal_gemma3_text_config_takes_what_it_omits_from_gemma3_text_config_defaults() -> None:
    # mlx-community/gemma-3-4b-it-4bit's text_config names neither vocab_size nor sliding_window_pattern.
    config = {"model_type": "gemma3", "text_config": {
        "hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}  # fmt: skip
    arch = parse_architecture(config, "test")
    assert (arch.vocab_size, arch.num_attention_heads, arch.num_kv_heads, arch.head_dim) == (262208, 8, 4, 256)
    assert (arch.tie_word_embeddings, arch.max_position_embeddings, arch.multimodal) == (True, 131072, True)
    assert arch.sliding_window_layers == tuple(i for i in range(34) if i % 6 != 5)


def test_granite_and_gemma_1_have_llamas_layers_and_gemma_ties_its_head_by_default() -> None:
    # vLLM's granite.py and gemma.py build Llama's layers (fused qkv, gate/up, down, two norms); Granite's
    # multipliers are scalars, not weights. GemmaConfig defaults tie_word_embeddings to true.
    granite = {"model_type": "granite", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 40,
               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 49155, "tie_word_embeddings": True,
               "embedding_multiplier": 12.0, "residual_multiplier": 0.22, "attention_multiplier": 0.015625}  # fmt: skip
    as_llama = {**granite, "model_type": "llama"}
    assert count_parameters(parse_architecture(granite, "t")).total == count_parameters(
        parse_architecture(as_llama, "t")).total  # fmt: skip
    gemma_7b = {"model_type": "gemma", "hidden_size": 3072, "intermediate_size": 24576, "num_hidden_layers": 28,
                "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256,
                "vocab_size": 256000}  # fmt: skip
    arch = parse_architecture(gemma_7b, "t")
    assert arch.tie_word_embeddings
    per_layer = 4 * 3072 * 4096 + 3 * 3072 * 24576 + 2 * 3072
    assert count_parameters(arch).total == 256000 * 3072 + 28 * per_layer + 3072  # 8.54B, as Google publishes
