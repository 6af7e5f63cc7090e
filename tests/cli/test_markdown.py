"""The KV memory `plan` shows for the load: what vLLM's blocks take, recurrent states included."""

from modelplane.api.plan import PlanResult
from modelplane.cli.markdown import plan_markdown
from modelplane.cli.output import kv_bytes_for_load
from modelplane.planning.service import offers_for, plan_deployment
from tests.support import deployment, pool


def _plan(model: str, max_model_len: int, concurrency: int) -> PlanResult:
    md = deployment(model={"name": model}, maxModelLen=max_model_len, maxConcurrency=concurrency,
                    parallelism={"tensorParallel": 1, "pipelineParallel": 1})  # fmt: skip
    result = plan_deployment(md, offers_for([pool("mi300x", "MI300X-192GB", 8, 1, "on-prem", "2.00")]))
    assert result.plan is not None
    return result


def test_a_hybrids_load_counts_its_recurrent_states() -> None:
    # Nemotron-H-56B at 8,192 tokens: a block is 4,128 tokens (16 × ceil(16,900,096 / (16 × 4,096))); 10 attention
    # layers form one group of ceil(8192 / 4128) = 2 blocks, the 54 Mamba-2 layers 6 groups of 3 state blocks;
    # a block holds 10 pages of 4,128 × 4,096 B. Four sequences take 4 × 20 such blocks, ten times the 4 × 8,192
    # tokens × 40,960 B a per-token figure shows.
    result = _plan("nvidia/Nemotron-H-56B-Base-8K", 8192, 4)
    assert result.plan is not None
    memory = result.plan.memory
    expected = 4 * 20 * 10 * 4128 * 4096
    shown = kv_bytes_for_load(memory, 8192, 4)
    assert expected <= shown <= expected * 1.01  # maxConcurrency is rounded down to 2 decimals
    assert shown > 9 * memory.kv_cache_bytes_per_token * 8192 * 4


def test_a_dense_models_load_is_its_tokens_times_bytes_per_token() -> None:
    result = _plan("meta-llama/Llama-3.1-8B-Instruct", 32768, 8)
    assert result.plan is not None
    memory = result.plan.memory
    per_token = memory.kv_cache_bytes_per_token * 32768 * 8
    assert per_token <= kv_bytes_for_load(memory, 32768, 8) <= per_token * 1.01
    assert f"KV cache for the load {per_token / 1024**3:.1f} GiB" in plan_markdown([result])
