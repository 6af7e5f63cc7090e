"""The pipeline-parallel search: the smallest PP that fits memory and the pool, and bigger pools never hurt.

Memory is not monotone in PP: per-rank overhead grows with TP × PP, and how vLLM spreads layers decides the
heaviest stage. Llama-3.1-70B in fp16 at TP1 on a T4 (13.5 GiB budget, 8192 tokens) fits at PP 21, 28-34
and 41-47 only. Nor is the node count: on 4-GPU nodes PP 21 is 7 pods of 3 GPUs (7 nodes), PP 24 six of 4.
"""

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelplane.api.plan import PlanResult, ReasonCode
from modelplane.api.serving import Quantization
from modelplane.catalog.gpus import get_gpu, gpu_catalog
from modelplane.catalog.models import find_model
from modelplane.catalog.overhead import overhead_constants
from modelplane.planning.overhead import overhead_bytes_per_gpu
from modelplane.planning.planner import _Planner, plan_core, rank_key
from modelplane.planning.service import offers_for
from modelplane.planning.shapes import MAX_PIPELINE_PARALLEL
from modelplane.planning.sizing import GpuClass
from tests.planning.brute_force import brute_force_best
from tests.support import deployment, pool

LLAMA_70B = {"name": "meta-llama/Llama-3.1-70B-Instruct"}


def _plan(pools: list[Any], **spec: Any) -> PlanResult:
    md = deployment(**spec)
    return plan_core(md.metadata.name, "default", md.spec, offers_for(pools)).result


def _t4(nodes: int, **spec: Any) -> PlanResult:
    return _plan([pool("t4", "T4-16GB", 4, nodes)], model=LLAMA_70B, quantization="fp16",
                 parallelism={"tensorParallel": 1}, **spec)  # fmt: skip


@pytest.mark.parametrize(
    ("nodes", "pipeline_parallel", "codes"),
    [
        # 20 GPUs: PP 21, the smallest that fits memory, is past the pool; PP 20 (the largest tried) is short.
        (5, 20, {ReasonCode.INSUFFICIENT_MEMORY}),
        # 24 GPUs: PP 21 fits memory but needs 7 nodes; no PP up to 24 fits both. Was InsufficientCapacity.
        (6, 24, {ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.EXCEEDS_POOL_NODES}),
        (7, 21, set()),
        (8, 21, set()),
        (12, 21, set()),
        # Was infeasible: the whole-replica bound failed at PP 64 and the search gave up there.
        (16, 21, set()),
        (32, 21, set()),
    ],
)
def test_t4_llama_70b_pipeline_table(nodes: int, pipeline_parallel: int, codes: set[ReasonCode]) -> None:
    result = _t4(nodes)
    [candidate] = result.candidates
    assert candidate.pipeline_parallel == pipeline_parallel
    assert {reason.code for reason in candidate.reasons} == codes
    assert result.feasible == (not codes)
    if result.plan is not None:
        assert (result.plan.nodes_per_replica, result.plan.gpus_per_pod) == (7, 3)


def test_nodes_reason_says_which_shape_fits_memory_and_what_it_needs() -> None:
    [candidate] = _t4(6).candidates
    nodes = next(reason.message for reason in candidate.reasons if reason.code is ReasonCode.EXCEEDS_POOL_NODES)
    assert nodes.startswith("TP1×PP21 fits in memory")
    assert "7 pod(s) of 3 GPUs" in nodes
    assert "7 node(s) of 4 GPUs; the pool has 6" in nodes
    memory = next(reason.message for reason in candidate.reasons if reason.code is ReasonCode.INSUFFICIENT_MEMORY)
    assert memory.startswith("TP1×PP24:")
    assert candidate.memory is not None
    assert candidate.memory.kv_cache_tokens < 8192


