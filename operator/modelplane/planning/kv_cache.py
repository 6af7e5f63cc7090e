"""KV cache bytes: per token for the whole model, and per GPU for one pipeline stage.

Standard attention caches a key and a value vector per KV head and layer:
2 × layers × kv_heads × head_dim × dtype bytes per token. Under tensor parallelism each rank
holds kv_heads / TP heads, or one replicated head when TP exceeds the KV heads (vLLM replicates
KV heads then). MLA (DeepSeek) caches one latent of kv_lora_rank + qk_rope_head_dim per layer,
replicated on every TP rank rather than split. Sliding-window layers never hold more than the
window's tokens of one sequence.
"""

from collections.abc import Sequence
from itertools import accumulate

from modelplane.catalog.architecture import Architecture


def kv_bytes_per_token_per_layer(arch: Architecture, dtype_bytes: int, tensor_parallel: int) -> int:
    """KV bytes one layer of one TP rank stores per token."""
    if arch.mla is not None:
        return (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * dtype_bytes
    heads_per_rank = max(1, arch.num_kv_heads // tensor_parallel)
    return 2 * heads_per_rank * arch.head_dim * dtype_bytes


def kv_cache_bytes_per_token(arch: Architecture, dtype_bytes: int) -> int:
    """The whole model's KV bytes for one token, with no parallelism and no window cap."""
    return arch.num_layers * kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel=1)


def windowed_prefix(arch: Architecture) -> tuple[int, ...]:
    """Prefix counts of sliding-window layers, so a stage's windowed layers are counted in O(1)."""
    windowed = set(arch.sliding_window_layers)
    return tuple(accumulate((int(layer in windowed) for layer in range(arch.num_layers)), initial=0))


def sequence_kv_bytes(
    arch: Architecture,
    layers: range,
    dtype_bytes: int,
    tensor_parallel: int,
    sequence_length: int,
    prefix: tuple[int, ...] | None = None,
) -> int:
    """KV bytes one sequence of `sequence_length` tokens occupies on one GPU holding `layers`."""
    return stages_kv_bytes(arch, [layers], dtype_bytes, tensor_parallel, sequence_length, prefix)[0]


def stages_kv_bytes(
    arch: Architecture,
    stages: Sequence[range],
    dtype_bytes: int,
    tensor_parallel: int,
    sequence_length: int,
    prefix: tuple[int, ...] | None = None,
) -> tuple[int, ...]:
    """`sequence_kv_bytes` for every stage of a split at once: the planner sizes hundreds of splits per plan."""
    per_layer = kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    counts = prefix or windowed_prefix(arch)
    capped = min(sequence_length, arch.sliding_window) if arch.sliding_window is not None else sequence_length
    sizes = []
    for layers in stages:
        windowed = counts[layers.stop] - counts[layers.start]
        sizes.append(per_layer * ((len(layers) - windowed) * sequence_length + windowed * capped))
    return tuple(sizes)
