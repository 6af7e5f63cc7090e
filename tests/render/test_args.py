"""spec.extraArgs may add flags but never override the plan's, under any spelling the runtime reads as the same."""

from typing import Any

import pytest
from pydantic import ValidationError

from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import MemoryBreakdown, Plan
from modelplane.catalog.runtimes import RuntimeSpec, runtime_spec
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.args import kv_cache_free_memory_fraction
from modelplane.render.engine import pod_specs, render_deployment
from modelplane.render.errors import RenderError
from tests.support import deployment

GIB = 1024**3
VLLM: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "maxModelLen": 4096}
TRTLLM: dict[str, Any] = {**VLLM, "runtime": "tensorrt-llm"}


def planned(md: ModelDeployment) -> Plan:
    plan = plan_deployment(md, offers_for([])).plan
    assert plan is not None
    return plan


def render_error(spec: dict[str, Any], extra_args: list[str]) -> RenderError:
    md = deployment(**spec, extraArgs=extra_args)
    with pytest.raises(RenderError) as caught:
        render_deployment(md, planned(md))
    return caught.value


def server_args(spec: dict[str, Any], extra_args: list[str]) -> list[str]:
    md = deployment(**spec, extraArgs=extra_args)
    workload = next(obj for obj in render_deployment(md, planned(md)) if obj["kind"] == "Deployment")
    args: list[str] = pod_specs(workload)[0]["containers"][0]["args"]
    return args


# Each names an option the plan sets, spelled as the pinned runtime's parser still reads it.
OVERRIDES = [
    (TRTLLM, ["--tensor_parallel_size", "4"], "--tensor_parallel_size"),
    (TRTLLM, ["--tp_size", "4"], "--tp_size"),
    (TRTLLM, ["--tp_size=4"], "--tp_size"),
    (TRTLLM, ["--free_gpu_memory_fraction", "0.5"], "--free_gpu_memory_fraction"),
    (TRTLLM, ["--kv_cache_free_gpu_memory_fraction=0.5"], "--kv_cache_free_gpu_memory_fraction"),
    (TRTLLM, ["--pipeline_parallel_size=2"], "--pipeline_parallel_size"),
    (TRTLLM, ["--max_seq_len", "8"], "--max_seq_len"),
    (VLLM, ["--tensor-parallel-size", "4"], "--tensor-parallel-size"),
    (VLLM, ["--tensor_parallel_size", "4"], "--tensor_parallel_size"),
    (VLLM, ["--tensor_parallel-size=4"], "--tensor_parallel-size"),
    (VLLM, ["-tp", "4"], "-tp"),
    (VLLM, ["-tp=4"], "-tp"),
    (VLLM, ["--max_model_len=8"], "--max_model_len"),
    (VLLM, ["--gpu-memory-utilization=0.99"], "--gpu-memory-utilization"),
    (VLLM, ["--device_memory_utilization", "0.99"], "--device_memory_utilization"),
    (VLLM, ["--served-model-name", "other"], "--served-model-name"),
    (VLLM, ["--seed", "1", "--port=9000"], "--port"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "extra_args", "flag"), OVERRIDES, ids=[" ".join(args) for _, args, _ in OVERRIDES])
def test_a_planned_option_is_refused_in_every_spelling(spec: dict[str, Any], extra_args: list[str], flag: str) -> None:
    error = render_error(spec, extra_args)
    index = next(index for index, token in enumerate(extra_args) if token.split("=")[0] == flag)
    assert error.field == f"spec.extraArgs[{index}]"
    assert flag in error.problem
    assert "set by the plan" in error.problem
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("spec", "flag"),
    [(VLLM, "--no-such-flag"), (VLLM, "--tp-size"), (VLLM, "--tensor-parallel"), (TRTLLM, "--tp-size"),
     (TRTLLM, "--tensor-parallel-size"), (TRTLLM, "-tp")],
)  # fmt: skip
def test_a_flag_the_pinned_runtime_does_not_know_is_refused(spec: dict[str, Any], flag: str) -> None:
    """Spellings the parser would not read as the same option (--tp-size for click, prefixes) are unknown."""
    known = "--num_postprocess_workers" if spec is TRTLLM else "--max-logprobs"
    error = render_error(spec, [known, "8", f"{flag}=2"])
    assert error.field == "spec.extraArgs[2]"
    assert error.problem.startswith(f"{flag} is not a flag of {spec.get('runtime', 'vllm')} ")


