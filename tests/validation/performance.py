"""The performance model against published serving benchmarks (performance_records.yaml).

Each record is one published measurement: a model served by a runtime on a GPU type at a tensor- and
pipeline-parallel degree, a closed loop of `concurrency` users (or a request rate) sending prompts of
`inputTokens` for `outputTokens` each. The model predicts that operating point from the catalog alone
(planning/performance.py, with the constants of performance.yaml); mean statistics are compared with its means,
median ones with its medians (a median inter-token latency is the plain decode step).

A closed loop of fixed-length requests (benchmark_serving's random dataset, genai-perf, LLMPerf) keeps its users
in step: they finish together and resend together, so their prompts arrive as a cohort (`operating_point`'s
`cohort`). A record whose lengths vary (`arrivals: staggered`, e.g. lengths ±15 % or a ShareGPT sample) is
compared as unsynchronized arrivals, the planner's own assumption for real traffic.

Records are split for calibration by a hash of their id (one in three), so the split is fixed before any fit and
the fit (`performance_fit.py`) never sees the held-out records that `test_performance_records.py` reports.

`python -m tests.validation.performance` prints the table and error distribution BENCHMARKS.md shows.
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from modelplane.api.serving import Quantization
from modelplane.catalog.gpus import GpuSpec, gpu_catalog
from modelplane.catalog.models import find_model
from modelplane.catalog.performance import PerformanceConstants
from modelplane.planning.estimates import hardware
from modelplane.planning.performance import (
    ReplicaWork,
    Workload,
    at_rate,
    median_inter_token_latency,
    operating_point,
)
from modelplane.planning.planner import _Planner, sequence_limit
from tests.support import deployment

DATA = Path(__file__).with_name("performance_records.yaml")
QUANTIZATIONS = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8", "int4-awq": "awq", "awq": "awq",
                 "int4-gptq": "gptq", "gptq": "gptq", "mxfp4": "mxfp4", "nvfp4": "nvfp4"}  # fmt: skip
RUNTIMES = {"vllm": "vllm", "nim-vllm": "vllm", "tensorrt-llm": "tensorrt-llm", "nim-trtllm": "tensorrt-llm"}
CALIBRATION_SHARE = 3


@dataclass(frozen=True)
class Prediction:
    record: str
    itl_error: float | None
    ttft_error: float | None
    predicted_itl_ms: float | None
    measured_itl_ms: float | None
    predicted_ttft_ms: float | None
    measured_ttft_ms: float | None
    skipped: str | None
    calibration: bool


@cache
def records() -> list[dict[str, Any]]:
    data = yaml.safe_load(DATA.read_text())
    assert data["schemaVersion"] == 1
    return list(data["records"])


def is_calibration(record_id: str) -> bool:
    return int(hashlib.sha256(record_id.encode()).hexdigest(), 16) % CALIBRATION_SHARE == 0


def _error(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or not measured:
        return None
    return (predicted - measured) / measured


def _skip(record: dict[str, Any], why: str) -> Prediction:
    return Prediction(record["id"], None, None, None, None, None, None, why, is_calibration(record["id"]))


@dataclass(frozen=True)
class Case:
    """A record made ready for the model: everything but the constants, so a fit re-evaluates it cheaply."""

    record: dict[str, Any]
    runtime: str
    weight_format: Quantization
    gpu: GpuSpec
    work: ReplicaWork
    workload: Workload
    limit: int


def case(record: dict[str, Any]) -> Case | str:
    """The record's replica as the planner sizes it, or why it cannot be compared."""
    runtime = RUNTIMES.get(record["runtime"])
    if runtime is None:
        return f"runtime {record['runtime']} is not modelled"
    entry = find_model(record["model"])
    if entry is None:
        return f"{record['model']} is not in the catalog"
    gpu = gpu_catalog().get(record["gpu"])
    if gpu is None:
        return f"GPU {record['gpu']} is not in the catalog"
    if not record.get("concurrency") and not record.get("requestRate"):
        return "neither a concurrency nor a request rate"
    workload = Workload(int(record["inputTokens"]), int(record["outputTokens"]))
    quantization = "auto" if entry.pre_quantized else QUANTIZATIONS[record["quantization"]]
    tp, pp = record["tensorParallel"], record.get("pipelineParallel") or 1
    md = deployment(
        model={"name": record["model"]},
        quantization=quantization,
        runtime=runtime,
        kvCacheDtype=record.get("kvCacheDtype") or "auto",
        maxModelLen=workload.input_tokens + workload.output_tokens,
        parallelism={"tensorParallel": tp, "pipelineParallel": pp},
        workload={"inputTokens": workload.input_tokens, "outputTokens": workload.output_tokens},
    )
    planner = _Planner("x", "default", md.spec, entry.architecture, entry)
    weight_format = planner.format_for_gpu(planner.formats()[0], gpu)
    fit = planner.sizer.memory_fit(gpu, weight_format, tp, pp)
    limit = sequence_limit(runtime, gpu, fit.breakdown, workload)
    return Case(record, runtime, weight_format, gpu, planner.sizer.work(weight_format, tp, pp), workload, limit)


@cache
def cases() -> tuple[Case | str, ...]:
    return tuple(case(record) for record in records())


