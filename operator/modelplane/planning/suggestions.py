"""What would make an infeasible deployment fit: re-plan pure variants of the spec and report winners."""

from collections.abc import Callable, Sequence
from functools import partial

from modelplane.api.model_deployment import Locality, ModelDeploymentSpec, Placement
from modelplane.api.plan import PlanResult, ReasonCode
from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.resolve import ResolvedModel
from modelplane.planning.inventory import PoolOffer, offer_from_pool, what_if_pools
from modelplane.planning.planner import Evaluation, Outcome, plan_core


def _describe(result: PlanResult) -> str:
    plan = result.plan
    assert plan is not None
    return f"pool {plan.pool} ({plan.gpu}, TP{plan.tensor_parallel}×PP{plan.pipeline_parallel})"


def _longest_fitting_len(spec: ModelDeploymentSpec, evaluations: Sequence[Evaluation]) -> str | None:
    """The longest maxModelLen the best memory-bound candidate holds at the requested concurrency."""
    best: tuple[int, Evaluation] | None = None
    for evaluation in evaluations:
        codes = {reason.code for reason in evaluation.reasons}
        if codes != {ReasonCode.INSUFFICIENT_MEMORY} or evaluation.memory is None:
            continue
        tokens = evaluation.memory.kv_cache_tokens // spec.max_concurrency
        if tokens > 0 and (best is None or tokens > best[0]):
            best = (tokens, evaluation)
    if best is None:
        return None
    tokens, evaluation = best
    shape = evaluation.layout
    return (
        f"maxModelLen {tokens} or less would fit on pool {evaluation.offer.name} "
        f"(TP{shape.tensor_parallel}×PP{shape.pipeline_parallel}, {evaluation.weight_format.value})"
    )


def _looser_slo(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    offers: Sequence[PoolOffer],
    outcome: Outcome,
    model: ResolvedModel,
) -> str | None:
    """When latency targets are what rules every shape out: the targets the best plan without them reaches."""
    codes = {reason.code for evaluation in outcome.evaluations for reason in evaluation.reasons}
    if spec.slo is None or ReasonCode.SLO_UNREACHABLE not in codes:
        return None
    free = spec.model_copy(update={"slo": None})
    result = plan_core(name, namespace, free, offers, model, candidates=False).result
    plan = result.plan
    if plan is None:
        return None
    ttft = plan.estimates.time_to_first_token_seconds or 0.0
    itl = plan.estimates.inter_token_latency_seconds or 0.0
    return (
        f"an slo of interTokenLatency {itl * 1000:.0f}ms and timeToFirstToken {ttft * 1000:.0f}ms or looser would fit"
        f" on {_describe(result)}, {plan.replicas} replica(s)"
    )


def suggest(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    offers: Sequence[PoolOffer],
    outcome: Outcome,
    model: ResolvedModel,
) -> list[str]:
    """Concrete changes that make the deployment feasible, most local first."""
    suggestions = []
    limit = model.architecture.max_position_embeddings
    if limit is not None and spec.max_model_len > limit:
        shorter = spec.model_copy(update={"max_model_len": limit})
        result = plan_core(name, namespace, shorter, offers, model, candidates=False).result
        fits = f", which fits on {_describe(result)}" if result.feasible else ""
        suggestions.append(f"maxModelLen {limit} (the model's max_position_embeddings) or less{fits}")
    longest = _longest_fitting_len(spec, outcome.evaluations)
    if longest:
        suggestions.append(longest)
    looser = _looser_slo(name, namespace, spec, offers, outcome, model)
    if looser:
        suggestions.append(looser)
    variants: list[tuple[str, Callable[[], ModelDeploymentSpec], Sequence[PoolOffer]]] = []
    for quantization in (Quantization.AUTO, Quantization.FP8):
        if spec.quantization is not quantization:
            variants.append((f"quantization {quantization.value}",
                             partial(spec.model_copy, update={"quantization": quantization}), offers))  # fmt: skip
    if spec.parallelism is not None:
        variants.append(("letting modelplane choose TP and PP",
                         partial(spec.model_copy, update={"parallelism": None}), offers))  # fmt: skip
    if spec.kv_cache_dtype is KvCacheDtype.AUTO:
        variants.append(
            ("kvCacheDtype fp8", lambda: spec.model_copy(update={"kv_cache_dtype": KvCacheDtype.FP8}), offers)
        )
    if spec.replicas > 1:
        variants.append(("replicas 1", lambda: spec.model_copy(update={"replicas": 1}), offers))
    if spec.placement.pools is not None or spec.placement.locality is not Locality.ANY:
        variants.append(
            (
                "placement without pool or locality restrictions",
                lambda: spec.model_copy(update={"placement": Placement(strategy=spec.placement.strategy)}),
                offers,
            )
        )
    for label, variant, variant_offers in variants:
        result = plan_core(name, namespace, variant(), variant_offers, model, candidates=False).result
        if result.feasible:
            suggestions.append(f"{label} would fit on {_describe(result)}")
    what_if = [offer_from_pool(pool) for pool in what_if_pools()]
    relaxed = spec.model_copy(update={"placement": Placement(strategy=spec.placement.strategy), "replicas": 1})
    result = plan_core(name, namespace, relaxed, what_if, model, candidates=False).result
    if result.feasible and result.plan is not None:
        plan = result.plan
        suggestions.append(
            f"a pool of {plan.gpu} with {plan.gpus_per_replica} GPU(s) per replica would fit "
            f"(TP{plan.tensor_parallel}×PP{plan.pipeline_parallel}, {plan.quantization})"
        )
    return suggestions
