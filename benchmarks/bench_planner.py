"""Planner micro-benchmarks: one ModelDeployment against 100 pools, and every catalog model × quantization.

Run: .venv/bin/python -m benchmarks.bench_planner   (results go to BENCHMARKS.md by hand, with this command)
"""

import functools
import platform
import statistics
import time

from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.catalog.gpus import gpu_catalog
from modelplane.catalog.models import model_catalog
from modelplane.planning.service import collector_paused, offers_for, plan_deployment
from tests.support import deployment, pool

REPEATS = 200


def hundred_pools() -> list[GPUNodePool]:
    """100 pools cycling through the GPU catalog with varied sizes, prices and locations."""
    gpus = sorted(gpu_catalog())
    return [
        pool(f"pool-{index:03d}", gpus[index % len(gpus)], gpus_per_node=[1, 2, 4, 8][index % 4], nodes=1 + index % 4,
             location="on-prem" if index % 3 == 0 else "cloud", cost=f"{1 + index % 7}.{index % 10}0")
        for index in range(100)
    ]  # fmt: skip


def time_call(function: object, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    offers = offers_for(hundred_pools())
    md = deployment(model={"name": "meta-llama/Llama-3.1-70B-Instruct"}, maxModelLen=32768, maxConcurrency=8)
    served = deployment(model={"name": "meta-llama/Llama-3.1-70B-Instruct"}, maxModelLen=32768, maxConcurrency=8,
                        workload={"inputTokens": 2000, "outputTokens": 300, "requestsPerSecond": "20"},
                        slo={"interTokenLatency": "50ms", "timeToFirstToken": "2s"})  # fmt: skip
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    # `modelplane plan` prints every candidate; the operator and `render` plan without those records.
    for label, spec, candidates in (("with candidates (plan)", md, True), ("without (operator, render)", md, False),
                                    ("workload 20 req/s + SLO, without", served, False)):  # fmt: skip
        samples = time_call(functools.partial(plan_deployment, spec, offers, candidates=candidates), REPEATS)
        print(f"1 ModelDeployment × 100 pools, {label}: median {statistics.median(samples) * 1e3:.2f} ms, "
              f"min {min(samples) * 1e3:.2f} ms, p95 {sorted(samples)[int(0.95 * len(samples))] * 1e3:.2f} ms "
              f"over {REPEATS} runs")  # fmt: skip
    what_if = offers_for([])
    cases = [(entry.name, quantization) for entry in model_catalog().values()
             for quantization in ("auto", "bf16", "fp8")]  # fmt: skip
    start = time.perf_counter()
    feasible = 0
    for name, quantization in cases:
        quant = "auto" if model_catalog()[name].pre_quantized else quantization
        result = plan_deployment(deployment(model={"name": name}, quantization=quant, maxModelLen=8192), what_if)
        feasible += result.feasible
    elapsed = time.perf_counter() - start
    print(f"{len(cases)} catalog model × quantization plans against the what-if inventory "
          f"({len(what_if)} pools): {elapsed * 1e3:.0f} ms total, {elapsed / len(cases) * 1e3:.2f} ms each, "
          f"{feasible} feasible")  # fmt: skip


if __name__ == "__main__":
    with collector_paused():  # as the CLI and the operator plan: the pause is the bulk caller's
        main()
