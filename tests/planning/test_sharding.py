"""One tensor-parallel rank's weights as vLLM loads them (planning/sharding.py), from raw config numbers."""

from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.models import find_model
from modelplane.planning.parameters import count_parameters
from tests.planning.test_parameters import DEEPSEEK_V3, LLAMA_31_8B


def test_llama_rank_splits_every_matrix_and_the_padded_vocabulary() -> None:
    rank = count_parameters(parse_architecture({**LLAMA_31_8B, "vocab_size": 128_200}, "test"), 2)
    # q (32 heads / 2) and o: 4096 x 2048 each; k and v (8 KV heads / 2): 4096 x 512 each; MLP 3 x 4096 x 7168.
    assert rank.layers[0].linear == 2 * 4096 * 2048 + 2 * 4096 * 512 + 3 * 4096 * 7168
    assert rank.layers[0].other == 2 * 4096  # the two RMSNorms, replicated
    # VocabParallelEmbedding pads 128,200 to 128,256 (a multiple of 64), then splits it.
    assert rank.embedding == rank.lm_head == 128_256 // 2 * 4096


def test_kv_heads_are_replicated_past_their_count() -> None:
    entry = find_model("Qwen/Qwen3-235B-A22B")
    assert entry is not None
    # 64 query heads, 4 KV heads of 128: at TP8 each rank has 8 query heads and one (replicated) KV head.
    layer = count_parameters(entry.architecture, 8).layers[0]
    attention = 4096 * 8 * 128 * 2 + 2 * 4096 * 128
    experts = 128 * 3 * 4096 * (1536 // 8)
    assert layer.linear == attention + experts


def test_mla_down_projections_are_replicated() -> None:
    rank = count_parameters(parse_architecture(DEEPSEEK_V3, "test"), 8)
    heads = 128 // 8
    replicated = 7168 * 1536 + 7168 * (512 + 64)  # q_a_proj, kv_a_proj_with_mqa
    sharded = 1536 * heads * (128 + 64) + 512 * heads * (128 + 128) + heads * 128 * 7168
    dense = 3 * 7168 * (18432 // 8)
    assert rank.layers[0].linear == replicated + sharded + dense


def test_gpt_oss_mxfp4_experts_are_padded_for_the_kernels() -> None:
    entry = find_model("openai/gpt-oss-20b")
    assert entry is not None
    layer = count_parameters(entry.architecture, 2).layers[0]
    # hidden 2880 -> 3072 (multiple of 256); 2880 / 2 = 1440 -> 1536 (multiple of 128); 32 experts, w13 + w2.
    assert layer.mxfp4_expert_linear == 32 * 3 * 3072 * 1536
    assert layer.expert_linear == 32 * 3 * 2880 * 1440
    assert count_parameters(entry.architecture).layers[0].mxfp4_expert_linear == 32 * 3 * 2880 * 2880
