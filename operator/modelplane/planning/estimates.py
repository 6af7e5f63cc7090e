"""What a replica's GPUs achieve (planning.performance.Hardware) and what its tokens cost.

The rates are the datasheet's (gpus.yaml) times the achieved fractions of catalog/data/performance.yaml for
the runtime and GPU architecture. A format computes at its own dense TFLOPS only where the runtime runs it
with activations in that format too: fp8 and int8 where the hardware support data has no weight-only note,
nvfp4 at fp8's rate (gpus.yaml lists no FP4 figure: conservative); 4-bit integer and mxfp4 weights are
dequantized to 16 bits and multiply at bf16's rate.
"""

from decimal import ROUND_HALF_UP, Decimal

from modelplane.api.serving import Quantization
from modelplane.catalog.gpus import GpuSpec
from modelplane.catalog.performance import PerformanceConstants, performance_constants
from modelplane.catalog.support import weight_only_note
from modelplane.planning.overhead import max_num_batched_tokens
from modelplane.planning.performance import Hardware

MONEY = Decimal("0.01")
MONEY_PER_MILLION = Decimal("0.0001")
SECONDS_PER_HOUR = 3600
TERA = 10**12
GIGA = 10**9
GIB = 1024**3


def compute_tflops(runtime: str, weight_format: Quantization, gpu: GpuSpec) -> int:
    """Dense TFLOPS of the precision the format's matrix multiplies run in on this GPU."""
    full_path = weight_only_note(runtime, weight_format.value, gpu) is None
    if weight_format in (Quantization.FP8, Quantization.NVFP4) and full_path and gpu.fp8_dense_tflops:
        return gpu.fp8_dense_tflops
    if weight_format is Quantization.INT8 and full_path and gpu.int8_dense_tops:
        return gpu.int8_dense_tops
    return gpu.bf16_dense_tflops


def hardware(
    runtime: str, weight_format: Quantization, gpu: GpuSpec, constants: PerformanceConstants | None = None
) -> Hardware:
    """The achieved bandwidth, FLOP rate and link of one GPU, and the runtime's fixed costs.

    `constants`: performance.yaml's unless given (the calibration fit tries others).
    """
    constants = constants or performance_constants()
    tuned = constants.runtimes[runtime]
    link = constants.all_reduce[gpu.interconnect.value]
    return Hardware(
        bandwidth=gpu.memory_bandwidth_bytes_per_second * tuned.bandwidth(gpu.architecture),
        flops=compute_tflops(runtime, weight_format, gpu) * TERA * tuned.compute(gpu.architecture),
        link_bandwidth=gpu.interconnect_g_bps * GIGA * link.bandwidth_fraction,
        link_latency=link.latency_seconds,
        step_overhead=tuned.step_overhead_seconds,
        sequence_overhead=tuned.sequence_overhead_seconds,
        attention_latency=tuned.attention(gpu.architecture),
        request_overhead=tuned.request_overhead_seconds,
        batch_budget=max_num_batched_tokens(runtime, gpu),
    )


def max_num_seqs(runtime: str, gpu: GpuSpec) -> int:
    """The most sequences the runtime schedules at once by default on this GPU."""
    name = gpu.display_name.lower()
    for rule in performance_constants().max_num_seqs[runtime]:
        floor = rule.device_memory_at_least_gi_b * GIB
        if gpu.memory_bytes >= floor and not any(excluded in name for excluded in rule.except_names):
            return rule.value
    raise AssertionError(f"performance.yaml: no maxNumSeqs rule of {runtime} matches {gpu.id}")


def cost_per_hour(cost_per_gpu_hour: Decimal | None, gpus: int) -> Decimal | None:
    if cost_per_gpu_hour is None:
        return None
    return (cost_per_gpu_hour * gpus).quantize(MONEY, ROUND_HALF_UP)


def cost_per_million_tokens(hourly: Decimal | None, tokens_per_second: float) -> Decimal | None:
    """Dollars per million output tokens at `tokens_per_second` output tokens of the replica."""
    if hourly is None or tokens_per_second <= 0:
        return None
    per_token = hourly / (Decimal(repr(tokens_per_second)) * SECONDS_PER_HOUR)
    return (per_token * 1_000_000).quantize(MONEY_PER_MILLION, ROUND_HALF_UP)
