"""The planner: (model, quantization, workload, pools) -> the best plan and why every other candidate lost.

A candidate is a pool × weight format × TP degree. For each, the planner looks for the smallest
pipeline-parallel degree whose stages fit weights + runtime overhead + the KV cache of
maxConcurrency sequences at maxModelLen in gpuMemoryUtilization of each GPU. A larger PP only
adds GPUs (same decode rate in the roofline), so the smallest fitting PP dominates every larger
one under every strategy; the brute-force property test checks exactly that.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from modelplane.api.gpu_node_pool import Location
from modelplane.api.model_deployment import (
    KvCacheDtype,
    Locality,
    ModelDeploymentSpec,
    Quantization,
    Runtime,
    Strategy,
)
from modelplane.api.plan import Candidate, Estimates, MemoryBreakdown, Plan, PlanResult, Reason, ReasonCode
from modelplane.catalog.architecture import Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.catalog.models import ModelEntry, resolve_architecture
from modelplane.catalog.support import needs_checkpoint, support_problem
from modelplane.planning.estimates import (
    StageTraffic,
    Throughput,
    cost_per_hour,
    cost_per_million_tokens,
    decode_throughput,
)
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.kv_cache import kv_bytes_per_token_per_layer, sequence_kv_bytes, windowed_prefix
from modelplane.planning.overhead import overhead_bytes_per_gpu
from modelplane.planning.parameters import ParameterBreakdown, count_parameters
from modelplane.planning.shapes import (
    MAX_PIPELINE_PARALLEL,
    Layout,
    heads_problem,
    layout,
    tensor_parallel_options,
)
from modelplane.planning.stages import WeightTable, stage_layers
from modelplane.planning.weights import WeightFormat

SIXTEEN_BIT = (WeightFormat.BF16, WeightFormat.FP16)
PRE_QUANTIZED = {
    "awq": WeightFormat.AWQ,
    "gptq": WeightFormat.GPTQ,
    "fp8": WeightFormat.FP8,
    "int8": WeightFormat.INT8,
    "mxfp4": WeightFormat.MXFP4,
}
FP8_KV_FEATURE = "fp8-kv-cache"
GIB = 1024**3


@dataclass(frozen=True)
class MemoryFit:
    breakdown: MemoryBreakdown
    traffic: tuple[StageTraffic, ...]
    fits: bool
    required_tokens: int
    throughput: Throughput | None


@dataclass(frozen=True)
class Evaluation:
    """One candidate with everything needed to rank it and to print it."""

    offer: PoolOffer
    weight_format: WeightFormat
    layout: Layout
    reasons: tuple[Reason, ...]
    memory: MemoryBreakdown | None = None
    throughput: Throughput | None = None
    hourly_cost: Decimal | None = None

    @property
    def feasible(self) -> bool:
        return not self.reasons

    def candidate(self) -> Candidate:
        """Built without re-validation: every field comes from typed planner values."""
        return Candidate.model_construct(
            pool=self.offer.name,
            gpu=self.offer.gpu.id,
            tensor_parallel=self.layout.tensor_parallel,
            pipeline_parallel=self.layout.pipeline_parallel,
            quantization=self.weight_format.value,
            feasible=self.feasible,
            reasons=list(self.reasons),
            gpus_per_replica=self.layout.gpus_per_replica,
            memory=self.memory,
            estimates=self.estimates() if self.throughput else None,
        )

    def estimates(self) -> Estimates:
        assert self.throughput is not None
        return Estimates.model_construct(
            decode_tokens_per_second=self.throughput.aggregate,
            decode_tokens_per_second_per_sequence=self.throughput.per_sequence,
            cost_per_hour=str(self.hourly_cost) if self.hourly_cost is not None else None,
            cost_per_million_tokens=_money(cost_per_million_tokens(self.replica_cost, self.throughput.aggregate)),
        )

    @property
    def replica_cost(self) -> Decimal | None:
        return cost_per_hour(self.offer.cost_per_gpu_hour, self.layout.gpus_per_replica)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _reason(code: ReasonCode, message: str) -> Reason:
    return Reason.model_construct(code=code, message=message)


def checkpoint_format(arch: Architecture, entry: ModelEntry | None) -> WeightFormat | None:
    """The format a pre-quantized checkpoint is stored in, from the catalog or its quantization_config."""
    declared = (entry.pre_quantized if entry else None) or arch.quant_method
    if declared is None:
        return None
    return PRE_QUANTIZED.get(declared.lower())


class _Planner:
    def __init__(
        self,
        name: str,
        namespace: str,
        spec: ModelDeploymentSpec,
        arch: Architecture,
        entry: ModelEntry | None,
    ) -> None:
        self.name, self.namespace, self.spec, self.arch = name, namespace, spec, arch
        self.checkpoint = checkpoint_format(arch, entry)
        self.kv_dtype_bytes = 1 if spec.kv_cache_dtype is KvCacheDtype.FP8 else 2
        self.required_tokens = spec.max_model_len * spec.max_concurrency
        self._memory: dict[tuple[str, WeightFormat, int, int], MemoryFit] = {}
        self._tables: dict[WeightFormat, WeightTable] = {}
        self._pp_cache: dict[tuple[str, WeightFormat, int, int], list[int]] = {}
        self._needs: dict[tuple[WeightFormat, int], int] = {}

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

    # -- deployment-level checks -------------------------------------------------------------
    def deployment_reasons(self) -> list[Reason]:
        spec, arch = self.spec, self.arch
        reasons = []
        limit = arch.max_position_embeddings
        if limit is not None and spec.max_model_len > limit:
            reasons.append(
                _reason(
                    ReasonCode.MAX_MODEL_LEN_EXCEEDED,
                    f"maxModelLen {spec.max_model_len} exceeds the model's max_position_embeddings {limit}",
                )
            )
        requested = spec.quantization
        if self.checkpoint is not None:
            if requested.value not in (Quantization.AUTO.value, self.checkpoint.value):
                reasons.append(
                    _reason(
                        ReasonCode.UNSUPPORTED_QUANTIZATION,
                        f"{spec.model.name} is a pre-quantized {self.checkpoint.value} checkpoint; "
                        f"set quantization to auto or {self.checkpoint.value}",
                    )
                )
        elif requested is not Quantization.AUTO and needs_checkpoint(spec.runtime.value, requested.value):
            reasons.append(
                _reason(
                    ReasonCode.UNSUPPORTED_QUANTIZATION,
                    f"{spec.runtime.value} serves {requested.value} only from a checkpoint already quantized that way; "
                    f"{spec.model.name} is not one (name such a repository, or use "
                    f"{'fp8' if not needs_checkpoint(spec.runtime.value, 'fp8') else 'bf16'})",
                )
            )
        return reasons

    def formats(self) -> list[WeightFormat]:
        """Formats to try, best precision first."""
        if self.checkpoint is not None:
            return [self.checkpoint]
        if self.spec.quantization is Quantization.AUTO:
            return [f for f in (WeightFormat.BF16, WeightFormat.FP8)
                    if not needs_checkpoint(self.spec.runtime.value, f.value)]  # fmt: skip
        return [WeightFormat(self.spec.quantization.value)]

    # -- pool-level checks -------------------------------------------------------------------
    def pool_reasons(self, offer: PoolOffer) -> list[Reason]:
        placement = self.spec.placement
        reasons = []
        if placement.pools is not None and offer.name not in placement.pools:
            reasons.append(_reason(ReasonCode.POOL_NOT_SELECTED, f"pool {offer.name} is not in placement.pools"))
        locality = placement.locality
        if (locality is Locality.ON_PREM_ONLY and offer.location is not Location.ON_PREM) or (
            locality is Locality.CLOUD_ONLY and offer.location is not Location.CLOUD
        ):
            reasons.append(
                _reason(
                    ReasonCode.LOCALITY_POLICY,
                    f"locality {locality.value} excludes {offer.location.value} pool {offer.name}",
                )
            )
        if self.spec.runtime is Runtime.TENSORRT_LLM and offer.gpu.vendor.value != "nvidia":
            reasons.append(
                _reason(
                    ReasonCode.RUNTIME_UNSUPPORTED,
                    f"TensorRT-LLM runs on NVIDIA GPUs only; {offer.gpu.id} is AMD",
                )
            )
        return reasons

    def format_for_gpu(self, weight_format: WeightFormat, gpu: GpuSpec) -> WeightFormat:
        """auto's 16-bit choice is bf16, or fp16 on GPUs without bf16 (V100, T4)."""
        if (
            weight_format is WeightFormat.BF16
            and self.spec.quantization is Quantization.AUTO
            and "bf16" not in gpu.precisions
        ):
            return WeightFormat.FP16
        return weight_format

    def format_reasons(self, weight_format: WeightFormat, gpu: GpuSpec) -> list[Reason]:
        runtime = self.spec.runtime.value
        reasons = []
        problem = support_problem(runtime, weight_format.value, gpu)
        if problem:
            reasons.append(_reason(ReasonCode.UNSUPPORTED_QUANTIZATION, problem))
        if self.spec.kv_cache_dtype is KvCacheDtype.FP8:
            kv_problem = support_problem(runtime, FP8_KV_FEATURE, gpu)
            if kv_problem:
                reasons.append(_reason(ReasonCode.UNSUPPORTED_KV_CACHE_DTYPE, kv_problem))
        return reasons

    # -- memory ------------------------------------------------------------------------------
    def memory_fit(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> MemoryFit:
        key = (gpu.id, weight_format, tp, pp)
        if key not in self._memory:
            self._memory[key] = self._compute_memory(gpu, weight_format, tp, pp)
        return self._memory[key]

    def _compute_memory(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> MemoryFit:
        """Per-stage arithmetic in plain integers; the stage with the fewest KV tokens binds the replica."""
        spec, arch = self.spec, self.arch
        budget = gpu.memory_bytes * spec.gpu_memory_utilization // 100
        overhead = overhead_bytes_per_gpu(arch, spec.runtime.value, tp, pp)
        table = self.weights(weight_format)
        per_layer = kv_bytes_per_token_per_layer(arch, self.kv_dtype_bytes, tp)
        length, average_context = spec.max_model_len, max(1, spec.max_model_len // 2)
        binding: tuple[int, int, int] | None = None
        traffic = []
        for stage, layers in enumerate(stage_layers(arch.num_layers, pp)):
            weights = -(-table.stage(layers, stage, pp) // tp)
            sequence = sequence_kv_bytes(arch, layers, self.kv_dtype_bytes, tp, length, self.windowed)
            tokens = max(0, budget - weights - overhead) * length // sequence if sequence else 0
            if binding is None or tokens < binding[1]:
                binding = (weights, tokens, per_layer * len(layers))
            traffic.append(StageTraffic(
                weight_bytes_per_gpu=-(-table.stage(layers, stage, pp, active=True) // tp),
                kv_bytes_per_sequence_per_gpu=sequence_kv_bytes(arch, layers, self.kv_dtype_bytes, tp,
                                                                average_context, self.windowed),
            ))  # fmt: skip
        assert binding is not None
        weights, tokens, kv_per_token = binding
        memory = MemoryBreakdown.model_construct(
            weight_bytes_per_gpu=weights,
            kv_cache_bytes_per_token=kv_per_token,
            overhead_bytes_per_gpu=overhead,
            kv_cache_tokens=tokens,
            budget_bytes_per_gpu=budget,
            gpu_memory_bytes=gpu.memory_bytes,
        )
        fits = tokens >= self.required_tokens
        throughput = decode_throughput(gpu, tp, traffic, spec.max_concurrency) if fits else None
        return MemoryFit(memory, tuple(traffic), fits, self.required_tokens, throughput)

    # -- candidates --------------------------------------------------------------------------
    def evaluate(self, offer: PoolOffer, weight_format: WeightFormat, tp: int) -> Evaluation:
        spec, arch = self.spec, self.arch
        pinned_pp = spec.parallelism.pipeline_parallel if spec.parallelism else None
        first = layout(tp, pinned_pp or 1, offer.gpus_per_node) or Layout(tp, pinned_pp or 1, 1)
        if tp > offer.gpus_per_node:
            return Evaluation(
                offer,
                weight_format,
                first,
                (
                    _reason(
                        ReasonCode.EXCEEDS_GPUS_PER_NODE,
                        f"tensorParallel {tp} exceeds the {offer.gpus_per_node} GPUs of a {offer.name} node "
                        "(TP never spans nodes)",
                    ),
                ),
            )
        heads = heads_problem(arch, tp)
        if heads:
            return Evaluation(offer, weight_format, first, (_reason(ReasonCode.HEADS_NOT_DIVISIBLE, heads),))
        most = min(arch.num_layers, offer.total_gpus // tp, MAX_PIPELINE_PARALLEL)
        if pinned_pp is not None:
            if pinned_pp > arch.num_layers:
                return Evaluation(
                    offer,
                    weight_format,
                    first,
                    (
                        _reason(
                            ReasonCode.LAYERS_NOT_DIVISIBLE,
                            f"pipelineParallel {pinned_pp} exceeds the model's {arch.num_layers} layers",
                        ),
                    ),
                )
            if tp * pinned_pp > offer.total_gpus:
                return Evaluation(
                    offer,
                    weight_format,
                    first,
                    (
                        _reason(
                            ReasonCode.EXCEEDS_POOL_NODES,
                            f"TP×PP = {tp * pinned_pp} GPUs exceeds the {offer.total_gpus} GPUs of pool {offer.name}",
                        ),
                    ),
                )
            options = [pinned_pp]
        else:
            options = self._pp_options(offer.gpu, weight_format, tp, most)
        fit = None
        pp = options[0]
        for pp in options:
            fit = self.memory_fit(offer.gpu, weight_format, tp, pp)
            if fit.fits:
                break
        assert fit is not None
        shape = layout(tp, pp, offer.gpus_per_node)
        assert shape is not None
        if not fit.fits:
            return Evaluation(offer, weight_format, shape, (self._memory_reason(fit, shape),), fit.breakdown)
        throughput = fit.throughput
        hourly = cost_per_hour(offer.cost_per_gpu_hour, shape.gpus_per_replica * spec.replicas)
        reasons = []
        if shape.nodes_per_replica > 1 and spec.runtime is Runtime.TENSORRT_LLM:
            reasons.append(
                _reason(
                    ReasonCode.RUNTIME_UNSUPPORTED,
                    f"this shape spans {shape.nodes_per_replica} nodes; modelplane renders TensorRT-LLM on "
                    "one node only (multi-node trtllm-serve needs MPI launchers)",
                )
            )
        needed = shape.gpus_per_replica * spec.replicas
        pods_per_node = offer.gpus_per_node // shape.gpus_per_pod
        nodes_needed = -(-shape.nodes_per_replica * spec.replicas // pods_per_node)
        if needed > offer.free_gpus or nodes_needed > offer.nodes:
            reasons.append(
                _reason(
                    ReasonCode.INSUFFICIENT_CAPACITY,
                    f"{spec.replicas} replica(s) × {shape.gpus_per_replica} GPUs = {needed} GPUs, "
                    f"pool {offer.name} has {offer.free_gpus} free",
                )
            )
        return Evaluation(offer, weight_format, shape, tuple(reasons), fit.breakdown, throughput, hourly)

    def _replica_fits_in_total(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, pp: int) -> bool:
        """A necessary condition: all GPUs of the replica together hold the weights and the load's KV cache.

        Summed over stages, per-GPU needs add up to the whole model's weights and TP × (one sequence's KV
        on one rank) × maxConcurrency, so a shape failing this cannot pass the per-stage check.
        """
        budget = gpu.memory_bytes * self.spec.gpu_memory_utilization // 100
        usable = tp * pp * (budget - overhead_bytes_per_gpu(self.arch, self.spec.runtime.value, tp, pp))
        return usable >= self._replica_need(weight_format, tp)

    def _replica_need(self, weight_format: WeightFormat, tp: int) -> int:
        key = (weight_format, tp)
        if key not in self._needs:
            spec, layers = self.spec, range(self.arch.num_layers)
            weights = self.weights(weight_format).stage(layers, 0, 1)
            sequence = sequence_kv_bytes(self.arch, layers, self.kv_dtype_bytes, tp, spec.max_model_len, self.windowed)
            self._needs[key] = weights + tp * sequence * spec.max_concurrency
        return self._needs[key]

    def _pp_options(self, gpu: GpuSpec, weight_format: WeightFormat, tp: int, most: int) -> list[int]:
        """PP degrees worth the per-stage check, smallest first; only the largest when none can fit."""
        key = (gpu.id, weight_format, tp, most)
        if key not in self._pp_cache:
            if not self._replica_fits_in_total(gpu, weight_format, tp, most):
                self._pp_cache[key] = [most]
            else:
                first = next(pp for pp in range(1, most + 1) if self._replica_fits_in_total(gpu, weight_format, tp, pp))
                self._pp_cache[key] = list(range(first, most + 1))
        return self._pp_cache[key]

    def _memory_reason(self, fit: MemoryFit, shape: Layout) -> Reason:
        memory = fit.breakdown
        free = memory.budget_bytes_per_gpu - memory.weight_bytes_per_gpu - memory.overhead_bytes_per_gpu
        return _reason(
            ReasonCode.INSUFFICIENT_MEMORY,
            f"TP{shape.tensor_parallel}×PP{shape.pipeline_parallel}: "
            f"weights {memory.weight_bytes_per_gpu / GIB:.1f} GiB + "
            f"overhead {memory.overhead_bytes_per_gpu / GIB:.1f} GiB per GPU leave "
            f"{max(0, free) / GIB:.1f} GiB of {memory.budget_bytes_per_gpu / GIB:.1f} GiB for KV cache: "
            f"{memory.kv_cache_tokens} tokens, need {fit.required_tokens} "
            f"(maxModelLen {self.spec.max_model_len} × maxConcurrency {self.spec.max_concurrency})",
        )

    def evaluations(self, offers: Sequence[PoolOffer]) -> list[Evaluation]:
        pinned_tp = self.spec.parallelism.tensor_parallel if self.spec.parallelism else None
        result = []
        for offer in offers:
            placeholder = Layout(pinned_tp or 1, 1, 1)
            pool_reasons = self.pool_reasons(offer)
            if pool_reasons:
                result.append(Evaluation(offer, self.formats()[0], placeholder, tuple(pool_reasons)))
                continue
            for wanted in self.formats():
                weight_format = self.format_for_gpu(wanted, offer.gpu)
                format_reasons = self.format_reasons(weight_format, offer.gpu)
                if format_reasons:
                    result.append(Evaluation(offer, weight_format, placeholder, tuple(format_reasons)))
                    continue
                for tp in tensor_parallel_options(offer.gpus_per_node, pinned_tp):
                    result.append(self.evaluate(offer, weight_format, tp))
        return result

    # -- ranking -----------------------------------------------------------------------------
    def rank_key(self, evaluation: Evaluation) -> tuple[object, ...]:
        return rank_key(self.spec, evaluation)


PRECISION_RANK = {
    WeightFormat.BF16: 0,
    WeightFormat.FP16: 0,
    WeightFormat.FP8: 1,
    WeightFormat.INT8: 2,
    WeightFormat.MXFP4: 3,
    WeightFormat.AWQ: 3,
    WeightFormat.GPTQ: 3,
}


def rank_key(spec: ModelDeploymentSpec, evaluation: Evaluation) -> tuple[object, ...]:
    """Sort key of feasible candidates: lowest wins. Deterministic down to the pool name.

    quantization auto prefers the highest precision that fits; locality prefer-on-prem puts
    on-prem pools first (hybrid: burst to cloud only when on-prem cannot serve).
    """
    assert evaluation.throughput is not None
    shape = evaluation.layout
    cost = evaluation.hourly_cost
    unknown_cost = cost is None
    cost_value = cost if cost is not None else Decimal(0)
    precision = PRECISION_RANK[evaluation.weight_format] if spec.quantization is Quantization.AUTO else 0
    locality = (
        int(evaluation.offer.location is not Location.ON_PREM)
        if spec.placement.locality is Locality.PREFER_ON_PREM
        else 0
    )
    speed = (-evaluation.throughput.per_sequence, -evaluation.throughput.aggregate)
    if spec.placement.strategy is Strategy.CHEAPEST:
        objective: tuple[object, ...] = (unknown_cost, cost_value, shape.gpus_per_replica, *speed)
    elif spec.placement.strategy is Strategy.FEWEST_GPUS:
        objective = (shape.gpus_per_replica, unknown_cost, cost_value, *speed)
    else:
        objective = (*speed, unknown_cost, cost_value, shape.gpus_per_replica)
    tie_break = (
        evaluation.offer.name,
        shape.tensor_parallel,
        shape.pipeline_parallel,
        evaluation.weight_format,
    )
    return (precision, locality, *objective, *tie_break)


def _plan(planner: _Planner, best: Evaluation) -> Plan:
    spec, shape = planner.spec, best.layout
    assert best.memory is not None
    return Plan(
        pool=best.offer.name,
        gpu=best.offer.gpu.id,
        location=best.offer.location.value,
        tensor_parallel=shape.tensor_parallel,
        pipeline_parallel=shape.pipeline_parallel,
        gpus_per_replica=shape.gpus_per_replica,
        nodes_per_replica=shape.nodes_per_replica,
        gpus_per_pod=shape.gpus_per_pod,
        replicas=spec.replicas,
        quantization=best.weight_format.value,
        pre_quantized=planner.checkpoint is not None,
        kv_cache_dtype=spec.kv_cache_dtype.value,
        runtime=spec.runtime.value,
        max_model_len=spec.max_model_len,
        max_concurrency=spec.max_concurrency,
        gpu_memory_utilization=spec.gpu_memory_utilization,
        node_selector=best.offer.node_selector,
        tolerations=list(best.offer.tolerations),
        memory=best.memory,
        estimates=best.estimates(),
    )


def summarize_rejections(evaluations: Sequence[Evaluation]) -> list[Reason]:
    """One reason per code, counting the pools it applied to: the short answer to 'why not'."""
    pools_by_code: dict[ReasonCode, set[str]] = {}
    example: dict[ReasonCode, str] = {}
    for evaluation in evaluations:
        for reason in evaluation.reasons:
            pools_by_code.setdefault(reason.code, set()).add(evaluation.offer.name)
            example.setdefault(reason.code, reason.message)
    return [
        _reason(
            code,
            f"{len(pools)} pool(s) ({', '.join(sorted(pools)[:5])}{', …' if len(pools) > 5 else ''}): "
            f"e.g. {example[code]}",
        )
        for code, pools in sorted(pools_by_code.items())
    ]


@dataclass(frozen=True)
class Outcome:
    """The planner's answer before suggestions are added; kept internal so suggestions can re-plan."""

    result: PlanResult
    evaluations: tuple[Evaluation, ...]


def plan_core(name: str, namespace: str, spec: ModelDeploymentSpec, offers: Sequence[PoolOffer]) -> Outcome:
    """Plan one deployment without suggestions. Raises CatalogError for an unknown model or bad config."""
    arch, entry = resolve_architecture(spec.model.name, spec.model.architecture, f"{namespace}/{name}")
    planner = _Planner(name, namespace, spec, arch, entry)
    deployment_reasons = planner.deployment_reasons()
    evaluations = [] if deployment_reasons else planner.evaluations(offers)
    feasible = sorted((e for e in evaluations if e.feasible), key=planner.rank_key)
    reasons = deployment_reasons or ([] if feasible else summarize_rejections(evaluations))
    if not offers and not deployment_reasons:
        reasons = [_reason(ReasonCode.NO_POOLS, "no GPUNodePool is defined")]
    result = PlanResult(
        name=name,
        namespace=namespace,
        model=spec.model.name,
        feasible=bool(feasible),
        plan=_plan(planner, feasible[0]) if feasible else None,
        reasons=reasons,
        candidates=[evaluation.candidate() for evaluation in evaluations],
    )
    return Outcome(result, tuple(evaluations))
