"""Memory sizing: does a replica of (weight format, TP, PP) fit a GPU, and which PP is the smallest that does.

Each stage must hold its weights + runtime overhead + the KV cache of maxConcurrency sequences at
maxModelLen in gpuMemoryUtilization of each GPU; the stage with the fewest KV tokens binds the replica.

What a stage holds depends only on (format, TP, PP): the GPU sets just the budget and the bandwidth, and
formats of equal bytes (fp16 and bf16, int8 and fp8) hold the same. So per-stage bytes are computed once
per (bytes of a format, TP, PP) and shared by every GPU, and a sizing is computed once per kind of pool
(GPU, node size, PP limit) and shared by every pool of that kind, whatever its name, price or free
capacity. Results are tuples rather than dataclasses: a plan builds hundreds, and they are cheaper.
"""

from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import NamedTuple

from modelplane.api.model_deployment import ModelDeploymentSpec
from modelplane.api.plan import MemoryBreakdown, Reason, ReasonCode
from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.architecture import Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.catalog.overhead import overhead_constants
from modelplane.planning.demand import Demand, demand
from modelplane.planning.kv_cache import (
    KvLayout,
    LayerPrefix,
    kv_bytes_per_token_per_layer,
    kv_capacity,
    layer_prefix,
    stage_kv_layouts,
    stages_attended_kv_bytes,
)
from modelplane.planning.overhead import in_flight_tokens, max_num_batched_tokens, overhead_bytes_per_gpu
from modelplane.planning.parameters import ParameterBreakdown, count_parameters
from modelplane.planning.performance import ReplicaWork, StageWork
from modelplane.planning.records import record
from modelplane.planning.shapes import MAX_PIPELINE_PARALLEL, Layout, layout, nodes_needed
from modelplane.planning.stages import WeightTable, stage_layers
from modelplane.planning.weights import SAME_BYTES, byte_format

GIB = 1024**3


@dataclass(frozen=True, eq=False)
class GpuClass:
    """What of a GPU model besides its memory shapes the KV layout: the runtime's default batch and kernels.

    Compared and hashed by identity (the Sizer makes one per distinct pair, `gpu_class`): it keys the caches the
    PP search reads thousands of times per plan, where hashing a tuple's fields would cost a Python call each.
    """

    batched_tokens: int
    """The runtime's default max_num_batched_tokens there: the activation peak and window blocks."""
    state_checkpoints: bool
    """Whether its kernels export a hybrid's recurrent-state checkpoints (kv_cache.state_path)."""


class StageSplit(NamedTuple):
    """What one GPU of each stage of a (format, TP, PP) replica holds, whichever GPU it is; one entry per stage."""

    weight_bytes_per_gpu: tuple[int, ...]
    kv_layouts: tuple[KvLayout, ...]
    kv_bytes_per_token: tuple[int, ...]
    overhead_bytes_per_gpu: int


class MemoryFit(NamedTuple):
    """Memory of a replica on one GPU model."""

    breakdown: MemoryBreakdown
    fits: bool


class Sizing(NamedTuple):
    """The smallest PP whose replicas fit a kind of pool, or the closest miss, with why it does not fit.

    `reasons` says why memory or the pool's nodes cannot hold one replica; `capacity` whether every
    replica fits the pool's free GPUs and nodes (the caller names the pool in that reason).
    """

    layout: Layout
    fit: MemoryFit
    reasons: tuple[Reason, ...]
    capacity: bool


class PoolShape(NamedTuple):
    """What of a pool the sizing depends on besides its GPU model."""

    gpus_per_node: int
    nodes: int
    free_gpus: int


class PipelineSearch(NamedTuple):
    """The smallest fitting PP of a (GPU, format, TP), if any, and the whole-replica bound's two sides."""

    smallest: int | None
    budget: int
    need: int


