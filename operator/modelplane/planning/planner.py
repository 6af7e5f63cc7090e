"""The planner: (model, quantization, workload, pools) -> the best plan and why every other candidate lost.

A candidate is a pool × weight format × TP degree. For each, the planner looks for the smallest
pipeline-parallel degree whose stages fit weights + runtime overhead + the KV cache of
maxConcurrency sequences at maxModelLen in gpuMemoryUtilization of each GPU, and whose replicas
the pool's nodes and free GPUs hold (sizing.Sizer.sizing). A larger PP only adds GPUs (same decode
rate in the roofline), so that PP dominates every larger one under every strategy, and a bigger
pool never makes a plan infeasible; the brute-force and monotonicity property tests check both.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from modelplane.api.gpu_node_pool import Location
from modelplane.api.model_deployment import Locality, ModelDeploymentSpec, Strategy
from modelplane.api.plan import Candidate, Estimates, MemoryBreakdown, Plan, PlanResult, Reason, ReasonCode
from modelplane.api.serving import KvCacheDtype, Quantization, Runtime
from modelplane.catalog.architecture import COMPRESSED_TENSORS, Architecture
from modelplane.catalog.gpus import GpuSpec
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import PACKAGED, ResolvedModel
from modelplane.catalog.runtimes import runtime_spec
from modelplane.catalog.support import needs_checkpoint, support_problem, weight_only_note
from modelplane.planning.estimates import cost_per_hour, cost_per_million_tokens, hardware, max_num_seqs
from modelplane.planning.inventory import PoolOffer
from modelplane.planning.performance import (
    Hardware,
    OperatingPoint,
    ReplicaWork,
    Workload,
    at_rate,
    max_rate,
    operating_point,
    replicas_for,
)
from modelplane.planning.records import record
from modelplane.planning.shapes import (
    Layout,
    heads_problem,
    layout,
    nodes_needed,
    tensor_parallel_options,
)
from modelplane.planning.sizing import MemoryFit, Sizer

SIXTEEN_BIT = (Quantization.BF16, Quantization.FP16)
PRE_QUANTIZED = {
    "awq": Quantization.AWQ,
    "gptq": Quantization.GPTQ,
    "fp8": Quantization.FP8,
    "int8": Quantization.INT8,
    "mxfp4": Quantization.MXFP4,
    "nvfp4": Quantization.NVFP4,
}
FP8_KV_FEATURE = "fp8-kv-cache"
SIZED_CHECKPOINTS = (
    "modelplane sizes awq, gptq, auto-round (4-bit), fp8, int8, nvfp4 and mxfp4 checkpoints (ModelOpt FP8, NVFP4 and"
    " MIXED_PRECISION of those; compressed-tensors: 8-bit int or float, 4-bit int, NVFP4)"
)


class Serving(NamedTuple):
    """A shape's operating point under the deployment's demand, with the replicas it takes."""

    point: OperatingPoint
    replicas: int
    key: tuple[str, Quantization, int, int]
    """(GPU, format, TP, PP): what `_Planner.ceiling`, the busiest point within the SLO, is cached by."""


class Evaluation(NamedTuple):
    """One candidate with everything needed to rank it and to print it.

    A tuple, not a dataclass: a plan builds hundreds, and a tuple is the cheapest record Python builds.
    `_Planner.estimates` builds the printed form of `serving` and the costs, only for what is printed: the busiest
    point within the SLO it reports costs a bisection per shape.
    """

    offer: PoolOffer
    weight_format: Quantization
    layout: Layout
    reasons: tuple[Reason, ...]
    memory: MemoryBreakdown | None = None
    serving: Serving | None = None
    hourly_cost: Decimal | None = None
    replica_cost: Decimal | None = None

    @property
    def feasible(self) -> bool:
        return not self.reasons

    def candidate(self, estimates: Estimates | None) -> Candidate:
        shape = self.layout
        return record(
            Candidate,
            pool=self.offer.name,
            gpu=self.offer.gpu.id,
            tensor_parallel=shape.tensor_parallel,
            pipeline_parallel=shape.pipeline_parallel,
            quantization=self.weight_format,
            feasible=not self.reasons,
            reasons=list(self.reasons),
            gpus_per_replica=shape.tensor_parallel * shape.pipeline_parallel,
            memory=self.memory,
            estimates=estimates,
        )


def sequence_limit(runtime: str, gpu: GpuSpec, memory: MemoryBreakdown, workload: Workload) -> int:
    """Sequences a replica serves at once: its KV cache holds that many, the runtime schedules as many.

    A running request holds its prompt and, on average, half its output: vLLM admits requests while blocks are
    free (and preempts if they run out), so the mean occupancy, not the worst case, sets how many run.
    """
    held = memory.kv_cache_tokens // (workload.input_tokens + workload.output_tokens // 2)
    return max(1, min(max_num_seqs(runtime, gpu), held))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _reason(code: ReasonCode, message: str) -> Reason:
    return record(Reason, code=code, message=message)


def checkpoint_format(arch: Architecture, entry: ModelEntry | None) -> Quantization | None:
    """The format a pre-quantized checkpoint is stored in, from the catalog or its quantization_config.

    A `compressed-tensors` checkpoint names no format in `quant_method`; its config groups do, and
    `Architecture.quant_weight_format` reads them (see `catalog.architecture._compressed_tensors_weights`).
    """
    declared = (entry.pre_quantized if entry else None) or arch.quant_weight_format
    if declared is None:
        return None
    return PRE_QUANTIZED.get(declared.lower())


def unsized_checkpoint(arch: Architecture, entry: ModelEntry | None) -> str | None:
    """What a quantization_config declares that modelplane cannot size, or None.

    Counting such a checkpoint as 16-bit would double (or quadruple) its weights, so it is refused instead.
    """
    if arch.quant_excluded_modules and not arch.checkpoint_layer_bytes:
        shown = ", ".join(arch.quant_excluded_modules[:3])
        more = f" and {len(arch.quant_excluded_modules) - 3} more" if len(arch.quant_excluded_modules) > 3 else ""
        return (
            f"a checkpoint that leaves {shown}{more} unquantized, whose bytes only its safetensors headers give"
            " (make a catalog entry with `modelplane catalog add`, or enable Hub resolution)"
        )
    if (entry is not None and entry.pre_quantized) or arch.quant_method is None:
        return None
    if checkpoint_format(arch, entry) is not None:
        return None
    if arch.quant_method == COMPRESSED_TENSORS:
        bits = f"{arch.quant_bits}-bit " if arch.quant_bits else ""
        return f"a compressed-tensors checkpoint whose {bits}weight scheme is not int8, fp8, 4-bit int or nvfp4"
    scheme = f" ({arch.quant_scheme})" if arch.quant_scheme else ""
    return f"a checkpoint with quant_method {arch.quant_method}{scheme}"


class _Planner:
    def __init__(
        self,
        name: str,
        namespace: str,
        spec: ModelDeploymentSpec,
        arch: Architecture,
        entry: ModelEntry | None,
    ) -> None:
        self.name, self.namespace, self.spec, self.arch, self.entry = name, namespace, spec, arch, entry
        self.checkpoint = checkpoint_format(arch, entry)
        self.sizer = Sizer(spec, arch, self.checkpoint)
        self.replicas = spec.replicas
        self.single_node_only = spec.runtime is Runtime.TENSORRT_LLM
        self._gpu_formats: dict[str, list[tuple[Quantization, tuple[Reason, ...]]]] = {}
        self._tp_problems: dict[int, Reason | None] = {}
        self.demand = self.sizer.demand
        self._servings: dict[tuple[str, Quantization, int, int], tuple[Serving, tuple[Reason, ...]]] = {}
        self._hardwares: dict[tuple[str, Quantization], Hardware] = {}
        self._inputs: dict[tuple[str, Quantization, int, int], tuple[ReplicaWork, Hardware, int]] = {}
        self._ceilings: dict[tuple[str, Quantization, int, int], OperatingPoint | None] = {}
        self._gpus: dict[str, GpuSpec] = {}

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
        unsized = unsized_checkpoint(arch, self.entry)
        if unsized is not None:
            reasons.append(
                _reason(
                    ReasonCode.UNSUPPORTED_QUANTIZATION,
                    f"{spec.model.name} is {unsized}; {SIZED_CHECKPOINTS}",
                )
            )
        elif self.checkpoint is not None:
            if requested not in (Quantization.AUTO, self.checkpoint):
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
        if spec.autoscaling is not None:
            runtime = runtime_spec(spec.runtime.value)
            if runtime.autoscaling_metrics.series(spec.autoscaling.metric.value) is None:
                reasons.append(
                    _reason(
                        ReasonCode.RUNTIME_UNSUPPORTED,
                        f"spec.autoscaling: {runtime.autoscaling_metrics.unsupported}, so {spec.runtime.value} "
                        f"{runtime.version} cannot be autoscaled on its metrics; remove spec.autoscaling (scale "
                        "with kubectl scale or an HPA on other metrics) or use runtime vllm",
                    )
                )
        return reasons

    def formats(self) -> list[Quantization]:
        """Formats to try, best precision first."""
        if self.checkpoint is not None:
            return [self.checkpoint]
        if self.spec.quantization is Quantization.AUTO:
            return [f for f in (Quantization.BF16, Quantization.FP8)
                    if not needs_checkpoint(self.spec.runtime.value, f.value)]  # fmt: skip
        return [self.spec.quantization]

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

    def format_for_gpu(self, weight_format: Quantization, gpu: GpuSpec) -> Quantization:
        """auto's 16-bit choice is bf16, or fp16 on GPUs without bf16 (V100, T4)."""
        if (
            weight_format is Quantization.BF16
            and self.spec.quantization is Quantization.AUTO
            and "bf16" not in gpu.precisions
        ):
            return Quantization.FP16
        return weight_format

    def format_reasons(self, weight_format: Quantization, gpu: GpuSpec) -> tuple[Reason, ...]:
        """Why a GPU model cannot serve a format (or the KV cache dtype), or nothing."""
        runtime = self.spec.runtime.value
        reasons = []
        problem = support_problem(runtime, weight_format.value, gpu)
        if problem:
            reasons.append(_reason(ReasonCode.UNSUPPORTED_QUANTIZATION, problem))
        if self.spec.kv_cache_dtype is KvCacheDtype.FP8:
            kv_problem = support_problem(runtime, FP8_KV_FEATURE, gpu)
            if kv_problem:
                reasons.append(_reason(ReasonCode.UNSUPPORTED_KV_CACHE_DTYPE, kv_problem))
        return tuple(reasons)

    def gpu_formats(self, gpu: GpuSpec) -> list[tuple[Quantization, tuple[Reason, ...]]]:
        """The formats to try on a GPU model, each with `format_reasons`: asked once per GPU model."""
        if gpu.id not in self._gpu_formats:
            formats = [self.format_for_gpu(wanted, gpu) for wanted in self.formats()]
            self._gpu_formats[gpu.id] = [(weight_format, self.format_reasons(weight_format, gpu))
                                         for weight_format in formats]  # fmt: skip
        return self._gpu_formats[gpu.id]

    # -- candidates --------------------------------------------------------------------------
    def shape_problem(self, offer: PoolOffer, tp: int) -> Reason | None:
        """Why TP (and a pinned PP) cannot be laid out on this pool at all, before any memory arithmetic."""
        pinned_pp = self.sizer.pinned_pp
        if tp > offer.gpus_per_node:
            return _reason(
                ReasonCode.EXCEEDS_GPUS_PER_NODE,
                f"tensorParallel {tp} exceeds the {offer.gpus_per_node} GPUs of a {offer.name} node "
                "(TP never spans nodes)",
            )
        if tp not in self._tp_problems:
            self._tp_problems[tp] = self._tp_problem(tp)
        problem = self._tp_problems[tp]
        if problem is None and pinned_pp is not None and tp * pinned_pp > offer.total_gpus:
            return _reason(
                ReasonCode.EXCEEDS_POOL_NODES,
                f"TP×PP = {tp * pinned_pp} GPUs exceeds the {offer.total_gpus} GPUs of pool {offer.name}",
            )
        return problem

    def _tp_problem(self, tp: int) -> Reason | None:
        """The shape problems that do not depend on the pool, so asked once per TP."""
        arch, pinned_pp = self.arch, self.sizer.pinned_pp
        heads = heads_problem(arch, tp)
        if heads:
            return _reason(ReasonCode.HEADS_NOT_DIVISIBLE, heads)
        if pinned_pp is not None and pinned_pp > arch.num_layers:
            return _reason(
                ReasonCode.LAYERS_NOT_DIVISIBLE,
                f"pipelineParallel {pinned_pp} exceeds the model's {arch.num_layers} layers",
            )
        return None

    def evaluate(self, offer: PoolOffer, weight_format: Quantization, tp: int) -> Evaluation:
        """Sizing is shared by every pool of the same kind; only price and free capacity are per pool."""
        problem = self.shape_problem(offer, tp)
        if problem:
            pp = self.sizer.pinned_pp or 1
            first = layout(tp, pp, offer.gpus_per_node) or Layout(tp, pp, 1)
            return Evaluation(offer, weight_format, first, (problem,))
        gpus_per_node = offer.gpus_per_node
        shape, fit, reasons, capacity = self.sizer.sizing(
            offer.gpu, weight_format, tp, gpus_per_node, offer.nodes, offer.free_gpus
        )
        if not fit.fits:
            return Evaluation(offer, weight_format, shape, reasons, fit.breakdown)
        evaluation = self._served(offer, weight_format, shape, fit, reasons, capacity)
        if self.demand.rate is None or self.sizer.pinned_pp is not None or evaluation.serving is None:
            return evaluation
        return self._deeper(offer, weight_format, evaluation)

    def _served(
        self,
        offer: PoolOffer,
        weight_format: Quantization,
        shape: Layout,
        fit: MemoryFit,
        reasons: tuple[Reason, ...],
        capacity: bool,
    ) -> Evaluation:
        """A shape that fits memory, with its operating point, the replicas the demand takes and their cost."""
        tp, gpus_per_node = shape.tensor_parallel, offer.gpus_per_node
        nodes_per_replica = shape.nodes_per_replica
        gpus_per_replica = tp * shape.pipeline_parallel
        if nodes_per_replica > 1 and self.single_node_only:
            reasons += (
                _reason(
                    ReasonCode.RUNTIME_UNSUPPORTED,
                    f"this shape spans {nodes_per_replica} nodes; modelplane renders TensorRT-LLM on "
                    "one node only (multi-node trtllm-serve needs MPI launchers)",
                ),
            )
        serving, slo_reasons = self.serving(offer.gpu, weight_format, tp, shape.pipeline_parallel, fit.breakdown)
        reasons += slo_reasons
        replicas = serving.replicas
        if replicas != self.replicas:
            capacity = (
                gpus_per_replica * replicas <= offer.free_gpus
                and nodes_needed(shape, gpus_per_node, replicas) <= offer.nodes
            )
        if not capacity and not reasons:
            reasons = (self._capacity_reason(offer, shape, replicas),)
        price = offer.cost_per_gpu_hour
        hourly = cost_per_hour(price, gpus_per_replica * replicas)
        # Unrounded: rounding to cents first would skew cheap or fractional-cent prices (rounded once, at the end).
        replica_cost = None if price is None else price * gpus_per_replica
        return Evaluation(offer, weight_format, shape, reasons, fit.breakdown, serving, hourly, replica_cost)

    def _deeper(self, offer: PoolOffer, weight_format: Quantization, first: Evaluation) -> Evaluation:
        """Under a request rate, a deeper pipeline may need fewer replicas: its KV cache holds more sequences.

        Only while the busiest point within the SLO is bound by the sequence limit (the KV cache, below the
        runtime's max_num_seqs) can more stages raise it; more stages never lower a sequence's latency. Each
        deeper shape that fits is evaluated, and the best by the strategy's rank is kept.
        """
        best, current = first, first
        tp = first.layout.tensor_parallel
        limit = min(self.sizer.largest_pp, offer.gpus_per_node * offer.nodes // tp)
        rank = ranking(self.spec)
        for pp in range(first.layout.pipeline_parallel + 1, limit + 1):
            serving = current.serving
            if serving is None or not self._limit_bound(serving):
                break
            shape = layout(tp, pp, offer.gpus_per_node)
            if shape is None or nodes_needed(shape, offer.gpus_per_node, 1) > offer.nodes:
                continue
            fit = self.sizer.memory_fit(offer.gpu, weight_format, tp, pp)
            if not fit.fits:
                continue
            gpus, replicas = tp * pp, self.replicas
            fits_pool = (
                gpus * replicas <= offer.free_gpus and nodes_needed(shape, offer.gpus_per_node, replicas) <= offer.nodes
            )
            current = self._served(offer, weight_format, shape, fit, (), fits_pool)
            if current.feasible and (not best.feasible or rank(current) < rank(best)):
                best = current
        return best

    def _limit_bound(self, serving: Serving) -> bool:
        """Whether the shape's busiest point within the SLO runs as many sequences as its KV cache holds."""
        ceiling = self.ceiling(serving.key)
        limit = self._inputs[serving.key][2]
        return (
            ceiling is not None
            and ceiling.sequences >= limit
            and limit < max_num_seqs(self.spec.runtime.value, self._gpus[serving.key[0]])
        )

    def estimates(self, evaluation: Evaluation) -> Estimates | None:
        """The printed operating point and costs of a candidate that fits, or None."""
        serving = evaluation.serving
        if serving is None:
            return None
        point, best = serving.point, self.ceiling(serving.key)
        output_rate = point.requests_per_second * self.demand.workload.output_tokens
        return record(
            Estimates,
            decode_tokens_per_second=int(point.sequences / point.inter_token_latency),
            decode_tokens_per_second_per_sequence=int(1 / point.inter_token_latency),
            time_to_first_token_seconds=round(point.time_to_first_token, 4),
            inter_token_latency_seconds=round(point.inter_token_latency, 5),
            sequences_per_replica=round(point.sequences, 2),
            requests_per_second_per_replica=round(point.requests_per_second, 3),
            max_requests_per_second_per_replica=None if best is None else round(best.requests_per_second, 3),
            cost_per_hour=_money(evaluation.hourly_cost),
            cost_per_million_tokens=_money(cost_per_million_tokens(evaluation.replica_cost, output_rate)),
        )

    def ceiling(self, key: tuple[str, Quantization, int, int]) -> OperatingPoint | None:
        """The busiest point of a shape within the SLO and its sequence limit (max requests/s); None if none is."""
        if key not in self._ceilings:
            work, machine, limit = self._inputs[key]
            self._ceilings[key] = max_rate(work, machine, self.demand.workload, self.demand.slo, limit)
        return self._ceilings[key]

    def serving(
        self, gpu: GpuSpec, weight_format: Quantization, tp: int, pp: int, memory: MemoryBreakdown
    ) -> tuple[Serving, tuple[Reason, ...]]:
        """The operating point of a fitting shape and the replicas the rate needs; shared by pools of one GPU model."""
        key = (gpu.id, weight_format, tp, pp)
        found = self._servings.get(key)
        if found is None:
            found = self._servings[key] = self._serve(gpu, weight_format, tp, pp, memory)
        return found

    def _hardware(self, gpu: GpuSpec, weight_format: Quantization) -> Hardware:
        key = (gpu.id, weight_format)
        found = self._hardwares.get(key)
        if found is None:
            found = self._hardwares[key] = hardware(self.spec.runtime.value, weight_format, gpu)
        return found

    def _serve(
        self, gpu: GpuSpec, weight_format: Quantization, tp: int, pp: int, memory: MemoryBreakdown
    ) -> tuple[Serving, tuple[Reason, ...]]:
        key = (gpu.id, weight_format, tp, pp)
        work, machine = self.sizer.work(weight_format, tp, pp), self._hardware(gpu, weight_format)
        workload, rate, slo = self.demand
        limit = sequence_limit(self.spec.runtime.value, gpu, memory, workload)
        self._inputs[key] = (work, machine, limit)
        self._gpus[gpu.id] = gpu
        if rate is None:
            point = operating_point(work, machine, workload, self.spec.max_concurrency, limit)
            serving = Serving(point, self.replicas, key)
            if slo.met(point):
                return serving, ()
            where = f"at maxConcurrency {self.spec.max_concurrency}"
            return serving, (self._slo_reason(point, self.ceiling(key), where),)
        best = self.ceiling(key)
        if best is None:
            point = operating_point(work, machine, workload, 1)
            return Serving(point, self.replicas, key), (self._slo_reason(point, None, "at one sequence"),)
        replicas = replicas_for(rate, best.requests_per_second, self.replicas)
        settled = at_rate(work, machine, workload, rate / replicas, limit) if replicas else None
        return Serving(settled or best, replicas, key), ()

    def _slo_reason(self, point: OperatingPoint, best: OperatingPoint | None, where: str) -> Reason:
        """What the shape reaches, against the targets, and what would meet them."""
        slo = self.demand.slo
        missed = []
        if slo.inter_token_latency is not None and point.inter_token_latency > slo.inter_token_latency:
            missed.append(f"interTokenLatency {_ms(point.inter_token_latency)} > {_ms(slo.inter_token_latency)}")
        if slo.time_to_first_token is not None and point.time_to_first_token > slo.time_to_first_token:
            missed.append(f"timeToFirstToken {_ms(point.time_to_first_token)} > {_ms(slo.time_to_first_token)}")
        if best is not None:
            fix = (f"it meets the SLO up to {int(best.sequences)} sequences ({best.requests_per_second:.2f}"
                   " requests/s): lower maxConcurrency, or set workload.requestsPerSecond to add replicas")  # fmt: skip
        else:
            fix = "more tensorParallel, a faster GPU, shorter requests or a looser slo would meet it"
        return _reason(ReasonCode.SLO_UNREACHABLE, f"{where}: {', '.join(missed)}; {fix}")

    def _capacity_reason(self, offer: PoolOffer, shape: Layout, replicas: int) -> Reason:
        gpus_per_replica = shape.gpus_per_replica
        needed = gpus_per_replica * replicas
        if needed > offer.free_gpus:
            message = (
                f"{replicas} replica(s) × {gpus_per_replica} GPUs = {needed} GPUs, "
                f"pool {offer.name} has {offer.free_gpus} free"
            )
        else:
            message = (
                f"{replicas} replica(s) × {shape.nodes_per_replica} pod(s) of {shape.gpus_per_pod} GPUs need "
                f"{nodes_needed(shape, offer.gpus_per_node, replicas)} nodes of {offer.gpus_per_node} GPUs, "
                f"pool {offer.name} has {offer.nodes}"
            )
        return _reason(ReasonCode.INSUFFICIENT_CAPACITY, message)

    def evaluations(self, offers: Sequence[PoolOffer]) -> list[Evaluation]:
        pinned_tp = self.spec.parallelism.tensor_parallel if self.spec.parallelism else None
        placeholder = Layout(pinned_tp or 1, 1, 1)
        first_format = self.formats()[0]
        result = []
        for offer in offers:
            pool_reasons = self.pool_reasons(offer)
            if pool_reasons:
                result.append(Evaluation(offer, first_format, placeholder, tuple(pool_reasons)))
                continue
            tp_options = tensor_parallel_options(offer.gpus_per_node, pinned_tp)
            for weight_format, format_reasons in self.gpu_formats(offer.gpu):
                if format_reasons:
                    result.append(Evaluation(offer, weight_format, placeholder, format_reasons))
                    continue
                for tp in tp_options:
                    result.append(self.evaluate(offer, weight_format, tp))
        return result


PRECISION_RANK = {
    Quantization.BF16: 0,
    Quantization.FP16: 0,
    Quantization.FP8: 1,
    Quantization.INT8: 2,
    Quantization.MXFP4: 3,
    Quantization.NVFP4: 3,
    Quantization.AWQ: 3,
    Quantization.GPTQ: 3,
}


def ranking(spec: ModelDeploymentSpec) -> Callable[[Evaluation], tuple[object, ...]]:
    """Sort key of feasible candidates: lowest wins. Deterministic down to the pool name.

    Locality prefer-on-prem puts on-prem pools first (hybrid: burst to cloud only when on-prem
    cannot serve), before precision: an on-prem pool that fits only at fp8 beats a cloud pool at
    bf16. Then quantization auto prefers the highest precision that fits. The spec's choices are
    read once per plan rather than once per candidate.
    """
    by_precision = spec.quantization is Quantization.AUTO
    prefer_on_prem = spec.placement.locality is Locality.PREFER_ON_PREM
    cheapest = spec.placement.strategy is Strategy.CHEAPEST
    fewest_gpus = spec.placement.strategy is Strategy.FEWEST_GPUS
    on_prem, no_cost = Location.ON_PREM, Decimal(0)

    def key(evaluation: Evaluation) -> tuple[object, ...]:
        serving, shape, cost = evaluation.serving, evaluation.layout, evaluation.hourly_cost
        assert serving is not None
        unknown_cost = cost is None
        cost_value = no_cost if cost is None else cost
        precision = PRECISION_RANK[evaluation.weight_format] if by_precision else 0
        locality = int(evaluation.offer.location is not on_prem) if prefer_on_prem else 0
        speed = (serving.point.inter_token_latency, serving.point.time_to_first_token)
        gpus = shape.tensor_parallel * shape.pipeline_parallel * serving.replicas
        if cheapest:
            objective: tuple[object, ...] = (unknown_cost, cost_value, gpus, *speed)
        elif fewest_gpus:
            objective = (gpus, unknown_cost, cost_value, *speed)
        else:
            objective = (*speed, unknown_cost, cost_value, gpus)
        tie_break = (evaluation.offer.name, shape.tensor_parallel, shape.pipeline_parallel, evaluation.weight_format)
        return (locality, precision, *objective, *tie_break)

    return key


def rank_key(spec: ModelDeploymentSpec, evaluation: Evaluation) -> tuple[object, ...]:
    """The rank of one candidate; see `ranking`."""
    return ranking(spec)(evaluation)


def _plan(planner: _Planner, best: Evaluation) -> Plan:
    spec, shape = planner.spec, best.layout
    assert best.memory is not None
    estimates = planner.estimates(best)
    assert estimates is not None
    return Plan(
        pool=best.offer.name,
        gpu=best.offer.gpu.id,
        location=best.offer.location.value,
        tensor_parallel=shape.tensor_parallel,
        pipeline_parallel=shape.pipeline_parallel,
        gpus_per_replica=shape.gpus_per_replica,
        nodes_per_replica=shape.nodes_per_replica,
        gpus_per_pod=shape.gpus_per_pod,
        replicas=best.serving.replicas if best.serving else spec.replicas,
        quantization=best.weight_format,
        pre_quantized=planner.checkpoint is not None,
        kv_cache_dtype=spec.kv_cache_dtype,
        runtime=spec.runtime,
        max_model_len=spec.max_model_len,
        max_concurrency=spec.max_concurrency,
        gpu_memory_utilization=spec.gpu_memory_utilization,
        node_selector=best.offer.node_selector,
        tolerations=list(best.offer.tolerations),
        memory=best.memory,
        estimates=estimates,
        notes=plan_notes(spec.runtime.value, best.weight_format, best.offer.gpu),
    )


def plan_notes(runtime: str, weight_format: Quantization, gpu: GpuSpec) -> list[str]:
    """What people should know about how the runtime serves the chosen format on the chosen GPU.

    Today one case, from the hardware support data: a format served weight-only below the compute
    capability of its full path (vLLM's fp8 on Ampere runs W8A16 through FP8 Marlin).
    """
    note = weight_only_note(runtime, weight_format.value, gpu)
    return [note] if note else []


USER_EXCLUSIONS = {ReasonCode.LOCALITY_POLICY: 1, ReasonCode.POOL_NOT_SELECTED: 2}
"""Codes of what the user excluded on purpose, least informative last: a pool left out of placement.pools
was never asked for, while the locality may be what keeps out the very pool that was."""


def summarize_rejections(evaluations: Sequence[Evaluation]) -> list[Reason]:
    """One reason per code, counting the pools it applied to: the short answer to 'why not'.

    The first reason is the most informative one (the operator's Planned condition takes its code):
    codes of the user's own exclusions come last (LocalityPolicy, then PoolNotSelected), the others
    first, each group by the number of pools the user left open that it applied to (most first; why a pool
    the user excluded would not fit anyway explains little), then by all pools, then by code.
    """
    pools_by_code: dict[ReasonCode, set[str]] = {}
    open_pools_by_code: dict[ReasonCode, set[str]] = {}
    example: dict[ReasonCode, str] = {}
    for evaluation in evaluations:
        excluded = any(reason.code in USER_EXCLUSIONS for reason in evaluation.reasons)
        for reason in evaluation.reasons:
            pools_by_code.setdefault(reason.code, set()).add(evaluation.offer.name)
            if not excluded:
                open_pools_by_code.setdefault(reason.code, set()).add(evaluation.offer.name)
            example.setdefault(reason.code, reason.message)

    def rank(item: tuple[ReasonCode, set[str]]) -> tuple[int, int, int, ReasonCode]:
        code, pools = item
        return USER_EXCLUSIONS.get(code, 0), -len(open_pools_by_code.get(code, ())), -len(pools), code

    order = sorted(pools_by_code.items(), key=rank)
    return [
        _reason(
            code,
            f"{len(pools)} pool(s) ({', '.join(sorted(pools)[:5])}{', …' if len(pools) > 5 else ''}): "
            f"e.g. {example[code]}",
        )
        for code, pools in order
    ]


@dataclass(frozen=True)
class Outcome:
    """The planner's answer before suggestions are added; kept internal so suggestions can re-plan."""

    result: PlanResult
    evaluations: tuple[Evaluation, ...]


def resolve_model(name: str, namespace: str, spec: ModelDeploymentSpec) -> ResolvedModel:
    """The spec's model from the spec and the packaged catalog (callers with other sources resolve it first)."""
    return PACKAGED.resolve(spec.model.name, spec.model.architecture, f"{namespace}/{name}")


def plan_core(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    offers: Sequence[PoolOffer],
    model: ResolvedModel | None = None,
    *,
    candidates: bool = True,
) -> Outcome:
    """Plan one deployment without suggestions. Raises CatalogError for an unknown model or bad config.

    `model` is the spec's model as catalog.resolve found it; without it, only the spec and the packaged catalog
    are asked. `candidates=False` leaves out the printed record of every candidate (`PlanResult.candidates`),
    which only `modelplane plan` shows: a plan against 100 pools builds about 480 of them.
    """
    resolved = model if model is not None else resolve_model(name, namespace, spec)
    planner = _Planner(name, namespace, spec, resolved.architecture, resolved.entry)
    deployment_reasons = planner.deployment_reasons()
    evaluations = [] if deployment_reasons else planner.evaluations(offers)
    best = min((e for e in evaluations if e.feasible), key=ranking(spec), default=None)
    reasons = deployment_reasons or ([] if best is not None else summarize_rejections(evaluations))
    if not offers and not deployment_reasons:
        reasons = [_reason(ReasonCode.NO_POOLS, "no GPUNodePool is defined")]
    result = PlanResult(
        name=name,
        namespace=namespace,
        model=spec.model.name,
        feasible=best is not None,
        plan=_plan(planner, best) if best is not None else None,
        reasons=reasons,
        candidates=[evaluation.candidate(planner.estimates(evaluation)) for evaluation in evaluations]
        if candidates
        else [],
        rejected_pools=rejected_pools(evaluations),
        inter_token_latency_target_seconds=planner.demand.slo.inter_token_latency,
    )
    return Outcome(result, tuple(evaluations))


def rejected_pools(evaluations: Sequence[Evaluation]) -> dict[str, list[str]]:
    """The why-not list: every pool where no shape is feasible, with its candidates' reason codes, sorted."""
    feasible: set[str] = set()
    codes: dict[str, set[str]] = {}
    for evaluation in evaluations:
        pool = evaluation.offer.name
        if evaluation.reasons:
            codes.setdefault(pool, set()).update(reason.code.value for reason in evaluation.reasons)
        else:
            feasible.add(pool)
    return {pool: sorted(found) for pool, found in sorted(codes.items()) if pool not in feasible}


def best_per_pool(
    name: str, namespace: str, spec: ModelDeploymentSpec, offers: Sequence[PoolOffer], model: ResolvedModel
) -> list[Plan]:
    """Each pool's best shape for one replica of `spec`, whatever is free there, in the strategy's order.

    Where replicas burst to: how many of them a pool takes is the placement's business (planning/placement.py),
    so its free GPUs are not asked here and the shape a pool gets does not move as its capacity comes and goes.
    """
    planner = _Planner(name, namespace, spec, model.architecture, model.entry)
    if planner.deployment_reasons():
        return []
    whole = [replace(offer, free_gpus=offer.total_gpus) for offer in offers]
    rank = ranking(spec)
    best: dict[str, Evaluation] = {}
    for evaluation in planner.evaluations(whole):
        kept = best.get(evaluation.offer.name)
        if evaluation.feasible and (kept is None or rank(evaluation) < rank(kept)):
            best[evaluation.offer.name] = evaluation
    return [_plan(planner, evaluation) for evaluation in sorted(best.values(), key=rank)]
