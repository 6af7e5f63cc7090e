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
"""

from modelplane.catalog.architecture import Architecture
from modelplane.catalog.overhead import overhead_constants


def overhead_bytes_per_gpu(arch: Architecture, runtime: str, tensor_parallel: int, pipeline_parallel: int) -> int:
    constants = overhead_constants(runtime)
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
        + constants.max_num_batched_tokens * activation_per_token
        + constants.cuda_graph_bytes
    )