@pytest.mark.parametrize(
    ("spec", "extra_args"),
    [(VLLM, ["--enable_prefix_caching"]), (VLLM, ["--max-logprobs=8"]), (VLLM, ["--compilation-config.mode", "3"]),
     (TRTLLM, ["--num_postprocess_workers", "8"]), (TRTLLM, ["--trust_remote_code"])],
)  # fmt: skip
def test_other_known_flags_pass_through_unchanged(spec: dict[str, Any], extra_args: list[str]) -> None:
    assert server_args(spec, extra_args)[-len(extra_args) :] == extra_args


def test_the_operator_reports_a_refused_flag_as_an_invalid_serving_spec() -> None:
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "ns", "generation": 1, "uid": "u"},
            "spec": {**TRTLLM, "extraArgs": ["--tp_size", "2"]}}  # fmt: skip
    decision = decide(body, lambda: offers_for([]))
    assert decision.objects is None
    condition = decision.conditions["Planned"]
    assert (condition.status, condition.reason) == ("False", "InvalidServingSpec")
    assert condition.message.startswith("spec.extraArgs[0]: --tp_size")


def _memory(gpu: int, budget: int, weights: int, overhead: int) -> MemoryBreakdown:
    return MemoryBreakdown(weight_bytes_per_gpu=weights, kv_cache_bytes_per_token=1, overhead_bytes_per_gpu=overhead,
                           kv_cache_tokens=budget - weights - overhead, budget_bytes_per_gpu=budget,
                           gpu_memory_bytes=gpu)  # fmt: skip


