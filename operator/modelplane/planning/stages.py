"""How vLLM splits decoder layers across pipeline stages.

Mirrors `get_pp_indices` in vllm/distributed/utils.py: every stage gets layers // PP layers and
the remainder goes one each to the stages just before the last (the last stage also holds the
LM head). The first stage holds the embedding; the last holds the final norm and LM head; with
tied embeddings and PP > 1 both ends hold a copy.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from modelplane.api.serving import Quantization
from modelplane.catalog.architecture import Architecture
from modelplane.planning.parameters import ParameterBreakdown
from modelplane.planning.weights import SIXTEEN_BIT_BYTES, layer_weight_bytes


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


@dataclass(frozen=True)
class WeightTable:
    """Prefix sums of per-layer bytes in one format, so any stage's weights cost O(1) to look up.

    The planner asks for thousands of (TP, PP, stage) combinations per deployment.
    """

    prefix: tuple[int, ...]
    active_prefix: tuple[int, ...]
    embedding_bytes: int
    head_bytes: int
    tied: bool
    vision_bytes: int = 0
    """A multimodal model's vision tower, on the first stage as vLLM places it."""

    @classmethod
    def build(
        cls,
        arch: Architecture,
        breakdown: ParameterBreakdown,
        weight_format: Quantization,
        tensor_parallel: int = 1,
        stored: ParameterBreakdown | None = None,
    ) -> "WeightTable":
        """Per-layer bytes of `breakdown` (the checkpoint's, or one rank's from count_parameters(arch, TP)).

        With `stored` (the checkpoint's own breakdown, given when `weight_format` is the format it is stored in)
        and the checkpoint's safetensors headers in `arch`, no layer holds less than the headers say: a layer the
        byte model undercounts (a ModelOpt checkpoint's exclude_modules left in 16 bits, a scheme's extra scales)
        is scaled up to its stored bytes, split over the ranks as the byte model splits that layer.
        """
        # A dense model's layers are all alike, an MoE's of two kinds, and count_parameters repeats one object
        # per kind: bytes once per object, found by identity (hashing a layer's breakdown costs more than
        # sizing it twice would, should two equal layers ever be distinct objects).
        sized: dict[int, tuple[int, int]] = {}
        per_layer = []
        for layer in breakdown.layers:
            pair = sized.get(id(layer))
            if pair is None:
                pair = sized[id(layer)] = (layer_weight_bytes(layer, weight_format, arch),
                                           layer_weight_bytes(layer.active_view(), weight_format, arch))  # fmt: skip
            per_layer.append(pair)
        embedding = SIXTEEN_BIT_BYTES * breakdown.embedding
        head = SIXTEEN_BIT_BYTES * (breakdown.lm_head + breakdown.final_norm)
        if stored is not None and arch.checkpoint_layer_bytes:
            modelled = [layer_weight_bytes(layer, weight_format, arch) for layer in stored.layers]
            per_layer = [
                (_at_least(full, on_disk, model), _at_least(active, on_disk, model))
                for (full, active), on_disk, model in zip(per_layer, arch.checkpoint_layer_bytes, modelled, strict=True)
            ]
            outside = SIXTEEN_BIT_BYTES * (stored.embedding + stored.lm_head + stored.final_norm)
            embedding = _at_least(embedding, arch.checkpoint_outside_bytes, outside)
            head = _at_least(head, arch.checkpoint_outside_bytes, outside)
        return cls(
            prefix=tuple(accumulate((full for full, _ in per_layer), initial=0)),
            active_prefix=tuple(accumulate((active for _, active in per_layer), initial=0)),
            embedding_bytes=embedding,
            head_bytes=head,
            tied=breakdown.lm_head == 0,
            vision_bytes=-(-arch.vision_weight_bytes // tensor_parallel),
        )

    def stage(self, layers: range, stage: int, pipeline_parallel: int, *, active: bool = False) -> int:
        """Weight bytes of one whole stage (before dividing across its TP ranks).

        With `active`, only what one decode step reads: routed experts only, and no embedding table
        (a step gathers one row of it).
        """
        prefix = self.active_prefix if active else self.prefix
        return prefix[layers.stop] - prefix[layers.start] + self._ends(stage, pipeline_parallel, active)

    def stages(self, stages: Sequence[range], *, active: bool = False) -> list[int]:
        """`stage` for every stage of a split at once: the planner sizes hundreds of splits per plan."""
        prefix = self.active_prefix if active else self.prefix
        totals = [prefix[layers.stop] - prefix[layers.start] for layers in stages]
        last = len(stages) - 1
        totals[0] += self._ends(0, last + 1, active)
        if last:
            totals[last] += self._ends(last, last + 1, active)
        return totals

    def _ends(self, stage: int, pipeline_parallel: int, active: bool) -> int:
        """What the first and last stages hold besides layers: the embedding, the final norm and LM head."""
        total = 0
        if stage == 0 and not active:
            total += self.embedding_bytes + self.vision_bytes
        if stage == pipeline_parallel - 1:
            total += self.head_bytes
            if self.tied and pipeline_parallel > 1:
                total += self.embedding_bytes
        return total


def stage_weight_bytes(
    arch: Architecture,
    breakdown: ParameterBreakdown,
    weight_format: Quantization,
    layers: range,
    stage: int,
    pipeline_parallel: int,
    *,
    active: bool = False,
    stored: ParameterBreakdown | None = None,
) -> int:
    """Weight bytes of one stage; see WeightTable.stage (and WeightTable.build for `stored`)."""
    table = WeightTable.build(arch, breakdown, weight_format, stored=stored)
    return table.stage(layers, stage, pipeline_parallel, active=active)


def _at_least(rank_bytes: int, stored_bytes: int, modelled_bytes: int) -> int:
    """A rank's bytes, scaled up by how much more the checkpoint stores than the byte model counts (never down)."""
    if stored_bytes <= modelled_bytes or not modelled_bytes:
        return rank_bytes
    return -(-rank_bytes * stored_bytes // modelled_bytes)
