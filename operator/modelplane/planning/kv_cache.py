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
- Hybrid models (vllm/platforms/interface.py `_align_hybrid_block_size`): a linear-attention layer keeps one
  recurrent state per request (MambaSpec: conv and temporal state, `recurrent_state_bytes`) in a page of the
  same pool, so vLLM raises the attention block to the fewest tokens, a multiple of the kernel alignment,
  whose page holds that state, and pads the state's page to it (`block_tokens`). Generative models run with
  prefix caching, so mamba_cache_mode is "align" (vllm/model_executor/models/config.py MambaModelConfig) and a
  request holds 2 state blocks plus, where the layer exports one, a prefill checkpoint (`state_path`).
- vllm/v1/core/kv_cache_utils.py `get_max_concurrency_for_kv_cache_config`: maximum concurrency =
  num_blocks / Σ over groups of the blocks one max_model_len request takes; `get_kv_cache_capacity` logs
  "GPU KV cache size: int(maximum concurrency × max_model_len) tokens".
"""

from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

from modelplane.catalog.architecture import Architecture, RecurrentShape

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
    """The whole model's KV bytes for one token, with no parallelism and no window cap (attention layers only)."""
    return arch.attention_layers * kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel=1)


CONV_STATE_BYTES = 2
"""The conv state is in the model's dtype (mamba_cache_dtype auto), bf16 for every model modelplane sizes."""
KERNEL_BLOCK_ALIGNMENT = 16
"""The attention kernels' smallest block (FlashAttention, FlashInfer, Triton): the hybrid block is a multiple."""
FLASHINFER_GDN_CHECKPOINT_ALIGNMENT = 64
"""vllm/v1/attention/backends/gdn_attn.py: with FlashInfer's GDN prefill the block is also a multiple of 64."""


class StatePath(NamedTuple):
    """How a hybrid's recurrent state sits in the block pool: the block alignment and blocks per request."""

    alignment: int
    blocks_per_request: int


def state_path(arch: Architecture, prefill_checkpoints: bool) -> StatePath:
    """vLLM 0.33 in mamba_cache_mode "align" (prefix caching on, the default for generative models).

    A request holds 2 state blocks, plus 1 prefill checkpoint where the layer exports one
    (MambaSpec.max_memory_usage_bytes): MambaMixer2 always does; the Gated DeltaNet layer only with FlashInfer's
    prefill kernel (qwen_gdn_linear_attn.py `_exports_checkpoints`), which also aligns blocks to 64 tokens. Which
    GPUs take that kernel is runtime data (overhead.yaml stateCheckpointArchitectures).
    """
    if arch.recurrent is not None and arch.recurrent.kind == "gated_delta_net" and prefill_checkpoints:
        return StatePath(FLASHINFER_GDN_CHECKPOINT_ALIGNMENT, 3)
    if arch.recurrent is not None and arch.recurrent.kind == "gated_delta_net":
        return StatePath(KERNEL_BLOCK_ALIGNMENT, 2)
    return StatePath(KERNEL_BLOCK_ALIGNMENT, 3)


def _divide(size: int, tensor_parallel: int, what: str) -> int:
    if size % tensor_parallel:
        raise ValueError(f"{what} ({size}) is not divisible by tensorParallel {tensor_parallel}")
    return size // tensor_parallel


def recurrent_state_bytes(shape: RecurrentShape, tensor_parallel: int) -> int:
    """Bytes of one linear-attention layer's state for one sequence on one TP rank (MambaStateShapeCalculator).

    Gated DeltaNet: conv state (2 × key heads × key dim + value heads × value dim) / TP × (kernel − 1), temporal
    state value heads / TP × value dim × key dim. Mamba-2: conv state (d_inner + 2 × groups × state) / TP ×
    (kernel − 1), with groups replicated to TP when TP does not divide them; temporal state heads / TP × head_dim
    × state.
    """
    conv = (
        _divide(shape.conv_channels(tensor_parallel), tensor_parallel, "the conv state width")
        * (shape.conv_kernel - 1)
        * CONV_STATE_BYTES
    )
    heads = _divide(shape.heads, tensor_parallel, "the recurrent heads")
    return conv + heads * shape.head_dim * shape.state_dim * shape.ssm_state_bytes


def block_tokens(arch: Architecture, dtype_bytes: int, tensor_parallel: int, prefill_checkpoints: bool = True) -> int:
    """Tokens per KV block: 16, or for a hybrid the fewest (kernel-aligned) whose attention page holds a state."""
    if arch.recurrent is None or not arch.attention_layers:
        return BLOCK_SIZE
    alignment = state_path(arch, prefill_checkpoints).alignment
    token_page = kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    state = recurrent_state_bytes(arch.recurrent, tensor_parallel)
    return max(BLOCK_SIZE, alignment * _ceil_div(state, alignment * token_page))


class LayerCounts(NamedTuple):
    """A stage's layers by what they cache."""

    full: int
    sliding: int
    chunked: int
    recurrent: int

    @property
    def attention(self) -> int:
        """Layers caching keys and values per token."""
        return self.full + self.sliding + self.chunked


