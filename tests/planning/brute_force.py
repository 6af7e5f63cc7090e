"""The planner's answer recomputed the slow way, for property tests: no pruning, no search, no caching of choices.

Memory per shape, the operating point and replica count of a shape and the rank key are the planner's own
(`Sizer.memory_fit`, `_Planner.serving`, `rank_key`): what this checks is the search (which shapes are tried, which
PP is kept, which capacity and SLO rules apply), not the arithmetic, which has table-driven tests of its own.
"""

from typing import Any

from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.catalog.models import find_model
from modelplane.planning.estimates import cost_per_hour
from modelplane.planning.planner import Evaluation, _Planner, rank_key
from modelplane.planning.service import offers_for
from modelplane.planning.shapes import MAX_PIPELINE_PARALLEL, heads_problem, layout
from tests.support import deployment


def brute_force_best(spec: dict[str, Any], pools: list[GPUNodePool]) -> tuple[object, ...] | None:
    """Every pool × format × TP × PP the spec allows; the lowest rank key among the feasible, or None."""
    md = deployment(**spec)
    entry = find_model(md.spec.model.name)
    assert entry is not None
    arch = entry.architecture
    planner = _Planner("x", "default", md.spec, arch, entry)
    best = None
    pinned = md.spec.parallelism.tensor_parallel if md.spec.parallelism else None
    for offer in offers_for(pools):
        if planner.pool_reasons(offer):
            continue
        for wanted in planner.formats():
            weight_format = planner.format_for_gpu(wanted, offer.gpu)
            if planner.format_reasons(weight_format, offer.gpu):
                continue
            for tp in [pinned] if pinned else [2**power for power in range(5)]:
                if tp > offer.gpus_per_node or heads_problem(arch, tp):
                    continue
                for pp in range(1, min(arch.num_layers, MAX_PIPELINE_PARALLEL, offer.total_gpus // tp) + 1):
                    shape = layout(tp, pp, offer.gpus_per_node)
                    fit = planner.sizer.memory_fit(offer.gpu, weight_format, tp, pp)
                    if shape is None or not fit.fits:
                        continue
                    if shape.nodes_per_replica > 1 and md.spec.runtime.value == "tensorrt-llm":
                        continue
                    serving, slo_reasons = planner.serving(offer.gpu, weight_format, tp, pp, fit.breakdown)
                    if slo_reasons:
                        continue
                    replicas = serving.replicas
                    pods_per_node = offer.gpus_per_node // shape.gpus_per_pod
                    if (shape.gpus_per_replica * replicas > offer.free_gpus
                            or -(-shape.nodes_per_replica * replicas // pods_per_node) > offer.nodes):  # fmt: skip
                        continue
                    evaluation = Evaluation(
                        offer, weight_format, shape, (), fit.breakdown, serving,
                        cost_per_hour(offer.cost_per_gpu_hour, shape.gpus_per_replica * replicas),
                    )  # fmt: skip
                    key = rank_key(md.spec, evaluation)
                    best = key if best is None or key < best else best
    return best