class Sizer:
    """Memory sizing of one deployment, with every intermediate result kept for the rest of the plan."""

    def __init__(self, spec: ModelDeploymentSpec, arch: Architecture, stored: Quantization | None = None) -> None:
        """`stored`: the format the checkpoint is stored in (None: 16-bit), whose headers floor its weights."""
        self.spec, self.arch = spec, arch
        self.stored = byte_format(stored or Quantization.BF16)
        self.kv_dtype_bytes = 1 if spec.kv_cache_dtype is KvCacheDtype.FP8 else 2
        self.max_model_len, self.max_concurrency = spec.max_model_len, spec.max_concurrency
        self.required_tokens = spec.max_model_len * spec.max_concurrency
        self.pinned_pp = spec.parallelism.pipeline_parallel if spec.parallelism else None
        self.runtime = spec.runtime.value
        self.replicas = spec.replicas
        self.largest_pp = min(arch.num_layers, MAX_PIPELINE_PARALLEL)
        self._tables: dict[tuple[Quantization, int], WeightTable] = {}
        self._rank_breakdowns: dict[int, ParameterBreakdown] = {}
        self._splits: dict[tuple[Quantization, int, int, GpuClass], StageSplit] = {}
        self.demand: Demand = demand(spec)
        self._work: dict[tuple[Quantization, int, int], ReplicaWork] = {}
        self._flops: dict[int, tuple[tuple[int, ...], int]] = {}
        self._fits: dict[tuple[str, Quantization, int, int], MemoryFit] = {}
        self._sizings: dict[tuple[str, Quantization, int, int, int, int], Sizing] = {}
        self._preferred: dict[tuple[str, Quantization, int], tuple[MemoryFit, int] | tuple[()]] = {}
        self._placements: dict[tuple[int, int, int], tuple[Layout, int, int]] = {}
        self._thresholds: dict[tuple[Quantization, int, int, GpuClass], int | None] = {}
        self._searches: dict[tuple[str, Quantization, int], PipelineSearch] = {}
        self._needs: dict[tuple[Quantization, int], int] = {}
        self._overheads: dict[tuple[int, int], int] = {}
        self._gpu_classes: dict[str, GpuClass] = {}
        self._interned: dict[tuple[int, bool], GpuClass] = {}

    @cached_property
    def breakdown(self) -> ParameterBreakdown:
        return count_parameters(self.arch)

    @cached_property
    def layer_counts(self) -> LayerPrefix:
        return layer_prefix(self.arch)

    def weights(self, weight_format: Quantization, tp: int) -> WeightTable:
        """Bytes one of `tp` ranks holds per layer, as vLLM shards them (planning/sharding.py)."""
        key = (weight_format, tp)
        table = self._tables.get(key)
        if table is None:
            breakdown = self._rank_breakdown(tp)
            stored = self.breakdown if byte_format(weight_format) is self.stored else None
            table = self._tables[key] = WeightTable.build(self.arch, breakdown, weight_format, tp, stored)
        return table

    def _rank_breakdown(self, tp: int) -> ParameterBreakdown:
        breakdown = self._rank_breakdowns.get(tp)
        if breakdown is None:
            breakdown = self._rank_breakdowns[tp] = count_parameters(self.arch, tp)
        return breakdown

    def gpu_class(self, gpu: GpuSpec) -> GpuClass:
        """The runtime's default batch and kernel path on this GPU, which every fit on it shares."""
        found = self._gpu_classes.get(gpu.id)
        if found is None:
            # Only a hybrid's layout depends on the kernel path: other models share one class per batch size.
            checkpoints = self.arch.recurrent is None or overhead_constants(self.runtime).exports_state_checkpoints(
                gpu.architecture
            )
            pair = (max_num_batched_tokens(self.runtime, gpu), checkpoints)
            shared = self._interned.get(pair)
            if shared is None:
                shared = self._interned[pair] = GpuClass(*pair)
            found = self._gpu_classes[gpu.id] = shared
        return found

    def _attended(self, stages: list[range], tp: int, length: int) -> tuple[int, ...]:
        return stages_attended_kv_bytes(self.arch, stages, self.kv_dtype_bytes, tp, length, self.layer_counts)

    def split(self, weight_format: Quantization, tp: int, pp: int, gpu_class: GpuClass) -> StageSplit:
        key = (weight_format, tp, pp, gpu_class)
        split = self._splits.get(key)
        if split is None:
            stages = stage_layers(self.arch.num_layers, pp)
            per_layer = kv_bytes_per_token_per_layer(self.arch, self.kv_dtype_bytes, tp)
            in_flight = in_flight_tokens(self.runtime, gpu_class.batched_tokens, pp)
            split = self._splits[key] = StageSplit(
                tuple(self.weights(weight_format, tp).stages(stages)),
                stage_kv_layouts(
                    self.arch,
                    stages,
                    self.kv_dtype_bytes,
                    tp,
                    self.max_model_len,
                    in_flight,
                    self.layer_counts,
                    gpu_class.state_checkpoints,
                ),
                tuple(per_layer * self.layer_counts.attention_layers_in(layers) for layers in stages),
                self.overhead(tp, pp),
            )
        return split

    def work(self, weight_format: Quantization, tp: int, pp: int) -> ReplicaWork:
        """What each stage's GPUs read and compute per step at the demand's contexts (planning/performance.py)."""
        weight_format = byte_format(weight_format)
        key = (weight_format, tp, pp)
        work = self._work.get(key)
        if work is None:
            stages = stage_layers(self.arch.num_layers, pp)
            table = self.weights(weight_format, tp)
            active = table.stages(stages, active=True)
            prefix, active_prefix = table.prefix, table.active_prefix
            flops_prefix, head_flops = self._flops_per_token(tp)
            decode_kv = self._attended(stages, tp, self.demand.decode_context)
            prefill_kv = self._attended(stages, tp, self.demand.prefill_context)
            last = len(stages) - 1
            moe = self.arch.moe
            per_token_layer = kv_bytes_per_token_per_layer(self.arch, self.kv_dtype_bytes, tp) or 1
            work = self._work[key] = ReplicaWork(
                stages=tuple(
                    StageWork(
                        weight_bytes=active[index],
                        spare_expert_bytes=(prefix[layers.stop] - prefix[layers.start])
                        - (active_prefix[layers.stop] - active_prefix[layers.start]),
                        flops_per_token=flops_prefix[layers.stop]
                        - flops_prefix[layers.start]
                        + (head_flops if index == last else 0),
                        decode_kv_bytes=decode_kv[index],
                        prefill_kv_bytes=prefill_kv[index],
                        layers=len(layers),
                        attended_token_layers=decode_kv[index] / per_token_layer,
                    )
                    for index, layers in enumerate(stages)
                ),
                tensor_parallel=tp,
                hidden_size=self.arch.hidden_size,
                attention_flops_per_kv_byte=self._attention_flops_per_kv_byte(tp),
                experts=moe.experts if moe else 0,
                experts_per_token=moe.experts_per_token if moe else 0,
            )
        return work

    def _flops_per_token(self, tp: int) -> tuple[tuple[int, ...], int]:
        """Prefix sums of one rank's FLOPs per token by layer (2 × the weights it multiplies), and the LM head's."""
        found = self._flops.get(tp)
        if found is None:
            rank = self._rank_breakdown(tp)
            head = rank.lm_head or -(-self.arch.vocab_size * self.arch.hidden_size // tp)
            found = self._flops[tp] = (
                tuple(accumulate((2 * layer.active_linear for layer in rank.layers), initial=0)),
                2 * head,
            )
        return found

    def _attention_flops_per_kv_byte(self, tp: int) -> float:
        """4 × query heads × head dim FLOPs per token of context, over the KV bytes that token holds per rank.

        Grouped-query attention reads K and V (2 × KV heads × head dim) for the query heads sharing them; MLA one
        latent per token that every local query head attends to, against it and its value projection.
        """
        arch = self.arch
        if arch.mla is not None:
            return 4 * (arch.num_attention_heads / tp) / self.kv_dtype_bytes
        return 2 * (arch.num_attention_heads / arch.num_kv_heads) / self.kv_dtype_bytes

    def overhead(self, tp: int, pp: int) -> int:
        key = (tp, pp)
        overhead = self._overheads.get(key)
        if overhead is None:
            overhead = self._overheads[key] = overhead_bytes_per_gpu(self.arch, self.runtime, tp, pp)
        return overhead

    def budget(self, gpu: GpuSpec) -> int:
        return gpu.memory_bytes * self.spec.gpu_memory_utilization // 100

    def memory_fit(self, gpu: GpuSpec, weight_format: Quantization, tp: int, pp: int) -> MemoryFit:
        """The stage with the fewest KV tokens binds the replica."""
        weight_format = byte_format(weight_format)
        key = (gpu.id, weight_format, tp, pp)
        fit = self._fits.get(key)
        if fit is None:
            split, budget = self.split(weight_format, tp, pp, self.gpu_class(gpu)), self.budget(gpu)
            capacities = self._stage_capacities(split, budget)
            tokens, concurrency = min(capacities)
            binding = capacities.index((tokens, concurrency))
            breakdown = record(
                MemoryBreakdown,
                weight_bytes_per_gpu=split.weight_bytes_per_gpu[binding],
                kv_cache_bytes_per_token=split.kv_bytes_per_token[binding],
                overhead_bytes_per_gpu=split.overhead_bytes_per_gpu,
                kv_cache_tokens=tokens,
                max_concurrency=int(concurrency * 100) / 100,
                budget_bytes_per_gpu=budget,
                gpu_memory_bytes=gpu.memory_bytes,
            )
            fit = self._fits[key] = MemoryFit(breakdown, tokens >= self.required_tokens)
        return fit

    def _stage_capacities(self, split: StageSplit, budget: int) -> list[tuple[int, float]]:
        """(KV tokens, maximum concurrency) of each stage in what the budget leaves after its weights and overhead."""
        room, length = budget - split.overhead_bytes_per_gpu, self.max_model_len
        return [
            kv_capacity(room - weights, layout, length)
            for weights, layout in zip(split.weight_bytes_per_gpu, split.kv_layouts, strict=True)
        ]

    def threshold(self, weight_format: Quantization, tp: int, pp: int, gpu_class: GpuClass) -> int | None:
        """The smallest per-GPU budget in which every stage of (format, TP, PP) fits; None if no budget does.

        A stage fits iff its KV tokens ≥ required, i.e. (available // B) × L // N ≥ R with B bytes per block,
        N blocks per request, L = maxModelLen and R = required tokens ≥ 1. For integers that holds iff
        available // B ≥ ceil(R × N / L), i.e. available ≥ B × ceil(R × N / L), with available = budget −
        overhead − weights: so the fit of every GPU of a batch class is one comparison with this number.
        A stage caching nothing per request never holds a token (`kv_capacity` gives it 0).
        """
        key = (weight_format, tp, pp, gpu_class)
        if key in self._thresholds:
            return self._thresholds[key]
        split = self.split(weight_format, tp, pp, gpu_class)
        required, length = self.required_tokens, self.max_model_len
        threshold: int | None = None
        if all(layout.blocks_per_request for layout in split.kv_layouts):
            threshold = split.overhead_bytes_per_gpu + max(
                weights + layout.bytes_per_block * -(-required * layout.blocks_per_request // length)
                for weights, layout in zip(split.weight_bytes_per_gpu, split.kv_layouts, strict=True)
            )
        self._thresholds[key] = threshold
        return threshold

    def _stages_fit(self, budget: int, weight_format: Quantization, tp: int, pp: int, gpu_class: GpuClass) -> bool:
        """`memory_fit(...).fits` without building the fit: the PP search tries shapes no candidate uses."""
        threshold = self.threshold(weight_format, tp, pp, gpu_class)
        return threshold is not None and budget >= threshold

    def sizing(
        self, gpu: GpuSpec, weight_format: Quantization, tp: int, gpus_per_node: int, nodes: int, free_gpus: int
    ) -> Sizing:
        """The pinned PP, or the smallest PP that fits memory and the pool; shared by every pool of this kind.

        The chosen PP is the smallest PP up to the pool's limit (its GPUs / TP, the layers, 64) whose stages
        fit memory and whose replicas, laid out as `shapes.layout` spreads them, pack onto the pool's nodes
        and free GPUs. A larger PP only adds GPUs (same decode rate in the roofline, never faster), so the
        smallest such PP dominates every larger one under every strategy; and a bigger pool only adds PPs to
        choose from, so it never turns a fit into a misfit. Memory is not monotone in PP (per-rank overhead
        grows with it) and neither is the node count (PP 21 on 4-GPU nodes needs 7 pods of 3 GPUs, PP 24
        six of 4), so PPs past the smallest memory fit are searched when the pool rejects it.

        When no PP fits both, the sizing is the smallest one that fits memory and one replica's nodes (its
        replicas exceed the free capacity: `capacity` is False), else the largest PP one replica of which
        the pool can hold, with why memory is short there and, if a PP that fits memory exists, why the
        pool's nodes cannot hold it.
        """
        weight_format = SAME_BYTES.get(weight_format, weight_format)  # byte_format, inline: called per candidate
        preferred = self._preferred.get((gpu.id, weight_format, tp))
        if preferred is None:
            preferred = self._preferred[gpu.id, weight_format, tp] = self._prefer(gpu, weight_format, tp)
        if preferred:
            fit, pp = preferred
            placement = self._placements.get((tp, pp, gpus_per_node))
            if placement is None:
                placement = self._placements[tp, pp, gpus_per_node] = self._placement(tp, pp, gpus_per_node)
            shape, gpus, nodes_for_all = placement
            if gpus <= free_gpus and nodes_for_all <= nodes:
                # The PP the GPU prefers (the smallest that fits memory, or the pin) fits this pool: its GPUs fit
                # the free ones, hence PP ≤ GPUs / TP, the pool's limit; no smaller PP fits memory.
                return Sizing(shape, fit, (), True)
        key = (gpu.id, weight_format, tp, gpus_per_node, nodes, free_gpus)
        sizing = self._sizings.get(key)
        if sizing is None:
            pool = PoolShape(gpus_per_node, nodes, free_gpus)
            if self.pinned_pp is not None:
                sizing = self._pinned(gpu, weight_format, tp, pool)
            else:
                sizing = self._search_pool(gpu, weight_format, tp, pool)
            self._sizings[key] = sizing
        return sizing

    def _prefer(self, gpu: GpuSpec, weight_format: Quantization, tp: int) -> tuple[MemoryFit, int] | tuple[()]:
        """The fit at the pin or at the smallest PP that fits memory on this GPU, whatever the pool; () if none."""
        pp = self.pinned_pp or self._search(gpu, weight_format, tp).smallest
        if pp is None:
            return ()
        fit = self.memory_fit(gpu, weight_format, tp, pp)
        return (fit, pp) if fit.fits else ()

    def _placement(self, tp: int, pp: int, gpus_per_node: int) -> tuple[Layout, int, int]:
        """A shape's layout on nodes of this size, with the GPUs and nodes all replicas take."""
        shape = layout(tp, pp, gpus_per_node)
        assert shape is not None  # TP fits a node: the caller checked
        replicas = self.replicas
        return shape, tp * pp * replicas, nodes_needed(shape, gpus_per_node, replicas)

    def _pinned(self, gpu: GpuSpec, weight_format: Quantization, tp: int, pool: PoolShape) -> Sizing:
        pp = self.pinned_pp
        assert pp is not None
        shape = layout(tp, pp, pool.gpus_per_node)
        assert shape is not None
        fit = self.memory_fit(gpu, weight_format, tp, pp)
        if not fit.fits:
            return Sizing(shape, fit, (self._memory_reason(fit, shape),), False)
        if nodes_needed(shape, pool.gpus_per_node, 1) > pool.nodes:
            return Sizing(shape, fit, (self._nodes_reason(shape, pool),), False)
        return Sizing(shape, fit, (), self._has_capacity(shape, pool))

    def _has_capacity(self, shape: Layout, pool: PoolShape) -> bool:
        """Whether every replica fits the pool's free GPUs and, pods packed onto nodes, its nodes."""
        replicas = self.replicas
        return (
            shape.tensor_parallel * shape.pipeline_parallel * replicas <= pool.free_gpus
            and nodes_needed(shape, pool.gpus_per_node, replicas) <= pool.nodes
        )

    def _search_pool(self, gpu: GpuSpec, weight_format: Quantization, tp: int, pool: PoolShape) -> Sizing:
        gpus_per_node = pool.gpus_per_node
        limit = min(self.largest_pp, gpus_per_node * pool.nodes // tp)
        smallest, budget, need = self._search(gpu, weight_format, tp)
        gpu_class = self.gpu_class(gpu)
        unplaced: Layout | None = None  # the smallest PP that fits memory but not the pool's nodes
        short: Layout | None = None  # the smallest PP that fits memory and one replica, not every replica
        if smallest is not None and smallest <= limit:
            for pp in range(smallest, limit + 1):
                if pp > smallest:
                    if not self._replica_fits_in_total(tp, pp, budget, need):
                        # Past `smallest` the whole-replica bound fails only beyond its interval, for good.
                        break
                    if not self._stages_fit(budget, weight_format, tp, pp, gpu_class):
                        continue
                shape = layout(tp, pp, gpus_per_node)
                assert shape is not None
                if nodes_needed(shape, gpus_per_node, 1) > pool.nodes:
                    unplaced = unplaced or shape
                    continue
                if self._has_capacity(shape, pool):
                    return Sizing(shape, self.memory_fit(gpu, weight_format, tp, pp), (), True)
                short = short or shape
        if short is not None:
            return Sizing(short, self.memory_fit(gpu, weight_format, tp, short.pipeline_parallel), (), False)
        shape = self._largest_placeable(tp, pool, limit)
        fit = self.memory_fit(gpu, weight_format, tp, shape.pipeline_parallel)
        reasons: tuple[Reason, ...] = () if fit.fits else (self._memory_reason(fit, shape),)
        if unplaced is not None:
            reasons += (self._nodes_reason(unplaced, pool),)
        return Sizing(shape, fit, reasons, False)

    def _largest_placeable(self, tp: int, pool: PoolShape, limit: int) -> Layout:
        """The largest PP up to `limit` one replica of which the pool's nodes hold (PP 1 always: TP fits a node)."""
        for pp in range(limit, 0, -1):
            shape = layout(tp, pp, pool.gpus_per_node)
            if shape is not None and nodes_needed(shape, pool.gpus_per_node, 1) <= pool.nodes:
                return shape
        raise AssertionError(f"TP{tp} does not fit a node of {pool.gpus_per_node} GPUs")

    def _search(self, gpu: GpuSpec, weight_format: Quantization, tp: int) -> PipelineSearch:
        """The smallest PP whose stages fit this GPU, of any pool: searched once per (GPU, format, TP).

        Overhead only takes memory away, so no PP below need / (TP × budget) passes the whole-replica bound,
        and as the overhead is affine in TP × PP the PPs that pass it form one interval: the search stops
        where the bound fails past it. Stage arithmetic only inside it.
        """
        key = (gpu.id, weight_format, tp)
        search = self._searches.get(key)
        if search is None:
            budget, need = self.budget(gpu), self._replica_need(weight_format, tp)
            gpu_class = self.gpu_class(gpu)
            smallest, inside = None, False
            for pp in range(max(1, -(-need // (tp * budget))), self.largest_pp + 1):
                if not self._replica_fits_in_total(tp, pp, budget, need):
                    if inside:
                        break
                    continue
                inside = True
                if self._stages_fit(budget, weight_format, tp, pp, gpu_class):
                    smallest = pp
                    break
            search = self._searches[key] = PipelineSearch(smallest, budget, need)
        return search

    def _replica_fits_in_total(self, tp: int, pp: int, budget: int, need: int) -> bool:
        """A necessary condition: all GPUs of the replica together hold the weights and the load's KV cache.

        Summed over stages, per-GPU needs add up to the whole model's weights (the `need`, with TP × one
        sequence's KV on one rank × maxConcurrency), so a shape failing this cannot pass the per-stage check.
        As a function of PP it is TP × PP × (budget − a − b × TP × PP) ≥ need, concave: true on one interval.
        """
        return tp * pp * (budget - self.overhead(tp, pp)) >= need

    def _replica_need(self, weight_format: Quantization, tp: int) -> int:
        key = (weight_format, tp)
        need = self._needs.get(key)
        if need is None:
            whole = [range(self.arch.num_layers)]
            weights = self.weights(weight_format, tp).stages(whole)[0]
            sequence = self._attended(whole, tp, self.max_model_len)[0]
            need = self._needs[key] = tp * (weights + sequence * self.max_concurrency)
        return need

    @staticmethod
    def _nodes_reason(shape: Layout, pool: PoolShape) -> Reason:
        """A shape that fits memory but whose replica the pool's nodes cannot hold."""
        pods = shape.nodes_per_replica
        needed = nodes_needed(shape, pool.gpus_per_node, 1)
        return record(
            Reason,
            code=ReasonCode.EXCEEDS_POOL_NODES,
            message=f"TP{shape.tensor_parallel}×PP{shape.pipeline_parallel} fits in memory, but one replica is "
            f"{pods} pod(s) of {shape.gpus_per_pod} GPUs (PP stages spread evenly), {needed} node(s) of "
            f"{pool.gpus_per_node} GPUs; the pool has {pool.nodes}",
        )

    def _memory_reason(self, fit: MemoryFit, shape: Layout) -> Reason:
        memory = fit.breakdown
        free = memory.budget_bytes_per_gpu - memory.weight_bytes_per_gpu - memory.overhead_bytes_per_gpu
        return record(
            Reason,
            code=ReasonCode.INSUFFICIENT_MEMORY,
            message=f"TP{shape.tensor_parallel}×PP{shape.pipeline_parallel}: "
            f"weights {memory.weight_bytes_per_gpu / GIB:.1f} GiB + "
            f"overhead {memory.overhead_bytes_per_gpu / GIB:.1f} GiB per GPU leave "
            f"{max(0, free) / GIB:.1f} GiB of {memory.budget_bytes_per_gpu / GIB:.1f} GiB for KV cache: "
            f"{memory.kv_cache_tokens} tokens, need {self.required_tokens} "
            f"(maxModelLen {self.spec.max_model_len} × maxConcurrency {self.spec.max_concurrency})",
        )
