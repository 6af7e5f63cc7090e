"""Runtime command lines, decided in Python so templates stay free of logic.

Flags the plan sets are owned by the plan: spec.extraArgs may add any other flag the pinned
runtime version accepts, but may not repeat or override a planned one under any spelling the
runtime's parser reads as the same option (an alias, `--x_y` for vLLM's `--x-y`, `--x=value`).
"""

import shlex
from dataclasses import dataclass

from modelplane.api.model_deployment import ModelDeploymentSpec
from modelplane.api.plan import MemoryBreakdown, Plan
from modelplane.api.serving import KvCacheDtype, Quantization, Runtime
from modelplane.catalog.runtimes import RuntimeSpec
from modelplane.render.errors import RenderError

VLLM_MULTI_NODE_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
RAY_PORT = 6379


@dataclass(frozen=True)
class CommandLine:
    command: list[str]
    args: list[str]


def gpu_memory_fraction(percent: int) -> str:
    """An integer percent as the decimal fraction runtimes take ("0.90"), without float rounding."""
    return f"{percent // 100}.{percent % 100:02d}"


def kv_cache_free_memory_fraction(memory: MemoryBreakdown) -> str:
    """--kv_cache_free_gpu_memory_fraction that makes TensorRT-LLM allocate the planned KV cache.

    TensorRT-LLM gives the KV cache a fraction of the memory still free after the weights and buffers are
    allocated ("free_gpu_memory_fraction is 0.9, which means TensorRT LLM will try to allocate 90% of free
    GPU memory for KV cache", https://nvidia.github.io/TensorRT-LLM/examples/kvcacheconfig.html; trtllm-serve's
    help: "Free GPU memory fraction reserved for KV Cache, after allocating model weights and buffers"), not
    of the whole GPU as vLLM's --gpu-memory-utilization. Rounded down, so never more than planned, but at
    least 0.01, which still fits: gpuMemoryUtilization of at most 99% leaves 1% of the GPU unbudgeted.
    """
    loaded = memory.weight_bytes_per_gpu + memory.overhead_bytes_per_gpu
    kv_cache = memory.budget_bytes_per_gpu - loaded
    return gpu_memory_fraction(max(1, kv_cache * 100 // (memory.gpu_memory_bytes - loaded)))


def _vllm_flags(spec: ModelDeploymentSpec, plan: Plan, runtime: RuntimeSpec) -> list[str]:
    flags = [
        "--served-model-name", spec.model.name,
        "--host", "0.0.0.0",
        "--port", str(runtime.port),
        "--tensor-parallel-size", str(plan.tensor_parallel),
        "--pipeline-parallel-size", str(plan.pipeline_parallel),
        "--max-model-len", str(plan.max_model_len),
        "--gpu-memory-utilization", gpu_memory_fraction(plan.gpu_memory_utilization),
    ]  # fmt: skip
    if plan.quantization is Quantization.FP8 and not plan.pre_quantized:
        # vLLM quantizes to fp8 on load; every other format comes from the checkpoint's own config.
        flags += ["--quantization", "fp8"]
    if plan.quantization is Quantization.FP16:
        flags += ["--dtype", "float16"]
    if plan.kv_cache_dtype is KvCacheDtype.FP8:
        flags += ["--kv-cache-dtype", "fp8"]
    if plan.nodes_per_replica > 1:
        flags += ["--distributed-executor-backend", "ray"]
    return flags


def _trtllm_flags(spec: ModelDeploymentSpec, plan: Plan, runtime: RuntimeSpec) -> list[str]:
    return [
        "--host", "0.0.0.0",
        "--port", str(runtime.port),
        "--backend", "pytorch",
        "--tp_size", str(plan.tensor_parallel),
        "--pp_size", str(plan.pipeline_parallel),
        "--max_seq_len", str(plan.max_model_len),
        "--kv_cache_free_gpu_memory_fraction", kv_cache_free_memory_fraction(plan.memory),
    ]  # fmt: skip


def check_extra_args(extra_args: list[str], planned: list[str], runtime_name: str, runtime: RuntimeSpec) -> None:
    """Refuse extra flags the plan owns or that would void it (catalog planVoidingFlags), the API-key flag (a key in
    the pod spec in plain text), under any spelling, and flags the pinned runtime version does not know."""
    owned = {runtime.canonical_flag(token) for token in planned if token.startswith("-")}
    for index, token in enumerate(extra_args):
        if not token.startswith("-"):
            continue
        name = token.split("=", 1)[0]
        option = runtime.canonical_flag(token)
        field = f"spec.extraArgs[{index}]"
        if option is None:
            raise RenderError(field, f"{name} is not a flag of {runtime_name} {runtime.version}")
        spelled = name if name == option else f"{name} (the same option as {option})"
        if option in owned:
            raise RenderError(field, f"{spelled} is set by the plan; change the ModelDeployment spec instead")
        if option == runtime.api_key.flag:
            raise RenderError(field, f"{spelled} would put the API key in the pod spec in plain text; use "
                              "spec.apiKeySecretRef, which passes it from a Secret")  # fmt: skip
        voids = runtime.plan_voiding_flags.get(option)
        if voids is not None:
            raise RenderError(field, f"{spelled} would void the plan: {voids}")


def server_command(spec: ModelDeploymentSpec, plan: Plan, runtime: RuntimeSpec,
                   model_path: str | None = None) -> CommandLine:  # fmt: skip
    """The serving container's command line (the leader's, for multi-node replicas).

    `model_path` is a local directory of the weights (a cache or a mounted source); without one the server
    fetches spec.model.name from the Hub itself, at spec.model.revision when pinned.
    """
    model = model_path or spec.model.name
    if plan.runtime is Runtime.TENSORRT_LLM:
        flags = _trtllm_flags(spec, plan, runtime)
        check_extra_args(spec.extra_args, flags, plan.runtime, runtime)
        if spec.model.revision and model_path is None:
            raise RenderError("spec.model.revision", "trtllm-serve takes no revision; pin it with a managed cache "
                              "(spec.modelCache.managed), whose download Job fetches that revision")  # fmt: skip
        return CommandLine(["trtllm-serve", "serve"], [model, *flags, *spec.extra_args])
    flags = _vllm_flags(spec, plan, runtime)
    if spec.model.revision and model_path is None:
        flags += ["--revision", spec.model.revision]
    check_extra_args(spec.extra_args, flags, plan.runtime, runtime)
    serve = ["vllm", "serve", model, *flags, *spec.extra_args]
    if plan.nodes_per_replica == 1:
        return CommandLine(serve[:2], serve[2:])
    script = f"bash {VLLM_MULTI_NODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE) && exec {shlex.join(serve)}"
    return CommandLine(["/bin/sh", "-c"], [script])


def worker_command() -> CommandLine:
    """A multi-node vLLM worker joins the leader's Ray cluster and blocks."""
    script = f"exec bash {VLLM_MULTI_NODE_SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)"
    return CommandLine(["/bin/sh", "-c"], [script])