def test_search_goes_past_a_smallest_fit_the_nodes_cannot_hold() -> None:
    # 3-GPU L4 nodes, 4 of them: PP 10 fits memory but is 5 pods of 2 GPUs (one per node: 5 nodes). PP 11 is
    # 11 pods of 1 GPU, three to a node: 4 nodes. The planner used to stop at PP 10 (InsufficientCapacity).
    pools = [pool("l4", "L4-24GB", 3, 4)]
    result = _plan(pools, model=LLAMA_70B, quantization="fp16", parallelism={"tensorParallel": 1})
    assert result.plan is not None
    assert (result.plan.pipeline_parallel, result.plan.nodes_per_replica, result.plan.gpus_per_pod) == (11, 11, 1)


def test_search_picks_the_pp_whose_replicas_all_fit() -> None:
    # Two replicas on 8 such nodes: PP 10 needs 2 × 5 = 10 nodes, PP 11 needs ceil(22 / 3) = 8.
    pools = [pool("l4", "L4-24GB", 3, 8)]
    result = _plan(pools, model=LLAMA_70B, quantization="fp16", parallelism={"tensorParallel": 1}, replicas=2)
    assert result.plan is not None
    assert result.plan.pipeline_parallel == 11
    one = _plan(pools, model=LLAMA_70B, quantization="fp16", parallelism={"tensorParallel": 1})
    assert one.plan is not None
    assert one.plan.pipeline_parallel == 10


def test_pinned_shape_the_nodes_cannot_hold_says_so() -> None:
    result = _plan([pool("t4", "T4-16GB", 4, 6)], model=LLAMA_70B, quantization="fp16",
                   parallelism={"tensorParallel": 1, "pipelineParallel": 21})  # fmt: skip
    [candidate] = result.candidates
    assert [reason.code for reason in candidate.reasons] == [ReasonCode.EXCEEDS_POOL_NODES]


def test_overhead_is_affine_in_pipeline_parallel() -> None:
    """The search stops where the whole-replica bound fails past its interval: TP × PP × (budget − overhead)
    is concave in PP only while the overhead is affine in it."""
    for name in ("meta-llama/Llama-3.1-70B-Instruct", "deepseek-ai/DeepSeek-V3", "openai/gpt-oss-120b"):
        entry = find_model(name)
        assert entry is not None
        for runtime in ("vllm", "tensorrt-llm"):
            step = overhead_constants(runtime).non_torch_bytes_per_extra_rank
            assert step >= 0
            for tp in (1, 2, 8):
                for pp in range(1, MAX_PIPELINE_PARALLEL):
                    growth = overhead_bytes_per_gpu(entry.architecture, runtime, tp, pp + 1) - overhead_bytes_per_gpu(
                        entry.architecture, runtime, tp, pp
                    )
                    assert growth == step * tp


# -- properties ---------------------------------------------------------------------------------
GPUS = sorted(gpu_catalog())


# Where the PP search matters: models many small GPUs hold only with a deep pipeline.
SMALL_GPUS = ["T4-16GB", "L4-24GB", "A10G-24GB", "RTX-4090-24GB", "V100-SXM-32GB", "A100-SXM-40GB", "L40S-48GB"]
DEEP_MODELS = ["meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "mistralai/Mixtral-8x7B-Instruct-v0.1",
               "meta-llama/Llama-3.1-8B-Instruct"]  # fmt: skip
# What a deployment may ask of the performance model: nothing, a request, a rate (the planner then chooses the
# replicas), latency targets, or both.
REQUEST = {"inputTokens": 1500, "outputTokens": 300}
DEMANDS: list[dict[str, Any]] = [
    {},
    {"workload": REQUEST},
    {"workload": {**REQUEST, "requestsPerSecond": "0.5"}},
    {"workload": {**REQUEST, "requestsPerSecond": "3"}},
    {"workload": REQUEST, "slo": {"interTokenLatency": "150ms"}},
    {
        "workload": {**REQUEST, "requestsPerSecond": "1.5"},
        "slo": {"interTokenLatency": "200ms", "timeToFirstToken": "5s"},
    },
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(DEEP_MODELS),
    gpu=st.sampled_from(SMALL_GPUS),
    gpus_per_node=st.integers(min_value=1, max_value=8),
    nodes=st.integers(min_value=1, max_value=16),
    extra=st.integers(min_value=1, max_value=32),
    quantization=st.sampled_from(["auto", "bf16", "fp16", "fp8"]),
    tensor_parallel=st.sampled_from([None, 1, 2]),
    replicas=st.integers(min_value=1, max_value=3),
    max_model_len=st.sampled_from([2048, 8192, 32768]),
    concurrency=st.integers(min_value=1, max_value=8),
    demand=st.sampled_from(range(len(DEMANDS))),
)
# The audit's cases: the search gave up at PP 64 on 16 T4 nodes; PP 10 on 4 three-GPU L4 nodes needs 5.
@example(model=LLAMA_70B["name"], gpu="T4-16GB", gpus_per_node=4, nodes=8, extra=8, quantization="fp16",
         tensor_parallel=1, replicas=1, max_model_len=8192, concurrency=1, demand=0)  # fmt: skip
