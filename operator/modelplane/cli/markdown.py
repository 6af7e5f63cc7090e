"""Plan reports for pull-request comments in GitOps repositories."""

from collections.abc import Sequence

from modelplane.api.plan import PlanResult
from modelplane.cli.output import kv_bytes_for_load, operating_point

GIB = 1024**3


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def plan_markdown(results: Sequence[PlanResult]) -> str:
    """A summary table, then per deployment its memory per GPU, cost and why other pools were rejected."""
    lines = ["## modelplane plan", "",
             _row("deployment", "model", "pool", "GPU", "quant", "TP×PP", "GPUs", "tok/s", "$/h", "$/Mtok"),
             _row(*["---"] * 10)]  # fmt: skip
    for result in results:
        plan = result.plan
        name = f"`{result.namespace}/{result.name}`"
        if plan is None:
            lines.append(_row(name, result.model, "**infeasible**", *["-"] * 7))
            continue
        lines.append(_row(
            name, result.model, plan.pool, plan.gpu, plan.quantization,
            f"{plan.tensor_parallel}×{plan.pipeline_parallel}", f"{plan.gpus_per_replica}×{plan.replicas}",
            plan.estimates.decode_tokens_per_second, plan.estimates.cost_per_hour or "-",
            plan.estimates.cost_per_million_tokens or "-",
        ))  # fmt: skip
    for result in results:
        lines += ["", f"### `{result.namespace}/{result.name}`", ""]
        if result.plan is not None:
            memory = result.plan.memory
            kv = kv_bytes_for_load(memory, result.plan.max_model_len, result.plan.max_concurrency)
            lines.append(
                f"Per GPU ({result.plan.gpu}): weights {memory.weight_bytes_per_gpu / GIB:.1f} GiB, "
                f"overhead {memory.overhead_bytes_per_gpu / GIB:.1f} GiB, KV cache for the load {kv / GIB:.1f} GiB "
                f"of a {memory.budget_bytes_per_gpu / GIB:.1f} GiB budget ({memory.kv_cache_tokens} tokens fit)."
            )
            lines.append(f"The {operating_point(result.plan.estimates)}.")
        for reason in result.reasons:
            lines.append(f"- ✗ **{reason.code.value}**: {reason.message}")
        for suggestion in result.suggestions:
            lines.append(f"- → {suggestion}")
        rejected = result.rejected_pools
        if rejected:
            lines += ["", "<details><summary>Rejected pools</summary>", ""]
            lines += [f"- `{pool}`: {', '.join(codes)}" for pool, codes in rejected.items()]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
