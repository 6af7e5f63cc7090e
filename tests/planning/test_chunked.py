"""Llama 4: chunked local attention and interleaved MoE layers, against its published sizes and hand arithmetic."""

from typing import Any

import pytest

from modelplane.catalog.architecture import parse_architecture
from modelplane.planning.kv_cache import KvLayout, kv_cache_bytes_per_token, stage_kv_layouts, stages_attended_kv_bytes
from modelplane.planning.parameters import count_parameters

# The text_config fields of meta-llama/Llama-4-Scout-17B-16E-Instruct (ai-dynamo/aiconfigurator's copy of its
# config.json, aic-core/src/aiconfigurator_core/model_configs/, commit 095f58a5).
SCOUT: dict[str, Any] = {
    "model_type": "llama4_text", "hidden_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 40,
    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
    "num_local_experts": 16, "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "vocab_size": 202048,
    "attention_chunk_size": 8192, "use_qk_norm": True, "max_position_embeddings": 10485760,
}  # fmt: skip
MAVERICK = {**SCOUT, "num_local_experts": 128, "interleave_moe_layer_step": 2, "use_qk_norm": False}


def test_every_fourth_layer_attends_globally_and_the_rest_in_chunks() -> None:
    # Llama4TextConfig's default no_rope_layers: layer i has RoPE (and chunked attention) unless (i + 1) % 4 == 0.
    arch = parse_architecture({"text_config": SCOUT}, "t")
    assert arch.chunked_layers == tuple(i for i in range(48) if (i + 1) % 4)
    assert (arch.attention_chunk_size, arch.attention_layers) == (8192, 48)
    # Every layer holds keys and values: 48 × 2 × 8 × 128 × 2 B.
    assert kv_cache_bytes_per_token(arch, 2) == 196_608


def test_no_rope_layers_from_the_config_win() -> None:
    flags = [1] * 46 + [0, 0]
    arch = parse_architecture({**SCOUT, "no_rope_layers": flags}, "t")
    assert arch.chunked_layers == tuple(range(46))


@pytest.mark.parametrize(("config", "moe_layers"), [(SCOUT, tuple(range(48))), (MAVERICK, tuple(range(1, 48, 2)))])
def test_moe_layers_follow_the_interleave_step(config: dict[str, Any], moe_layers: tuple[int, ...]) -> None:
    arch = parse_architecture(config, "t")
    assert arch.moe is not None
    assert arch.moe.moe_layers == moe_layers
    # A MoE layer: 16 or 128 experts and one shared expert of intermediate_size 8192; a dense one an MLP of 16384.
    assert (arch.moe.expert_intermediate_size, arch.moe.shared_intermediate_size, arch.intermediate_size) == (
        8192, 8192, 16384)  # fmt: skip


def test_parameters_match_the_model_cards() -> None:
    # "17B active parameters", "400B total" for Maverick; Scout's "109B total" includes its vision encoder, which
    # the checkpoint's headers size (vision_model, multi_modal_projector), so its language model is a little less.
    # 5120 × 202048 embeddings and LM head; per MoE layer the router (5120 × 16), 16 experts and the shared one
    # of 3 × 5120 × 8192, attention 2 × 5120 × 5120 + 2 × 5120 × 1024, two norms.
    scout, maverick = (count_parameters(parse_architecture(c, "t")) for c in (SCOUT, MAVERICK))
    layer = 5120 * 16 + 17 * 3 * 5120 * 8192 + 2 * 5120 * 5120 + 2 * 5120 * 1024 + 2 * 5120
    assert scout.total == 2 * 5120 * 202048 + 5120 + 48 * layer
    assert 107e9 < scout.total < 109e9
    assert 400e9 < maverick.total < 402e9  # 400.7B without its vision encoder
    assert round(scout.active / 1e9) == round(maverick.active / 1e9) == 17


def test_a_chunked_layer_holds_one_chunk_plus_in_flight_tokens() -> None:
    # vLLM 0.33 ChunkedLocalAttentionSpec: ceil(min(chunk + in-flight, L) / 16) blocks per request, no extra block.
    # 131,072 tokens with 2 × 8192 in flight (H100, async scheduling): 12 global layers take 8192 blocks, the 36
    # chunked ones form 3 groups of 12 of ceil(24576 / 16) = 1536 blocks; a block holds 12 pages of 16 tokens.
    arch = parse_architecture(SCOUT, "t")
    page = 16 * 2 * 8 * 128 * 2
    assert stage_kv_layouts(arch, [range(48)], 2, 1, 131072, 16384)[0] == KvLayout(12 * page, 8192 + 3 * 1536)
    # At maxModelLen ≤ chunk a chunked layer holds as much as a global one.
    assert stage_kv_layouts(arch, [range(48)], 2, 1, 8192, 16384)[0] == KvLayout(12 * page, 4 * 512)


def test_a_decode_step_reads_at_most_one_chunk_in_a_chunked_layer() -> None:
    arch = parse_architecture(SCOUT, "t")
    per_token = 2 * 8 * 128 * 2
    assert stages_attended_kv_bytes(arch, [range(48)], 2, 1, 65536) == (per_token * (12 * 65536 + 36 * 8192),)
