"""Decode throughput and cost estimates: a memory-bandwidth roofline you can check by hand.

Decoding is bandwidth-bound: each step reads every active weight once and each sequence's KV
cache once. One step of a replica takes, summed over its pipeline stages (a token passes through
them in turn),

    (active weight bytes of the stage / TP + sequences × KV bytes of a sequence on one GPU)
    / (memory bandwidth × efficiency)

with the KV cache read at the average context length (maxModelLen / 2). Efficiency and the
PCIe tensor-parallel penalty are sourced constants in catalog/data/performance.yaml.
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from modelplane.catalog.gpus import GpuSpec, Interconnect
from modelplane.catalog.performance import performance_constants

MONEY = Decimal("0.01")
MONEY_PER_MILLION = Decimal("0.0001")
SECONDS_PER_HOUR = 3600


class StageTraffic(NamedTuple):
    """Bytes one GPU of a stage reads per decode step: weights once, KV per sequence."""

    weight_bytes_per_gpu: int
    kv_bytes_per_sequence_per_gpu: int


class Throughput(NamedTuple):
    per_sequence: int
    aggregate: int


class Bandwidth(NamedTuple):
    """Bytes/s a decode step reads at, as the exact fraction numerator / denominator: the sourced efficiencies
    are whole percents, so integer arithmetic gives exact token rates (floored) with no rounding on the way."""

    numerator: int
    denominator: int


def decode_bandwidth(gpu: GpuSpec, tensor_parallel: int) -> Bandwidth:
    """The GPU's memory bandwidth at the roofline's efficiency (and the PCIe penalty for TP over PCIe)."""
    constants = performance_constants()
    numerator = gpu.memory_bandwidth_bytes_per_second * constants.memory_bandwidth_efficiency_percent
    denominator = 100
    if tensor_parallel > 1 and gpu.interconnect is Interconnect.PCIE:
        numerator *= constants.pcie_tensor_parallel_efficiency_percent
        denominator *= 100
    return Bandwidth(numerator, denominator)


def decode_throughput(
    gpu: GpuSpec, tensor_parallel: int, stages: Sequence[StageTraffic], concurrency: int
) -> Throughput:
    """Tokens/s for one sequence alone and for `concurrency` sequences batched together."""
    return throughput_at(decode_bandwidth(gpu, tensor_parallel), stages, concurrency)


def throughput_at(bandwidth: Bandwidth, stages: Sequence[StageTraffic], concurrency: int) -> Throughput:
    """`decode_throughput` with the bandwidth given: the planner asks for it once per GPU model and TP > 1.

    A step over `n` sequences reads weights + n × KV bytes, so n sequences decode at
    n × bandwidth / (weights + n × KV) tokens/s, floored to whole tokens.
    """
    weight_bytes = kv_bytes_per_sequence = 0
    for stage in stages:
        weight_bytes += stage.weight_bytes_per_gpu
        kv_bytes_per_sequence += stage.kv_bytes_per_sequence_per_gpu
    numerator, denominator = bandwidth
    return Throughput(
        numerator // (denominator * (weight_bytes + kv_bytes_per_sequence)),
        concurrency * numerator // (denominator * (weight_bytes + concurrency * kv_bytes_per_sequence)),
    )


def cost_per_hour(cost_per_gpu_hour: Decimal | None, gpus: int) -> Decimal | None:
    if cost_per_gpu_hour is None:
        return None
    return (cost_per_gpu_hour * gpus).quantize(MONEY, ROUND_HALF_UP)


def cost_per_million_tokens(hourly: Decimal | None, tokens_per_second: int) -> Decimal | None:
    """Dollars per million output tokens with every replica busy at its aggregate decode rate."""
    if hourly is None or tokens_per_second <= 0:
        return None
    per_token = hourly / (tokens_per_second * SECONDS_PER_HOUR)
    return (per_token * 1_000_000).quantize(MONEY_PER_MILLION, ROUND_HALF_UP)