@example(model=LLAMA_70B["name"], gpu="L4-24GB", gpus_per_node=3, nodes=5, extra=1, quantization="fp16",
         tensor_parallel=1, replicas=2, max_model_len=8192, concurrency=1, demand=0)  # fmt: skip
@example(model="mistralai/Mixtral-8x7B-Instruct-v0.1", gpu="RTX-4090-24GB", gpus_per_node=3, nodes=3, extra=1,
         quantization="fp8", tensor_parallel=None, replicas=2, max_model_len=2048, concurrency=1, demand=3)  # fmt: skip
def test_a_bigger_pool_never_makes_a_plan_infeasible(
    model: str, gpu: str, gpus_per_node: int, nodes: int, extra: int, quantization: str, tensor_parallel: int | None,
    replicas: int, max_model_len: int, concurrency: int, demand: int,
) -> None:  # fmt: skip
    spec: dict[str, Any] = {"model": {"name": model}, "quantization": quantization, "replicas": replicas,
                            "maxModelLen": max_model_len, "maxConcurrency": concurrency,
                            "placement": {"strategy": "fewest-gpus"}, **DEMANDS[demand]}  # fmt: skip
    if tensor_parallel is not None:
        spec["parallelism"] = {"tensorParallel": tensor_parallel}
    small = _plan([pool("p", gpu, gpus_per_node, nodes)], **spec)
    big = _plan([pool("p", gpu, gpus_per_node, nodes + extra)], **spec)
    if small.plan is None:
        return
    assert big.plan is not None, big.reasons
    if quantization != "auto":  # one format: fewest GPUs of all replicas first, and a bigger pool only adds shapes
        # All replicas: under a rate, a shape with more GPUs per replica may need fewer replicas.
        assert big.plan.gpus_per_replica * big.plan.replicas <= small.plan.gpus_per_replica * small.plan.replicas


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(DEEP_MODELS),
    gpu=st.sampled_from(SMALL_GPUS),
    gpus_per_node=st.integers(min_value=1, max_value=8),
    nodes=st.integers(min_value=1, max_value=16),
    free=st.one_of(st.none(), st.integers(min_value=0, max_value=128)),
    quantization=st.sampled_from(["auto", "fp16", "fp8"]),
    tensor_parallel=st.sampled_from([None, 1, 2]),
    replicas=st.integers(min_value=1, max_value=3),
    strategy=st.sampled_from(["cheapest", "fewest-gpus", "fastest"]),
    demand=st.sampled_from(range(len(DEMANDS))),
)
@example(model=LLAMA_70B["name"], gpu="T4-16GB", gpus_per_node=4, nodes=16, free=None, quantization="fp16",
         tensor_parallel=None, replicas=1, strategy="fewest-gpus", demand=0)  # fmt: skip
@example(model=LLAMA_70B["name"], gpu="L4-24GB", gpus_per_node=3, nodes=4, free=None, quantization="fp16",
         tensor_parallel=1, replicas=1, strategy="cheapest", demand=0)  # fmt: skip
