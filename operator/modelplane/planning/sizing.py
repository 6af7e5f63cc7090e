"""Memory sizing: does a replica of (weight format, TP, PP) fit a GPU, and which PP is the smallest that does.

Each stage must hold its weights + runtime overhead + the KV cache of maxConcurrency sequences at
maxModelLen in gpuMemoryUtilization of each GPU; the stage with the fewest KV tokens binds the replica.

What a stage holds depends only on (format, TP, PP): the GPU sets just the budget and the bandwidth, and
formats of equal bytes (fp16 and bf16, int8 and fp8) hold the same. So per-stage bytes are computed once
per (bytes of a format, TP, PP) and shared by every GPU, and a sizing is computed once per kind of pool
(GPU, node size, PP limit) and shared by every pool of that kind, whatever its name, price or free
capacity. Results are tuples rather than dataclasses: a plan builds hundreds, and they are cheaper.
"""

from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from modelplane.api.model_deployment import KvCacheDtype, ModelDeploymentSpec
from modelplane.api.plan import MemoryBreakdown, Reason, ReasonCode
from modelplane.catalog.architecture import Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.planning.estimates import StageTraffic, Throughput, decode_bandwidth, throughput_at
from modelplane.planning.kv_cache import kv_bytes_per_token_per_layer, stages_kv_bytes, windowed_prefix
from modelplane.planning.overhead import overhead_bytes_per_gpu
from modelplane.planning.parameters import ParameterBreakdown, count_parameters
from modelplane.planning.records import record
from modelplane.planning.shapes import MAX_PIPELINE_PARALLEL, Layout, layout
from modelplane.planning.stages import WeightTable, stage_layers
from modelplane.planning.weights import WeightFormat, byte_format

GIB = 1024**3


class StageSplit(NamedTuple):
    """What one GPU of each stage of a (format, TP, PP) replica holds, whichever GPU it is; one entry per stage."""

    weight_bytes_per_gpu: tuple[int, ...]
    kv_bytes_per_sequence: tuple[int, ...]
    kv_bytes_per_token: tuple[int, ...]
    overhead_bytes_per_gpu: int


class MemoryFit(NamedTuple):
    """Memory of a replica on one GPU model; `traffic` (what a decode step reads) only when it fits."""

    breakdown: MemoryBreakdown
    traffic: tuple[StageTraffic, ...]
    fits: bool
    throughput: Throughput | None


class Sizing(NamedTuple):
    """The smallest PP whose replica fits a kind of pool, or the largest tried, with why it does not fit."""

    layout: Layout
    fit: MemoryFit
    reasons: tuple[Reason, ...]


class PipelineSearch(NamedTuple):
    """The smallest fitting PP of a (GPU, format, TP), if any, and the whole-replica bound's two sides."""

    smallest: int | None
    budget: int
    need: int