def predict(ready: Case | str, record: dict[str, Any], constants: PerformanceConstants | None = None) -> Prediction:
    """The model's TTFT and ITL at the record's operating point, with `constants` or performance.yaml's."""
    if isinstance(ready, str):
        return _skip(record, ready)
    machine = hardware(ready.runtime, ready.weight_format, ready.gpu, constants)
    work, workload, limit = ready.work, ready.workload, ready.limit
    rate, concurrency = record.get("requestRate"), record.get("concurrency")
    cohort = bool(concurrency) and record.get("arrivals", "together") == "together"
    if concurrency:
        point = operating_point(work, machine, workload, float(concurrency), limit, cohort=cohort)
    else:
        settled = at_rate(work, machine, workload, float(rate or 0), limit)
        if settled is None:
            return _skip(record, "the rate overloads one replica in the model (no steady state)")
        point = settled
    measured = record["measured"]
    median_stat = record.get("statistic") in ("median", "p50")
    itl = (median_inter_token_latency(work, machine, workload, point.sequences, cohort=cohort)
           if median_stat else point.inter_token_latency)  # fmt: skip
    itl_ms, ttft_ms = itl * 1000, point.time_to_first_token * 1000
    measured_itl, measured_ttft = measured.get("interTokenLatencyMs"), measured.get("timeToFirstTokenMs")
    return Prediction(record["id"], _error(itl_ms, measured_itl), _error(ttft_ms, measured_ttft), itl_ms,
                      measured_itl, ttft_ms, measured_ttft, None, is_calibration(record["id"]))  # fmt: skip


def predictions(constants: PerformanceConstants | None = None) -> list[Prediction]:
    return [predict(ready, record, constants) for ready, record in zip(cases(), records(), strict=True)]


def within(errors: list[float], bound: float) -> int:
    return sum(1 for error in errors if abs(error) <= bound)


def summary(results: list[Prediction], calibration: bool) -> dict[str, Any]:
    chosen = [r for r in results if r.calibration is calibration and r.skipped is None]
    itl = [r.itl_error for r in chosen if r.itl_error is not None]
    ttft = [r.ttft_error for r in chosen if r.ttft_error is not None]
    return {
        "itl": (within(itl, 0.20), len(itl), median(abs(e) for e in itl) if itl else None),
        "ttft": (within(ttft, 0.35), len(ttft), median(abs(e) for e in ttft) if ttft else None),
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table() -> str:
    results = predictions()
    by_id = {record["id"]: record for record in records()}
    lines = ["| record | set | model | GPU | TP | runtime | conc./rate | in/out | ITL ms (model / measured) | error |"
             " TTFT ms (model / measured) | error |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        record = by_id[result.record]
        load = record.get("concurrency") or f"{record.get('requestRate')}/s"
        split = "calibration" if result.calibration else "held out"
        model = record["model"].split("/")[-1]
        head = (f"| [{result.record}]({record['source']}) | {split} | {model} | {record['gpu']} | "
                f"{record['tensorParallel']} | {record['runtime']} | {load} | "
                f"{record['inputTokens']}/{record['outputTokens']} |")  # fmt: skip
        if result.skipped:
            lines.append(f"{head} not compared: {result.skipped} | | | |")
            continue
        lines.append(
            f"{head} {_ms(result.predicted_itl_ms)} / {_ms(result.measured_itl_ms)} | {_percent(result.itl_error)} | "
            f"{_ms(result.predicted_ttft_ms)} / {_ms(result.measured_ttft_ms)} | {_percent(result.ttft_error)} |"
        )
    lines.append("")
    for name, calibration in (("calibration", True), ("held out", False)):
        stats = summary(results, calibration)
        itl_in, itl_n, itl_median = stats["itl"]
        ttft_in, ttft_n, ttft_median = stats["ttft"]
        lines.append(
            f"- {name}: ITL within ±20 % for {itl_in}/{itl_n} (median |error| {_percent(itl_median)}), "
            f"TTFT within ±35 % for {ttft_in}/{ttft_n} (median |error| {_percent(ttft_median)})"
        )
    skipped = sum(1 for r in results if r.skipped)
    lines.append(f"- {len(results)} records, {skipped} not compared (reason in the table)")
    return "\n".join(lines)


def groups() -> str:
    """Held-out records by source, runtime and GPU: how many, and how many within the targets."""
    by_id = {record["id"]: record for record in records()}
    rows: dict[tuple[str, str, str], list[Prediction]] = {}
    for result in predictions():
        if result.skipped is None and not result.calibration:
            record = by_id[result.record]
            rows.setdefault((record["sourceKind"], record["runtime"], record["gpu"]), []).append(result)
    lines = ["| source | runtime | GPU | held out | ITL within ±20 % | median ITL error | TTFT within ±35 % |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (source, runtime, gpu), results in sorted(rows.items()):
        itl = [r.itl_error for r in results if r.itl_error is not None]
        ttft = [r.ttft_error for r in results if r.ttft_error is not None]
        lines.append(f"| {source} | {runtime} | {gpu} | {len(results)} | {within(itl, 0.20)}/{len(itl)} | "
                     f"{_percent(median(itl) if itl else None)} | {within(ttft, 0.35)}/{len(ttft)} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(groups() if sys.argv[1:] == ["--groups"] else table())
