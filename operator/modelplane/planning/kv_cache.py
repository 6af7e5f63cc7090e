"""KV cache as vLLM's v1 KV cache manager sizes it: bytes per block, blocks per request, per GPU and stage.

Standard attention caches a key and a value vector per KV head and layer: 2 × kv_heads × head_dim × dtype
bytes per token and layer. Under tensor parallelism each rank holds kv_heads / TP heads, or one replicated
head when TP exceeds the KV heads (vLLM replicates KV heads then). MLA (DeepSeek, Kimi) caches one latent
of kv_lora_rank + qk_rope_head_dim per layer, replicated on every TP rank rather than split.

vLLM 0.33.0 (vllm-0.33.0 wheel) pages the cache in blocks of `block_size` (16) tokens and groups layers:

- vllm/v1/core/kv_cache_planning.py `_get_kv_cache_groups_uniform_page_size`: layers of one attention kind
  form a bucket; the group size is the smallest bucket's layer count (the largest one's when that is under
  1.5 × the smallest), each bucket splits into ceil(layers / group size) groups, and every group's block
  holds one page per layer slot of the group (`_get_kv_cache_bytes_per_block`): bytes per block =
  group size × page bytes. All groups draw blocks from one pool: num_blocks = available // bytes per block
  (`get_kv_cache_config_from_groups`).
- vllm/v1/kv_cache_interface.py, `max_memory_usage_bytes` per kind: full attention holds
  ceil(max_model_len / block_size) blocks per request; a sliding-window layer
  ceil(min(window − 1 + in-flight tokens, max_model_len) / block_size) + 1 (SlidingWindowSpec); chunked
  local attention ceil(min(chunk + in-flight tokens, max_model_len) / block_size) (ChunkedLocalAttentionSpec).
  In-flight tokens are `VllmConfig.max_in_flight_tokens` = concurrent batches × max_num_batched_tokens.
- vllm/v1/core/kv_cache_utils.py `get_max_concurrency_for_kv_cache_config`: maximum concurrency =
  num_blocks / Σ over groups of the blocks one max_model_len request takes; `get_kv_cache_capacity` logs
  "GPU KV cache size: int(maximum concurrency × max_model_len) tokens".
"""

from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

from modelplane.catalog.architecture import Architecture

BLOCK_SIZE = 16
"""vllm/config/cache.py CacheConfig.block_size default on CUDA and ROCm (vllm-0.33.0 wheel)."""
GROUP_SIZE_SLACK = 1.5
"""`_get_kv_cache_groups_uniform_page_size`: use the largest bucket as the group size below this ratio."""


class KvLayout(NamedTuple):
    """The KV cache of one GPU of one stage: what one pool block costs and what one request takes."""

    bytes_per_block: int
    blocks_per_request: int

    @property
    def bytes_per_request(self) -> int:
        return self.bytes_per_block * self.blocks_per_request


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


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def window_blocks(window: int, in_flight_tokens: int, max_model_len: int) -> int:
    """Blocks one request holds in a sliding-window layer (SlidingWindowSpec.max_admission_blocks_per_request)."""
    return _ceil_div(min(window - 1 + in_flight_tokens, max_model_len), BLOCK_SIZE) + 1


def stage_kv_layouts(
    arch: Architecture,
    stages: Sequence[range],
    dtype_bytes: int,
    tensor_parallel: int,
    max_model_len: int,
    in_flight_tokens: int,
    prefix: tuple[int, ...] | None = None,
) -> tuple[KvLayout, ...]:
    """The KV layout of one GPU of every stage: the planner sizes hundreds of splits per plan."""
    page = BLOCK_SIZE * kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    counts = prefix or windowed_prefix(arch)
    full_blocks = _ceil_div(max_model_len, BLOCK_SIZE)
    sliding_blocks = (
        window_blocks(arch.sliding_window, in_flight_tokens, max_model_len) if arch.sliding_window else full_blocks
    )
    layouts = []
    for layers in stages:
        sliding = counts[layers.stop] - counts[layers.start]
        if not sliding:
            # Full attention only (every layer of a dense model): one bucket, one group holding every layer.
            layouts.append(KvLayout(len(layers) * page, full_blocks) if len(layers) else KvLayout(0, 0))
            continue
        buckets = [(count, blocks) for count, blocks in ((len(layers) - sliding, full_blocks),
                                                         (sliding, sliding_blocks)) if count]  # fmt: skip
        if not buckets:
            layouts.append(KvLayout(0, 0))
            continue
        smallest, largest = min(count for count, _ in buckets), max(count for count, _ in buckets)
        group_size = largest if largest < smallest * GROUP_SIZE_SLACK else smallest
        blocks = sum(_ceil_div(count, group_size) * per_group for count, per_group in buckets)
        layouts.append(KvLayout(group_size * page, blocks))
    return tuple(layouts)


def sequence_kv_bytes(
    arch: Architecture,
    layers: range,
    dtype_bytes: int,
    tensor_parallel: int,
    sequence_length: int,
    in_flight_tokens: int,
) -> int:
    """KV bytes vLLM reserves for one request of `sequence_length` tokens on one GPU holding `layers`."""
    layout = stage_kv_layouts(arch, [layers], dtype_bytes, tensor_parallel, sequence_length, in_flight_tokens)[0]
    return layout.bytes_per_request


def kv_capacity(available_bytes: int, layout: KvLayout, max_model_len: int) -> tuple[int, float]:
    """(GPU KV cache size in tokens, maximum concurrency) as vLLM logs them for this much KV memory."""
    if not layout.blocks_per_request:
        return 0, 0.0
    num_blocks = max(0, available_bytes) // layout.bytes_per_block
    return num_blocks * max_model_len // layout.blocks_per_request, num_blocks / layout.blocks_per_request


def stages_attended_kv_bytes(
    arch: Architecture,
    stages: Sequence[range],
    dtype_bytes: int,
    tensor_parallel: int,
    sequence_length: int,
    prefix: tuple[int, ...] | None = None,
) -> tuple[int, ...]:
    """KV bytes one sequence of `sequence_length` tokens attends to per stage: a window layer reads only its window.

    What a decode step reads, and a lower bound of what vLLM reserves per request (whole blocks, padding layers
    and in-flight tokens only add to it).
    """
    per_layer = kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    counts = prefix or windowed_prefix(arch)
    capped = min(sequence_length, arch.sliding_window) if arch.sliding_window is not None else sequence_length
    return tuple(
        per_layer * ((len(layers) - windowed) * sequence_length + windowed * capped)
        for layers in stages
        for windowed in (counts[layers.stop] - counts[layers.start],)
    )