class Sizer:
    """Memory sizing of one deployment, with every intermediate result kept for the rest of the plan."""

    def __init__(self, spec: ModelDeploymentSpec, arch: Architecture) -> None:
        self.spec, self.arch = spec, arch
        self.kv_dtype_bytes = 1 if spec.kv_cache_dtype is KvCacheDtype.FP8 else 2
        self.max_model_len, self.max_concurrency = spec.max_model_len, spec.max_concurrency
        self.required_tokens = spec.max_model_len * spec.max_concurrency
        self.pinned_pp = spec.parallelism.pipeline_parallel if spec.parallelism else None
        self.runtime = spec.runtime.value
        self.largest_pp = min(arch.num_layers, MAX_PIPELINE_PARALLEL)
        self._tables: dict[WeightFormat, WeightTable] = {}
        self._splits: dict[tuple[WeightFormat, int, int], StageSplit] = {}
        self._traffic: dict[tuple[WeightFormat, int, int], tuple[StageTraffic, ...]] = {}
        self._fits: dict[tuple[str, WeightFormat, int, int], MemoryFit] = {}
        self._sizings: dict[tuple[str, WeightFormat, int, int, int], Sizing] = {}
        self._searches: dict[tuple[str, WeightFormat, int], PipelineSearch] = {}
        self._needs: dict[tuple[WeightFormat, int], int] = {}
        self._overheads: dict[tuple[int, int], int] = {}
        self._bandwidths: dict[tuple[str, bool], Decimal] = {}

    @cached_property
    def breakdown(self) -> ParameterBreakdown:
        return count_parameters(self.arch)

    @cached_property
    def windowed(self) -> tuple[int, ...]:
        return windowed_prefix(self.arch)

    def weights(self, weight_format: WeightFormat) -> WeightTable:
        if weight_format not in self._tables:
            self._tables[weight_format] = WeightTable.build(self.arch, self.breakdown, weight_format)
        return self._tables[weight_format]

    def _kv_bytes(self, stages: list[range], tp: int, length: int) -> tuple[int, ...]:
        return stages_kv_bytes(self.arch, stages, self.kv_dtype_bytes, tp, length, self.windowed)

    def split(self, weight_format: WeightFormat, tp: int, pp: int) -> StageSplit:
        key = (weight_format, tp, pp)
        split = self._splits.get(key)
        if split is None:
            stages = stage_layers(self.arch.num_layers, pp)
            per_layer = kv_bytes_per_token_per_layer(self.arch, self.kv_dtype_bytes, tp)
            split = self._splits[key] = StageSplit(
                tuple(-(-weights // tp) for weights in self.weights(weight_format).stages(stages)),
                self._kv_bytes(stages, tp, self.max_model_len),
                tuple(per_layer * len(layers) for layers in stages),
                self.overhead(tp, pp),
            )
        return split

    def traffic(self, weight_format: WeightFormat, tp: int, pp: int) -> tuple[StageTraffic, ...]:
        """Bytes a decode step reads per stage: active weights, and the KV cache at the average context."""
        key = (weight_format, tp, pp)
        if key not in self._traffic:
            stages = stage_layers(self.arch.num_layers, pp)
            weights = self.weights(weight_format).stages(stages, active=True)
            kv_bytes = self._kv_bytes(stages, tp, max(1, self.max_model_len // 2))
            self._traffic[key] = tuple(
                StageTraffic(-(-stage_weights // tp), stage_kv)
                for stage_weights, stage_kv in zip(weights, kv_bytes, strict=True)
            )
        return self._traffic[key]

    def overhead(self, tp: int, pp: int) -> int:
        key = (tp, pp)
        overhead = self._overheads.get(key)
        if overhead is None:
            overhead = self._overheads[key] = overhead_bytes_per_gpu(self.arch, self.runtime, tp, pp)
        return overhead

    def budget(self, gpu: GpuSpec) -> int:
        return gpu.memory_bytes * self.spec.gpu_memory_utilization // 100

    def memory_fit(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> MemoryFit:
        """The stage with the fewest KV tokens binds the replica; the decode roofline only for a fit."""
        weight_format = byte_format(weight_format)
        key = (gpu.id, weight_format, tp, pp)
        fit = self._fits.get(key)
        if fit is None:
            split, budget = self.split(weight_format, tp, pp), self.budget(gpu)
            stage_tokens = self._stage_tokens(split, budget)
            tokens = min(stage_tokens)
            binding = stage_tokens.index(tokens)
            breakdown = record(
                MemoryBreakdown,
                weight_bytes_per_gpu=split.weight_bytes_per_gpu[binding],
                kv_cache_bytes_per_token=split.kv_bytes_per_token[binding],
                overhead_bytes_per_gpu=split.overhead_bytes_per_gpu,
                kv_cache_tokens=tokens,
                budget_bytes_per_gpu=budget,
                gpu_memory_bytes=gpu.memory_bytes,
            )
            if tokens >= self.required_tokens:
                traffic = self.traffic(weight_format, tp, pp)
                throughput = throughput_at(self._bandwidth(gpu, tp), traffic, self.max_concurrency)
                fit = MemoryFit(breakdown, traffic, True, throughput)
            else:
                fit = MemoryFit(breakdown, (), False, None)
            self._fits[key] = fit
        return fit

    def _bandwidth(self, gpu: GpuSpec, tp: int) -> Decimal:
        key = (gpu.id, tp > 1)
        bandwidth = self._bandwidths.get(key)
        if bandwidth is None:
            bandwidth = self._bandwidths[key] = decode_bandwidth(gpu, tp)
        return bandwidth

    def _stage_tokens(self, split: StageSplit, budget: int) -> list[int]:
        """KV tokens each stage has room for in what the budget leaves after its weights and the overhead."""
        room, length = budget - split.overhead_bytes_per_gpu, self.max_model_len
        return [
            max(0, room - weights) * length // sequence if sequence else 0
            for weights, sequence in zip(split.weight_bytes_per_gpu, split.kv_bytes_per_sequence, strict=True)
        ]

    def _stages_fit(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> bool:
        """`memory_fit(...).fits` without building the fit: the PP search tries shapes no candidate uses."""
        return min(self._stage_tokens(self.split(weight_format, tp, pp), self.budget(gpu))) >= self.required_tokens

    def sizing(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, gpus_per_node: int, pp_limit: int) -> Sizing:
        """The pinned PP, or the smallest PP up to `pp_limit` (the pool's GPUs, the layers) that fits.

        A larger PP only adds GPUs (same decode rate in the roofline), so the smallest fitting PP dominates
        every larger one under every strategy. When none fits, the sizing is the one at `pp_limit`.
        """
        weight_format = byte_format(weight_format)
        key = (gpu.id, weight_format, tp, gpus_per_node, pp_limit)
        sizing = self._sizings.get(key)
        if sizing is None:
            pp = self.pinned_pp or self._smallest_pp(gpu, weight_format, tp, pp_limit)
            fit = self.memory_fit(gpu, weight_format, tp, pp)
            shape = layout(tp, pp, gpus_per_node)
            assert shape is not None
            reasons = () if fit.fits else (self._memory_reason(fit, shape),)
            sizing = self._sizings[key] = Sizing(shape, fit, reasons)
        return sizing

    def _smallest_pp(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, most: int) -> int:
        """The smallest PP up to `most` that fits, else `most`.

        A `most` failing the whole-replica bound is returned as is, without looking below it, as the planner
        always has; per-rank overhead grows with PP, so a smaller PP can pass where `most` does not.
        """
        smallest, budget, need = self._search(gpu, weight_format, tp)
        if smallest is not None and smallest <= most and self._replica_fits_in_total(tp, most, budget, need):
            return smallest
        return most

    def _search(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int) -> PipelineSearch:
        """Searched once per (GPU, format, TP) for every pool size; stage arithmetic only past the cheap bound.

        Overhead only takes memory away, so no PP below need / (TP × budget) passes the whole-replica bound.
        """
        key = (gpu.id, weight_format, tp)
        search = self._searches.get(key)
        if search is None:
            budget, need = self.budget(gpu), self._replica_need(weight_format, tp)
            smallest = next(
                (pp for pp in range(max(1, -(-need // (tp * budget))), self.largest_pp + 1)
                 if self._replica_fits_in_total(tp, pp, budget, need)
                 and self._stages_fit(gpu, weight_format, tp, pp)),
                None,
            )  # fmt: skip
            search = self._searches[key] = PipelineSearch(smallest, budget, need)
        return search

    def _replica_fits_in_total(self, tp: int, pp: int, budget: int, need: int) -> bool:
        """A necessary condition: all GPUs of the replica together hold the weights and the load's KV cache.

        Summed over stages, per-GPU needs add up to the whole model's weights (the `need`, with TP × one
        sequence's KV on one rank × maxConcurrency), so a shape failing this cannot pass the per-stage check.
        """
        return tp * pp * (budget - self.overhead(tp, pp)) >= need

    def _replica_need(self, weight_format: WeightFormat, tp: int) -> int:
        key = (weight_format, tp)
        need = self._needs.get(key)
        if need is None:
            whole = [range(self.arch.num_layers)]
            weights = self.weights(weight_format).stages(whole)[0]
            sequence = self._kv_bytes(whole, tp, self.max_model_len)[0]
            need = self._needs[key] = weights + tp * sequence * self.max_concurrency
        return need

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