class LayerPrefix(NamedTuple):
    """Prefix counts of each cache kind's layers, so a stage's layers of a kind are counted in O(1)."""

    sliding: tuple[int, ...]
    chunked: tuple[int, ...]
    recurrent: tuple[int, ...]
    mixerless: tuple[int, ...]
    uniform: bool
    """Every layer is full attention (most models): a stage's counts need no prefix arithmetic."""

    def attention_layers_in(self, layers: range) -> int:
        """Layers of a stage caching keys and values per token."""
        return len(layers) if self.uniform else self.layers_in(layers).attention

    def layers_in(self, layers: range) -> LayerCounts:
        if self.uniform:
            return LayerCounts(len(layers), 0, 0, 0)
        start, stop = layers.start, layers.stop
        sliding = self.sliding[stop] - self.sliding[start]
        chunked = self.chunked[stop] - self.chunked[start]
        recurrent = self.recurrent[stop] - self.recurrent[start]
        none = self.mixerless[stop] - self.mixerless[start]
        return LayerCounts(len(layers) - sliding - chunked - recurrent - none, sliding, chunked, recurrent)


def _prefix(num_layers: int, chosen: tuple[int, ...]) -> tuple[int, ...]:
    members = set(chosen)
    return tuple(accumulate((int(layer in members) for layer in range(num_layers)), initial=0))


def layer_prefix(arch: Architecture) -> LayerPrefix:
    kinds = (arch.sliding_window_layers, arch.chunked_layers, arch.recurrent_layers, arch.mixerless_layers)
    sliding, chunked, recurrent, mixerless = (_prefix(arch.num_layers, layers) for layers in kinds)
    return LayerPrefix(sliding, chunked, recurrent, mixerless, uniform=not any(kinds))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def window_blocks(window: int, in_flight_tokens: int, max_model_len: int, block: int = BLOCK_SIZE) -> int:
    """Blocks one request holds in a sliding-window layer (SlidingWindowSpec.max_admission_blocks_per_request)."""
    return _ceil_div(min(window - 1 + in_flight_tokens, max_model_len), block) + 1


def chunk_blocks(chunk: int, in_flight_tokens: int, max_model_len: int, block: int = BLOCK_SIZE) -> int:
    """Blocks one request holds in a chunked-local layer (ChunkedLocalAttentionSpec: one chunk plus in-flight)."""
    return _ceil_div(min(chunk + in_flight_tokens, max_model_len), block)


def stage_kv_layouts(
    arch: Architecture,
    stages: Sequence[range],
    dtype_bytes: int,
    tensor_parallel: int,
    max_model_len: int,
    in_flight_tokens: int,
    prefix: LayerPrefix | None = None,
    prefill_checkpoints: bool = True,
) -> tuple[KvLayout, ...]:
    """The KV layout of one GPU of every stage: the planner sizes hundreds of splits per plan.

    `prefill_checkpoints`: whether the GPU's kernels export recurrent-state checkpoints (`state_path`); True, the
    conservative choice, where unknown.
    """
    block = block_tokens(arch, dtype_bytes, tensor_parallel, prefill_checkpoints)
    state_blocks = state_path(arch, prefill_checkpoints).blocks_per_request
    page = block * kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    prefixes = prefix or layer_prefix(arch)
    full_blocks = _ceil_div(max_model_len, block)
    window, chunk = arch.sliding_window, arch.attention_chunk_size
    sliding_blocks = window_blocks(window, in_flight_tokens, max_model_len, block) if window else full_blocks
    chunked_blocks = chunk_blocks(chunk, in_flight_tokens, max_model_len, block) if chunk else full_blocks
    if prefixes.uniform:
        # Full attention only (every layer of a dense model): one bucket, one group holding every layer.
        return tuple(KvLayout(len(layers) * page, full_blocks) if len(layers) else KvLayout(0, 0) for layers in stages)
    layouts = []
    for layers in stages:
        counts = prefixes.layers_in(layers)
        if counts.full == len(layers):
            # Full attention only (every layer of a dense model): one bucket, one group holding every layer.
            layouts.append(KvLayout(counts.full * page, full_blocks) if counts.full else KvLayout(0, 0))
            continue
        kinds = ((counts.full, full_blocks), (counts.sliding, sliding_blocks), (counts.chunked, chunked_blocks),
                 (counts.recurrent, state_blocks))  # fmt: skip
        buckets = [(count, blocks) for count, blocks in kinds if count]
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
    prefix: LayerPrefix | None = None,
) -> tuple[int, ...]:
    """Cache bytes one sequence of `sequence_length` tokens reads per stage per decode step.

    A window layer reads only its window, a chunked one at most its chunk, a recurrent layer its fixed state. A
    lower bound of what vLLM reserves per request (whole blocks, padding layers and in-flight tokens add to it).
    """
    per_layer = kv_bytes_per_token_per_layer(arch, dtype_bytes, tensor_parallel)
    state = recurrent_state_bytes(arch.recurrent, tensor_parallel) if arch.recurrent else 0
    prefixes = prefix or layer_prefix(arch)
    if prefixes.uniform:
        return tuple(per_layer * len(layers) * sequence_length for layers in stages)
    windowed = min(sequence_length, arch.sliding_window) if arch.sliding_window is not None else sequence_length
    chunked = min(sequence_length, arch.attention_chunk_size or sequence_length)
    return tuple(
        per_layer * (counts.full * sequence_length + counts.sliding * windowed + counts.chunked * chunked)
        + counts.recurrent * state
        for counts in (prefixes.layers_in(layers) for layers in stages)
    )