def test_odd_pools_get_the_brute_force_optimum(
    model: str, gpu: str, gpus_per_node: int, nodes: int, free: int | None, quantization: str,
    tensor_parallel: int | None,
    replicas: int, strategy: str, demand: int,
) -> None:  # fmt: skip
    """Pools of any node size and free capacity: the search finds what trying every PP finds, with any demand."""
    spec: dict[str, Any] = {"model": {"name": model}, "quantization": quantization, "replicas": replicas,
                            "maxModelLen": 4096, "placement": {"strategy": strategy}, **DEMANDS[demand]}  # fmt: skip
    if tensor_parallel is not None:
        spec["parallelism"] = {"tensorParallel": tensor_parallel}
    available: dict[str, Any] = {} if free is None else {"availableGpus": min(free, gpus_per_node * nodes)}
    pools = [pool("p", gpu, gpus_per_node, nodes, **available)]
    result = _plan(pools, **spec)
    best = brute_force_best(spec, pools)
    assert result.feasible == (best is not None), result.reasons
    if result.plan is not None:
        md = deployment(**spec)
        entry = find_model(model)
        assert entry is not None
        chosen = next(e for e in _Planner("x", "default", md.spec, entry.architecture, entry).evaluations(
            offers_for(pools)) if e.feasible and e.layout.tensor_parallel == result.plan.tensor_parallel
            and e.layout.pipeline_parallel == result.plan.pipeline_parallel
            and e.weight_format.value == result.plan.quantization)  # fmt: skip
        assert rank_key(md.spec, chosen) == best


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from([*DEEP_MODELS, "google/gemma-2-27b-it", "deepseek-ai/DeepSeek-V3", "openai/gpt-oss-20b"]),
    weight_format=st.sampled_from([Quantization.BF16, Quantization.FP8]),
    tp=st.sampled_from([1, 2, 4, 8]),
    pp=st.integers(min_value=1, max_value=MAX_PIPELINE_PARALLEL),
    budget=st.integers(min_value=0, max_value=200 * 1024**3),
    max_model_len=st.integers(min_value=1, max_value=131072),
    concurrency=st.integers(min_value=1, max_value=64),
    kv=st.sampled_from(["auto", "fp8"]),
)
def test_threshold_is_exactly_the_stage_token_check(
    model: str, weight_format: Quantization, tp: int, pp: int, budget: int, max_model_len: int, concurrency: int,
    kv: str,
) -> None:  # fmt: skip
    """budget ≥ threshold(format, TP, PP) iff every stage holds maxModelLen × maxConcurrency tokens, byte for byte."""
    entry = find_model(model)
    assert entry is not None
    pp = min(pp, entry.architecture.num_layers)
    md = deployment(model={"name": model}, maxModelLen=max_model_len, maxConcurrency=concurrency, kvCacheDtype=kv)
    sizer = _Planner("x", "default", md.spec, entry.architecture, entry).sizer
    # the vLLM default max_num_batched_tokens of each GPU class, with and without recurrent-state checkpoints
    for gpu_class in (
        GpuClass(batched, checkpoints) for batched in (2048, 8192, 16384) for checkpoints in (True, False)
    ):
        split = sizer.split(weight_format, tp, pp, gpu_class)
        threshold = sizer.threshold(weight_format, tp, pp, gpu_class)

        def tokens(at: int) -> int:
            return min(capacity[0] for capacity in sizer._stage_capacities(split, at))  # noqa: B023

        assert (threshold is not None and budget >= threshold) == (tokens(budget) >= sizer.required_tokens)
        if threshold is not None:  # the threshold is the least such budget
            assert tokens(threshold - 1) < sizer.required_tokens
            assert tokens(threshold) >= sizer.required_tokens


def test_memory_fit_agrees_with_the_threshold_on_every_catalog_gpu() -> None:
    md = deployment(model=LLAMA_70B, quantization="fp16", parallelism={"tensorParallel": 1})
    entry = find_model(LLAMA_70B["name"])
    assert entry is not None
    sizer = _Planner("x", "default", md.spec, entry.architecture, entry).sizer
    for gpu_id in GPUS:
        gpu = get_gpu(gpu_id)
        for pp in range(1, MAX_PIPELINE_PARALLEL + 1):
            threshold = sizer.threshold(Quantization.BF16, 1, pp, sizer.gpu_class(gpu))
            fits = threshold is not None and sizer.budget(gpu) >= threshold
            assert sizer.memory_fit(gpu, Quantization.BF16, 1, pp).fits == fits, (gpu_id, pp)
