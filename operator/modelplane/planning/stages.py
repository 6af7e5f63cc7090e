"""How vLLM splits decoder layers across pipeline stages.

Mirrors `get_pp_indices` in vllm/distributed/utils.py: every stage gets layers // PP layers and
the remainder goes one each to the stages just before the last (the last stage also holds the
LM head). The first stage holds the embedding; the last holds the final norm and LM head; with
tied embeddings and PP > 1 both ends hold a copy.
"""

from modelplane.catalog.architecture import Architecture
from modelplane.planning.parameters import ParameterBreakdown
from modelplane.planning.weights import SIXTEEN_BIT_BYTES, WeightFormat, layer_weight_bytes


def stage_layers(num_layers: int, pipeline_parallel: int) -> list[range]:
    """Contiguous layer ranges per stage, as vLLM assigns them."""
    sizes = [num_layers // pipeline_parallel] * pipeline_parallel
    for offset in range(2, num_layers % pipeline_parallel + 2):
        sizes[-offset] += 1
    ranges, start = [], 0
    for size in sizes:
        ranges.append(range(start, start + size))
        start += size
    return ranges


def stage_weight_bytes(
    arch: Architecture,
    breakdown: ParameterBreakdown,
    weight_format: WeightFormat,
    layers: range,
    stage: int,
    pipeline_parallel: int,
    *,
    active: bool = False,
) -> int:
    """Weight bytes of one whole stage (before dividing across its TP ranks).

    With `active`, only what one decode step reads: routed experts only, and no embedding table
    (a step gathers one row of it).
    """
    params = [breakdown.layers[index] for index in layers]
    if active:
        params = [layer.active_view() for layer in params]
    total = sum(layer_weight_bytes(layer, weight_format, arch) for layer in params)
    if stage == 0 and not active:
        total += SIXTEEN_BIT_BYTES * breakdown.embedding
    if stage == pipeline_parallel - 1:
        head = breakdown.lm_head or (breakdown.embedding if pipeline_parallel > 1 else 0)
        total += SIXTEEN_BIT_BYTES * (head + breakdown.final_norm)
    return total
