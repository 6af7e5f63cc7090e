"""Legal tensor/pipeline-parallel shapes and how a replica of a shape lays out on a pool's nodes.

TP must divide the attention heads and either divide the KV heads or be a multiple of them (vLLM
then replicates KV heads). TP stays inside one node: its all-reduce runs on every layer and
needs NVLink-class bandwidth. PP splits layers and may span nodes; each node of a replica then
runs TP × (PP / nodes) GPUs, so every pod of a replica requests the same number of GPUs.
"""

from typing import NamedTuple

from modelplane.catalog.architecture import Architecture

MAX_PIPELINE_PARALLEL = 64


class Layout(NamedTuple):
    """A replica's shape; a tuple because the planner builds and reads hundreds per plan."""

    tensor_parallel: int
    pipeline_parallel: int
    nodes_per_replica: int

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def gpus_per_pod(self) -> int:
        return self.gpus_per_replica // self.nodes_per_replica


def _recurrent_heads_problem(arch: Architecture, tensor_parallel: int) -> str | None:
    """Why this TP cannot split a hybrid's linear-attention heads, as vLLM asserts it, or None.

    Gated DeltaNet divides its key and value heads (qwen_gdn_linear_attn.py `divide`); Mamba-2 its heads, and
    its B/C groups unless there is one group, which every rank then replicates (mamba_mixer2.py).
    """
    shape = arch.recurrent
    if shape is None:
        return None
    if shape.heads % tensor_parallel:
        return f"tensorParallel {tensor_parallel} does not divide the {shape.heads} {shape.kind} heads"
    if shape.kind == "gated_delta_net" and shape.groups % tensor_parallel:
        return f"tensorParallel {tensor_parallel} does not divide the {shape.groups} gated_delta_net key heads"
    if shape.kind == "mamba2" and shape.groups % tensor_parallel and shape.groups != 1:
        return f"tensorParallel {tensor_parallel} does not divide the {shape.groups} mamba2 groups"
    return None


def heads_problem(arch: Architecture, tensor_parallel: int) -> str | None:
    """Why this TP cannot split the attention (or linear-attention) heads, or None."""
    heads, kv_heads = arch.num_attention_heads, arch.num_kv_heads
    if heads % tensor_parallel:
        return f"tensorParallel {tensor_parallel} does not divide the {heads} attention heads"
    if arch.mla is None and kv_heads % tensor_parallel and tensor_parallel % kv_heads:
        return f"tensorParallel {tensor_parallel} neither divides nor is a multiple of the {kv_heads} KV heads"
    return _recurrent_heads_problem(arch, tensor_parallel)


def tensor_parallel_options(gpus_per_node: int, pinned: int | None) -> list[int]:
    """TP degrees to consider: the pin, or every power of two that fits in a node."""
    if pinned is not None:
        return [pinned]
    options, degree = [], 1
    while degree <= gpus_per_node:
        options.append(degree)
        degree *= 2
    return options


def layout(tensor_parallel: int, pipeline_parallel: int, gpus_per_node: int) -> Layout | None:
    """The fewest nodes a replica needs, with PP stages spread evenly; None if TP exceeds a node."""
    if tensor_parallel > gpus_per_node:
        return None
    for nodes in range(1, pipeline_parallel + 1):
        if pipeline_parallel % nodes == 0 and tensor_parallel * (pipeline_parallel // nodes) <= gpus_per_node:
            return Layout(tensor_parallel, pipeline_parallel, nodes)
    return None


def nodes_needed(shape: Layout, gpus_per_node: int, replicas: int) -> int:
    """Nodes that hold `replicas` replicas of a shape: its equal pods packed as many to a node as fit."""
    pods_per_node = gpus_per_node // shape.gpus_per_pod
    return -(-shape.nodes_per_replica * replicas // pods_per_node)