@pytest.mark.parametrize(
    ("memory", "fraction"),
    [
        # 80 GiB GPU at 90%: 72 GiB budget, 16 GiB weights, 4 GiB overhead: KV 52 of the 60 GiB left free.
        (_memory(80 * GIB, 72 * GIB, 16 * GIB, 4 * GIB), "0.86"),
        # Nothing loaded: the fraction of free memory is the fraction of the GPU.
        (_memory(100 * GIB, 90 * GIB, 0, 0), "0.90"),
        # A KV cache under 1% of the free memory still gets 1%, never none at all.
        (_memory(100 * GIB, 60 * GIB, 60 * GIB - GIB // 10, 0), "0.01"),
    ],
)
def test_trtllm_kv_fraction_is_of_the_memory_left_after_loading(memory: MemoryBreakdown, fraction: str) -> None:
    assert kv_cache_free_memory_fraction(memory) == fraction


def test_trtllm_allocates_the_planned_kv_cache() -> None:
    """trtllm-serve's KV cache (fraction × memory free after loading) is the plan's, to within one percent."""
    md = deployment(**TRTLLM)
    plan = planned(md)
    args = server_args(TRTLLM, [])
    fraction = args[args.index("--kv_cache_free_gpu_memory_fraction") + 1]
    memory = plan.memory
    free_after_loading = memory.gpu_memory_bytes - memory.weight_bytes_per_gpu - memory.overhead_bytes_per_gpu
    planned_kv = memory.budget_bytes_per_gpu - memory.weight_bytes_per_gpu - memory.overhead_bytes_per_gpu
    allocated = free_after_loading * int(fraction.replace(".", "")) // 100
    assert planned_kv - free_after_loading // 100 < allocated <= planned_kv
    assert fraction != f"0.{plan.gpu_memory_utilization}"


def test_runtime_aliases_must_name_a_primary_flag() -> None:
    """The check follows one alias hop, so the catalog refuses an alias of an alias or of an unlisted flag."""
    vllm = runtime_spec("vllm").model_dump(by_alias=True)
    chained = [*vllm["flags"], {"name": "--tensor-parallel", "aliasOf": "-tp", "source": "test"}]
    with pytest.raises(ValidationError, match="--tensor-parallel"):
        RuntimeSpec.model_validate({**vllm, "flags": chained})


@pytest.mark.parametrize(
    ("spec", "extra_args", "named"),
    [(VLLM, ["--dtype", "float32"], "--dtype"), (VLLM, ["--max-num-batched-tokens=65536"], "--max-num-batched-tokens"),
     (VLLM, ["--max_num_seqs", "512"], "--max_num_seqs (the same option as --max-num-seqs)"),
     (VLLM, ["--speculative-config", "{}"], "--speculative-config"),
     (VLLM, ["--hf-overrides.num_hidden_layers", "2"], "--hf-overrides.num_hidden_layers (the same option as"),
     (VLLM, ["--model", "other/model"], "--model"),
     (TRTLLM, ["--max_batch_size", "512"], "--max_batch_size"), (TRTLLM, ["--ep_size", "8"], "--ep_size")],
)  # fmt: skip
def test_flags_that_change_memory_parallelism_or_identity_are_refused(spec: dict[str, Any], extra_args: list[str],
                                                                      named: str) -> None:  # fmt: skip
    """Issue 12: each of these changes what the plan sized or which model is served, so the plan would be void."""
    error = render_error(spec, extra_args)
    assert error.field == "spec.extraArgs[0]"
    assert error.problem.startswith(named)
    assert "would void the plan" in error.problem


@pytest.mark.parametrize(
    ("extra_args", "named"),
    [(["--config", "/etc/vllm.yaml"], "--config"), (["--tokenizer", "other/tok"], "--tokenizer"),
     (["--load-format=dummy"], "--load-format"), (["--hf_config_path", "/x"], "--hf_config_path"),
     (["--spec-model", "draft"], "--spec-model"), (["--num-gpu-blocks-override", "99999"], "--num-gpu-blocks-override"),
     (["--no-enable-chunked-prefill"], "--no-enable-chunked-prefill"), (["--enable-lora"], "--enable-lora"),
     (["--decode-context-parallel-size", "2"], "--decode-context-parallel-size"),
     (["--cudagraph-capture-sizes", "[1024]"], "--cudagraph-capture-sizes"), (["--nnodes", "2"], "--nnodes"),
     (["--disable-hybrid-kv-cache-manager"], "--disable-hybrid-kv-cache-manager"),
     (["--kv-offloading-size", "512"], "--kv-offloading-size")],
)  # fmt: skip
def test_flags_that_bypass_or_resize_the_plan_are_refused(extra_args: list[str], named: str) -> None:
    """The issue's list was not all: a --config file can set any flag; others load other weights or change memory."""
    error = render_error(VLLM, extra_args)
    assert error.problem.startswith(named)
    assert "would void the plan" in error.problem


@pytest.mark.parametrize(
    "extra_args",
    [["--enforce-eager"], ["--block-size", "32"], ["--enable-prefix-caching"], ["--no-enable-prefix-caching"]],
)
def test_flags_read_and_found_not_to_void_the_plan_pass(extra_args: list[str]) -> None:
    """Eager mode only drops the CUDA graphs the plan reserved; the block size pages the same bytes per token."""
    assert server_args(VLLM, extra_args)[-len(extra_args) :] == extra_args


def test_every_runtime_says_how_it_takes_an_api_key() -> None:
    vllm, trtllm = runtime_spec("vllm").api_key, runtime_spec("tensorrt-llm").api_key
    assert (vllm.env, vllm.flag, vllm.unsupported) == ("VLLM_API_KEY", "--api-key", None)
    assert (trtllm.env, trtllm.unsupported is not None) == (None, True)
