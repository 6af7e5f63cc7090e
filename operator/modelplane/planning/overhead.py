"""Runtime memory overhead per GPU: what the serving engine needs besides weights and KV cache.

vLLM profiles it at start-up (Worker.determine_available_memory): it runs a forward pass of
max_num_batched_tokens dummy tokens and subtracts the activation peak, the non-torch memory
(CUDA context, cuBLAS workspaces, NCCL buffers that grow with the number of ranks) and the CUDA
graph pool from the gpu_memory_utilization budget before sizing the KV cache. This module
reproduces that sum with constants fitted to vLLM's own profiling log lines (overhead.yaml):

    overhead = nonTorchBytes + nonTorchBytesPerExtraRank × (TP × PP − 1)
             + maxNumBatchedTokens × (activationBytesPerHidden × hidden
                                      + activationBytesPerIntermediate × intermediate / TP)
             + cudaGraphBytes

The activation term is sized at one maxNumBatchedTokens for every GPU (8192 for vLLM: above the 2048 default of
A100s and GPUs under 70 GiB, so conservative there). The GPU's own default (2048, 8192 or 16384 by memory) sets
how many in-flight tokens sliding-window layers keep (kv_cache.py).
"""

from modelplane.catalog.architecture import Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.catalog.overhead import overhead_constants

GIB = 1024**3


def max_num_batched_tokens(runtime: str, gpu: GpuSpec) -> int:
    """The runtime's default max_num_batched_tokens on this GPU (vLLM's EngineArgs.get_batch_defaults)."""
    constants = overhead_constants(runtime)
    name = gpu.display_name.lower()
    for rule in constants.batched_tokens_by_device:
        if gpu.memory_bytes >= rule.device_memory_at_least_gib * GIB and not any(
            excluded in name for excluded in rule.except_names
        ):
            return rule.value
    return constants.max_num_batched_tokens


def in_flight_tokens(runtime: str, batched_tokens: int, pipeline_parallel: int) -> int:
    """Tokens scheduled but not yet settled (VllmConfig.max_in_flight_tokens): what windowed layers keep extra."""
    beyond = overhead_constants(runtime).in_flight_batches_beyond_pipeline
    return (pipeline_parallel + beyond) * batched_tokens


def overhead_bytes_per_gpu(arch: Architecture, runtime: str, tensor_parallel: int, pipeline_parallel: int) -> int:
    """The overhead at maxNumBatchedTokens, the largest-class default but one: conservative on 2048-token GPUs."""
    constants = overhead_constants(runtime)
    tokens = constants.max_num_batched_tokens
    intermediate = arch.intermediate_size
    if arch.moe is not None:
        intermediate = arch.moe.expert_intermediate_size * arch.moe.experts_per_token
    activation_per_token = (
        constants.activation_bytes_per_hidden * arch.hidden_size
        + constants.activation_bytes_per_intermediate * intermediate // tensor_parallel
    )
    return (
        constants.non_torch_bytes
        + constants.non_torch_bytes_per_extra_rank * (tensor_parallel * pipeline_parallel - 1)
        + tokens * activation_per_token
        + constants.cuda_graph_bytes
    )
