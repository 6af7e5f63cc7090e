"""Human and machine renderings of plans: JSON/YAML for tools, a table with memory bars for people."""

import json
from collections.abc import Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelplane.api.plan import Estimates, MemoryBreakdown, PlanResult

GIB = 1024**3
BAR_WIDTH = 40
BAR_PARTS = (
    ("weights", "█", "blue"),
    ("overhead", "▒", "yellow"),
    ("KV cache", "▓", "green"),
    ("headroom", "░", "bright_black"),
)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks: a ConfigMap's embedded YAML stays readable and diffable in Git."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _string)


def to_block_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)


def kv_bytes_for_load(memory: MemoryBreakdown, max_model_len: int, concurrency: int) -> int:
    """KV memory per GPU that `concurrency` sequences of `max_model_len` take.

    The KV budget scaled by the share of its sequences the load uses, so whole blocks and a hybrid's recurrent
    states (which no per-token figure shows) count as vLLM counts them; per token × tokens for a plan without
    a concurrency figure. Never more than the budget leaves for it.
    """
    available = max(0, memory.budget_bytes_per_gpu - memory.weight_bytes_per_gpu - memory.overhead_bytes_per_gpu)
    if memory.max_concurrency:
        hundredths = round(memory.max_concurrency * 100)  # logged to 2 decimals; 4.33 * 100 is 432.99999...
        return min(available, -(-available * concurrency * 100 // hundredths))
    return min(available, memory.kv_cache_bytes_per_token * max_model_len * concurrency)


def memory_segments(memory: MemoryBreakdown, max_model_len: int, concurrency: int) -> list[tuple[str, int]]:
    """Bytes per GPU: weights, overhead, KV cache the load needs, and the rest of the budget."""
    kv_needed = kv_bytes_for_load(memory, max_model_len, concurrency)
    used = memory.weight_bytes_per_gpu + memory.overhead_bytes_per_gpu + kv_needed
    return [
        ("weights", memory.weight_bytes_per_gpu),
        ("overhead", memory.overhead_bytes_per_gpu),
        ("KV cache", kv_needed),
        ("headroom", max(0, memory.gpu_memory_bytes - used)),
    ]


def operating_point(estimates: Estimates) -> str:
    """One line a person can check: the load a replica serves, its latencies and what it could serve at most."""
    if estimates.inter_token_latency_seconds is None or estimates.time_to_first_token_seconds is None:
        return f"{estimates.decode_tokens_per_second} tok/s per replica"
    most = estimates.max_requests_per_second_per_replica
    ceiling = "the SLO is out of reach" if most is None else f"at most {most:g} req/s within the SLO and KV cache"
    return (
        f"operating point: {estimates.sequences_per_replica:g} sequences, "
        f"{estimates.requests_per_second_per_replica:g} req/s per replica; "
        f"TTFT {estimates.time_to_first_token_seconds * 1000:.0f} ms, "
        f"ITL {estimates.inter_token_latency_seconds * 1000:.1f} ms "
        f"({estimates.decode_tokens_per_second_per_sequence} tok/s per sequence); {ceiling}"
    )


def memory_bar(memory: MemoryBreakdown, max_model_len: int, concurrency: int) -> Text:
    segments = memory_segments(memory, max_model_len, concurrency)
    total = sum(size for _, size in segments) or 1
    bar = Text()
    for (_, char, style), (_, size) in zip(BAR_PARTS, segments, strict=True):
        bar.append(char * round(BAR_WIDTH * size / total), style=style)
    legend = "  ".join(
        f"{char} {label} {size / GIB:.1f}G" for (label, char, _), (_, size) in zip(BAR_PARTS, segments, strict=True)
    )
    bar.append(f"  of {memory.gpu_memory_bytes / GIB:.0f} GiB\n{legend}")
    return bar


def print_table(results: Sequence[PlanResult], console: Console) -> None:
    summary = Table(title="modelplane plan", show_lines=False)
    for column in (
        "DEPLOYMENT",
        "MODEL",
        "POOL",
        "GPU",
        "QUANT",
        "TP",
        "PP",
        "GPUS",
        "TOK/S",
        "$/H",
        "$/MTOK",
    ):
        summary.add_column(column)
    for result in results:
        plan = result.plan
        if plan is None:
            summary.add_row(
                f"{result.namespace}/{result.name}", result.model, Text("infeasible", style="red"), *["-"] * 8
            )
            continue
        summary.add_row(
            f"{result.namespace}/{result.name}",
            result.model,
            plan.pool,
            plan.gpu,
            plan.quantization,
            str(plan.tensor_parallel),
            str(plan.pipeline_parallel),
            f"{plan.gpus_per_replica}×{plan.replicas}",
            str(plan.estimates.decode_tokens_per_second),
            plan.estimates.cost_per_hour or "-",
            plan.estimates.cost_per_million_tokens or "-",
        )
    console.print(summary)
    for result in results:
        console.print(Text(f"\n{result.namespace}/{result.name}", style="bold"))
        if result.plan is not None:
            plan = result.plan
            console.print(
                f"  memory per GPU ({plan.gpu}, KV for {plan.max_concurrency} × {plan.max_model_len} tokens):"
            )
            console.print(Text("  ") + memory_bar(plan.memory, plan.max_model_len, plan.max_concurrency))
            console.print(f"  {operating_point(plan.estimates)}", highlight=False)
            for note in plan.notes:
                console.print(f"  [yellow]![/yellow] {note}", highlight=False)
        for reason in result.reasons:
            console.print(f"  [red]✗[/red] {reason.code.value}: {reason.message}", highlight=False)
        for suggestion in result.suggestions:
            console.print(f"  [cyan]→[/cyan] {suggestion}", highlight=False)
        lines = [f"{pool}: {', '.join(codes)}" for pool, codes in result.rejected_pools.items()]
        if lines:
            console.print("  why not: " + "; ".join(lines), highlight=False)
