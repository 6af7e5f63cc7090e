"""Memory sizing: does a replica of (weight format, TP, PP) fit a GPU, and which PP is the smallest that does.

Each stage must hold its weights + runtime overhead + the KV cache of maxConcurrency sequences at
maxModelLen in gpuMemoryUtilization of each GPU; the stage with the fewest KV tokens binds the replica.

What a stage holds depends only on (format, TP, PP): the GPU sets just the budget and the bandwidth. So
per-stage bytes are computed once per (format, TP, PP) and shared by every GPU, and a sizing is computed
once per kind of pool (GPU, node size, PP limit) and shared by every pool of that kind, whatever its name,
price or free capacity.
"""

from dataclasses import dataclass
from functools import cached_property

from modelplane.api.model_deployment import KvCacheDtype, ModelDeploymentSpec
from modelplane.api.plan import MemoryBreakdown, Reason, ReasonCode
from modelplane.catalog.architecture import Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.planning.estimates import StageTraffic, Throughput, decode_throughput
from modelplane.planning.kv_cache import kv_bytes_per_token_per_layer, sequence_kv_bytes, windowed_prefix
from modelplane.planning.overhead import overhead_bytes_per_gpu
from modelplane.planning.parameters import ParameterBreakdown, count_parameters
from modelplane.planning.records import record
from modelplane.planning.shapes import MAX_PIPELINE_PARALLEL, Layout, layout
from modelplane.planning.stages import WeightTable, stage_layers
from modelplane.planning.weights import WeightFormat

GIB = 1024**3


@dataclass(frozen=True)
class StageSplit:
    """What one GPU of each stage of a (format, TP, PP) replica holds, whichever GPU it is; one entry per stage."""

    weight_bytes_per_gpu: tuple[int, ...]
    kv_bytes_per_sequence: tuple[int, ...]
    kv_bytes_per_token: tuple[int, ...]
    overhead_bytes_per_gpu: int


@dataclass(frozen=True)
class MemoryFit:
    """Memory of a replica on one GPU model; `traffic` (what a decode step reads) only when it fits."""

    breakdown: MemoryBreakdown
    traffic: tuple[StageTraffic, ...]
    fits: bool
    throughput: Throughput | None


@dataclass(frozen=True)
class Sizing:
    """The smallest PP whose replica fits a kind of pool, or the largest tried, with why it does not fit."""

    layout: Layout
    fit: MemoryFit
    reasons: tuple[Reason, ...]


