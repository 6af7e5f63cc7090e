"""Parameter counts from architecture must equal the totals the model authors publish."""

import pytest

from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.models import ModelEntry, model_catalog
from modelplane.planning.parameters import count_parameters

CATALOG = sorted(model_catalog().values(), key=lambda entry: entry.name)


@pytest.mark.parametrize("entry", CATALOG, ids=[entry.name for entry in CATALOG])
def test_parameter_count_matches_published_total(entry: ModelEntry) -> None:
    if entry.official_parameters is None:
        pytest.skip(f"{entry.name}: no published total")
    counted = count_parameters(entry.architecture).total
    tolerance = (entry.parameters_rounding or 1) // 2
    assert abs(counted - entry.official_parameters) <= tolerance, (
        f"{entry.name}: counted {counted:,}, published {entry.official_parameters:,} ({entry.parameters_source})"
    )


# Published totals (Hugging Face safetensors metadata of each repository), checked independently
# of the catalog files so a wrong config value there cannot hide a wrong formula here.
LLAMA_31_8B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
               "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}  # fmt: skip
MIXTRAL_8X7B = {"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000,
                "num_local_experts": 8, "num_experts_per_tok": 2}  # fmt: skip
QWEN25_7B = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
             "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064}  # fmt: skip
DEEPSEEK_V3 = {"model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61,
               "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
               "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 129280,
               "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256,
               "n_shared_experts": 1, "first_k_dense_replace": 3, "moe_layer_freq": 1, "num_experts_per_tok": 8,
               "topk_method": "noaux_tc"}  # fmt: skip
GPT_OSS_120B = {"model_type": "gpt_oss", "hidden_size": 2880, "num_hidden_layers": 36, "num_attention_heads": 64,
                "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880, "vocab_size": 201088,
                "num_local_experts": 128, "num_experts_per_tok": 4, "attention_bias": True}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "published", "tolerance"),
    [
        (LLAMA_31_8B, 8_030_261_248, 0),
        (MIXTRAL_8X7B, 46_702_792_704, 0),
        (QWEN25_7B, 7_615_616_512, 0),
        # DeepSeek-V3 model card: "671B total parameters" for the main model (685B with the MTP module).
        (DEEPSEEK_V3, 671_000_000_000, 500_000_000),
        # gpt-oss model card: 116.83B total parameters for gpt-oss-120b.
        (GPT_OSS_120B, 116_830_000_000, 5_000_000),
    ],
    ids=["llama-3.1-8b", "mixtral-8x7b", "qwen2.5-7b", "deepseek-v3", "gpt-oss-120b"],
)
def test_published_totals(config: dict[str, object], published: int, tolerance: int) -> None:
    assert abs(count_parameters(parse_architecture(config, "test")).total - published) <= tolerance


def test_moe_reads_only_routed_experts_per_token() -> None:
    breakdown = count_parameters(parse_architecture(DEEPSEEK_V3, "test"))
    # DeepSeek-V3 model card: 37B activated per token.
    assert 36e9 < breakdown.active - breakdown.embedding < 38e9
    assert breakdown.active < breakdown.total


def test_tied_embeddings_are_stored_once() -> None:
    tied = count_parameters(parse_architecture({**LLAMA_31_8B, "tie_word_embeddings": True}, "test"))
    untied = count_parameters(parse_architecture(LLAMA_31_8B, "test"))
    assert untied.total - tied.total == 128256 * 4096


MINIMAX_M2 = {"model_type": "minimax_m2", "hidden_size": 3072, "num_hidden_layers": 62, "num_attention_heads": 48,
              "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 1536, "vocab_size": 200064,
              "num_local_experts": 256, "num_experts_per_tok": 8, "use_qk_norm": True,
              "use_routing_bias": True}  # fmt: skip


def test_minimax_m2_norms_span_all_heads_and_its_router_is_fp32() -> None:
    """vllm minimax_m2.py: q_norm and k_norm are head_dim × heads wide, split over the ranks with the heads (k_norm
    by KV head when TP exceeds them); the gate is a float32 GateLinear, plus a float32 e_score_correction_bias."""
    arch = parse_architecture(MINIMAX_M2, "t")
    attention = 2 * 3072 * 48 * 128 + 2 * 3072 * 8 * 128
    norms = 48 * 128 + 8 * 128 + 2 * 3072
    layer = count_parameters(arch).layers[0]
    assert (layer.linear, layer.other) == (attention + 256 * 3 * 3072 * 1536, norms + 3072 * 256 + 256)
    assert layer.fp32_other == 3072 * 256
    rank = count_parameters(arch, 16).layers[0]
    assert rank.other - rank.fp32_other - 256 == 3 * 128 + 1 * 128 + 2 * 3072  # 3 query heads and 1 KV head a rank


def test_glm4_moe_biases_q_k_v_only_and_keeps_its_router_in_fp32() -> None:
    """vllm glm4_moe.py: QKVParallelLinear(bias=attention_bias), o_proj bias=False; GateLinear(params_dtype=float32)
    with an fp32 e_score_correction_bias; layers from first_k_dense_replace on are MoE with a shared expert."""
    config = {"model_type": "glm4_moe", "hidden_size": 4096, "num_hidden_layers": 46, "num_attention_heads": 96,
              "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 10944, "moe_intermediate_size": 1408,
              "n_routed_experts": 128, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 1,
              "attention_bias": True, "use_qk_norm": False, "vocab_size": 151552}  # fmt: skip
    arch = parse_architecture(config, "t")
    assert (arch.qkv_bias, arch.o_bias, arch.qk_norm) == (True, False, False)
    assert arch.moe is not None
    assert arch.moe.moe_layers == tuple(range(1, 46))
    moe_layer = count_parameters(arch).layers[1]
    assert moe_layer.fp32_other == 4096 * 128
    bias = 96 * 128 + 2 * 8 * 128
    assert moe_layer.other == bias + 2 * 4096 + 4096 * 128 + 128
    assert parse_architecture({**config, "use_qk_norm": True}, "t").qk_norm


@pytest.mark.parametrize(("vl_type", "text_type"), [("qwen3_vl_text", "qwen3"), ("qwen3_vl_moe_text", "qwen3_moe")])
def test_qwen3_vl_language_models_are_qwen3_layers(vl_type: str, text_type: str) -> None:
    """vllm qwen3_vl.py builds its language model from Qwen3DecoderLayer, qwen3_vl_moe.py from Qwen3MoeDecoderLayer
    (a transposed fused checkpoint, the same weights); interleaved M-RoPE and deepstack add no parameters."""
    fields = {"hidden_size": 4096, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
              "head_dim": 128, "intermediate_size": 12288, "vocab_size": 151936}  # fmt: skip
    if "moe" in vl_type:
        fields.update(num_experts=128, num_experts_per_tok=8, moe_intermediate_size=768)
    vl = parse_architecture({"text_config": {**fields, "model_type": vl_type}, "tie_word_embeddings": False}, "t")
    text = parse_architecture({**fields, "model_type": text_type}, "t")
    assert vl.qk_norm
    assert count_parameters(vl) == count_parameters(text)