class Sizer:
    """Memory sizing of one deployment, with every intermediate result kept for the rest of the plan."""

    def __init__(self, spec: ModelDeploymentSpec, arch: Architecture) -> None:
        self.spec, self.arch = spec, arch
        self.kv_dtype_bytes = 1 if spec.kv_cache_dtype is KvCacheDtype.FP8 else 2
        self.required_tokens = spec.max_model_len * spec.max_concurrency
        self.pinned_pp = spec.parallelism.pipeline_parallel if spec.parallelism else None
        self._tables: dict[WeightFormat, WeightTable] = {}
        self._splits: dict[tuple[WeightFormat, int, int], StageSplit] = {}
        self._traffic: dict[tuple[WeightFormat, int, int], tuple[StageTraffic, ...]] = {}
        self._fits: dict[tuple[str, WeightFormat, int, int], MemoryFit] = {}
        self._sizings: dict[tuple[str, WeightFormat, int, int, int], Sizing] = {}
        self._smallest: dict[tuple[str, WeightFormat, int], int | None] = {}
        self._needs: dict[tuple[WeightFormat, int], int] = {}
        self._overheads: dict[tuple[int, int], int] = {}

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

    def _sequence_kv_bytes(self, layers: range, tp: int, length: int) -> int:
        return sequence_kv_bytes(self.arch, layers, self.kv_dtype_bytes, tp, length, self.windowed)

    def split(self, weight_format: WeightFormat, tp: int, pp: int) -> StageSplit:
        key = (weight_format, tp, pp)
        if key not in self._splits:
            table, length = self.weights(weight_format), self.spec.max_model_len
            per_layer = kv_bytes_per_token_per_layer(self.arch, self.kv_dtype_bytes, tp)
            stages = list(enumerate(stage_layers(self.arch.num_layers, pp)))
            self._splits[key] = StageSplit(
                weight_bytes_per_gpu=tuple(-(-table.stage(layers, stage, pp) // tp) for stage, layers in stages),
                kv_bytes_per_sequence=tuple(self._sequence_kv_bytes(layers, tp, length) for _, layers in stages),
                kv_bytes_per_token=tuple(per_layer * len(layers) for _, layers in stages),
                overhead_bytes_per_gpu=self.overhead(tp, pp),
            )
        return self._splits[key]

    def traffic(self, weight_format: WeightFormat, tp: int, pp: int) -> tuple[StageTraffic, ...]:
        """Bytes a decode step reads per stage: active weights, and the KV cache at the average context."""
        key = (weight_format, tp, pp)
        if key not in self._traffic:
            table, average_context = self.weights(weight_format), max(1, self.spec.max_model_len // 2)
            self._traffic[key] = tuple(
                StageTraffic(
                    weight_bytes_per_gpu=-(-table.stage(layers, stage, pp, active=True) // tp),
                    kv_bytes_per_sequence_per_gpu=self._sequence_kv_bytes(layers, tp, average_context),
                )
                for stage, layers in enumerate(stage_layers(self.arch.num_layers, pp))
            )
        return self._traffic[key]

    def overhead(self, tp: int, pp: int) -> int:
        key = (tp, pp)
        if key not in self._overheads:
            self._overheads[key] = overhead_bytes_per_gpu(self.arch, self.spec.runtime.value, tp, pp)
        return self._overheads[key]

    def budget(self, gpu: GpuSpec) -> int:
        return gpu.memory_bytes * self.spec.gpu_memory_utilization // 100

    def memory_fit(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> MemoryFit:
        """The stage with the fewest KV tokens binds the replica; the decode roofline only for a fit."""
        key = (gpu.id, weight_format, tp, pp)
        if key not in self._fits:
            split, budget, length = self.split(weight_format, tp, pp), self.budget(gpu), self.spec.max_model_len
            room = budget - split.overhead_bytes_per_gpu
            stage_tokens = [
                max(0, room - weights) * length // sequence if sequence else 0
                for weights, sequence in zip(split.weight_bytes_per_gpu, split.kv_bytes_per_sequence, strict=True)
            ]
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
            fits = tokens >= self.required_tokens
            traffic = self.traffic(weight_format, tp, pp) if fits else ()
            throughput = decode_throughput(gpu, tp, traffic, self.spec.max_concurrency) if fits else None
            self._fits[key] = MemoryFit(breakdown, traffic, fits, throughput)
        return self._fits[key]

    def sizing(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, gpus_per_node: int, pp_limit: int) -> Sizing:
        """The pinned PP, or the smallest PP up to `pp_limit` (the pool's GPUs, the layers) that fits.

        A larger PP only adds GPUs (same decode rate in the roofline), so the smallest fitting PP dominates
        every larger one under every strategy. When none fits, the sizing is the one at `pp_limit`.
        """
        key = (gpu.id, weight_format, tp, gpus_per_node, pp_limit)
        if key not in self._sizings:
            pp = self.pinned_pp or self._smallest_pp(gpu, weight_format, tp, pp_limit)
            fit = self.memory_fit(gpu, weight_format, tp, pp)
            shape = layout(tp, pp, gpus_per_node)
            assert shape is not None
            reasons = () if fit.fits else (self._memory_reason(fit, shape),)
            self._sizings[key] = Sizing(shape, fit, reasons)
        return self._sizings[key]

    def _smallest_pp(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, most: int) -> int:
        """The smallest PP up to `most` that fits, else `most`.

        A `most` failing the whole-replica bound is returned as is, without looking below it, as the planner
        always has; per-rank overhead grows with PP, so a smaller PP can pass where `most` does not.
        """
        smallest = self._smallest_fitting_pp(gpu, weight_format, tp)
        if smallest is not None and smallest <= most and self._replica_fits_in_total(gpu, weight_format, tp, most):
            return smallest
        return most

    def _smallest_fitting_pp(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int) -> int | None:
        """Searched once per (GPU, format, TP) for every pool size; stage arithmetic only past the cheap bound.

        Overhead only takes memory away, so no PP below need / (TP × budget) passes the whole-replica bound.
        """
        key = (gpu.id, weight_format, tp)
        if key not in self._smallest:
            lowest = max(1, -(-self._replica_need(weight_format, tp) // (tp * self.budget(gpu))))
            self._smallest[key] = next(
                (pp for pp in range(lowest, min(self.arch.num_layers, MAX_PIPELINE_PARALLEL) + 1)
                 if self._replica_fits_in_total(gpu, weight_format, tp, pp)
                 and self.memory_fit(gpu, weight_format, tp, pp).fits),
                None,
            )  # fmt: skip
        return self._smallest[key]

    def _replica_fits_in_total(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> bool:
        """A necessary condition: all GPUs of the replica together hold the weights and the load's KV cache.

        Summed over stages, per-GPU needs add up to the whole model's weights and TP × (one sequence's KV
        on one rank) × maxConcurrency, so a shape failing this cannot pass the per-stage check.
        """
        usable = tp * pp * (self.budget(gpu) - self.overhead(tp, pp))
        return usable >= self._replica_need(weight_format, tp)

    def _replica_need(self, weight_format: WeightFormat, tp: int) -> int:
        key = (weight_format, tp)
        if key not in self._needs:
            layers = range(self.arch.num_layers)
            weights = self.weights(weight_format).stage(layers, 0, 1)
            sequence = self._sequence_kv_bytes(layers, tp, self.spec.max_model_len)
            self._needs[key] = weights + tp * sequence * self.spec.max_concurrency
        return self._needs[key]

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
