"""The planner's memory model against vLLM's own start-up logs (vllm_startup_logs.yaml).

Three comparisons per record, each where the log has the numbers:

- weights: the planner's weight bytes per GPU (stage 0) against "Model loading took X GiB";
- kv math: vLLM's logged KV budget ("Available KV cache memory") turned into tokens by the planner's block
  layout, against "GPU KV cache size" (checks KV bytes per token, blocks, groups and windows alone). A hybrid
  (linear-attention) model is compared on "Maximum concurrency" instead: vLLM before 0.12 logged its token
  count as blocks per group × block size (kv_cache_utils.py), which is not what a request can hold, while the
  concurrency line (blocks / blocks per request) means the same in every version;
- end to end: the planner's KV tokens from the GPU budget (weights and overhead subtracted) against the same
  line, which also checks the overhead model.

`python -m tests.validation.harness` prints the table and error distribution BENCHMARKS.md shows.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from modelplane.api.serving import Quantization
from modelplane.catalog.architecture import Architecture, parse_architecture
from modelplane.catalog.gpus import GpuSpec, gpu_catalog
from modelplane.catalog.models import ModelEntry, find_model
from modelplane.catalog.overhead import overhead_constants
from modelplane.planning.kv_cache import kv_capacity
from modelplane.planning.planner import _Planner
from modelplane.planning.sizing import GpuClass, Sizer
from tests.support import deployment

GIB = 1024**3
DATA = Path(__file__).with_name("vllm_startup_logs.yaml")
COMPARISONS = frozenset({"weights", "kvMath", "endToEnd"})
STAND_IN_GPU = "RTX-4090-24GB"
"""A GPU missing from the catalog is sized as this one with the record's logged memory (only memory matters)."""


@dataclass(frozen=True)
class Result:
    record: str
    weights_error: float | None
    kv_math_error: float | None
    kv_error: float | None
    predicted_tokens: int | None
    logged_tokens: int | None
    predicted_concurrency: float | None
    logged_concurrency: float | None
    explanation: str | None
    calibration: bool = False
    """The record's log fitted a constant of the overhead model (overhead.yaml's evidence): reported apart."""


@cache
def records() -> list[dict[str, Any]]:
    data = yaml.safe_load(DATA.read_text())
    assert data["schemaVersion"] == 1
    return list(data["records"])


def _gpu(record: dict[str, Any]) -> GpuSpec | None:
    catalog = gpu_catalog()
    gib = record.get("gpuMemoryGiB")
    known = catalog.get(record.get("gpu") or "")
    if known is None and gib is None:
        return None
    base = known or catalog[STAND_IN_GPU]
    update: dict[str, Any] = {} if gib is None else {"memory_bytes": int(gib * GIB)}
    if known is None:
        update["display_name"] = str(record.get("gpu") or f"{gib} GiB GPU")
    return base.model_copy(update=update)


def _gpu_class(record: dict[str, Any], gpu: GpuSpec | None, sizer: Sizer) -> GpuClass:
    """The GPU's batch default and kernel path; a GPU outside the catalog at 8,192 tokens, with the kernel path of
    the record's `gpuArchitecture` where it names one (else the conservative one)."""
    if gpu is not None:
        return sizer.gpu_class(gpu)
    architecture = record.get("gpuArchitecture")
    checkpoints = architecture is None or overhead_constants("vllm").exports_state_checkpoints(architecture)
    return GpuClass(8192, checkpoints)


def _error(predicted: float, logged: float) -> float:
    return predicted / logged - 1


def _architecture(record: dict[str, Any]) -> tuple[Architecture, ModelEntry | None]:
    """The record's own config.json fields when it carries them (a model outside the catalog), else its entry's."""
    if "architecture" in record:
        return parse_architecture(record["architecture"], record["id"]), None
    entry = find_model(record["model"])
    assert entry is not None, f"{record['id']}: {record['model']} is not in the catalog and has no architecture"
    return entry.architecture, entry


def _not_comparable(record: dict[str, Any]) -> Result:
    logged = record["logged"]
    return Result(record["id"], None, None, None, None, logged.get("kvCacheTokens"), None,
                  logged.get("maxConcurrency"), record.get("explanation"), is_calibration(record))  # fmt: skip


def evaluate(record: dict[str, Any]) -> Result:
    if set(record.get("notComparable", [])) >= COMPARISONS:
        return _not_comparable(record)
    arch, entry = _architecture(record)
    logged = record["logged"]
    tp, pp = record["tensorParallel"], record.get("pipelineParallel", 1)
    max_model_len: int = record.get("maxModelLen") or arch.max_position_embeddings or 0
    kv_dtype = "fp8" if record.get("kvCacheDtype") == "fp8" else "auto"
    md = deployment(model={"name": record["model"]}, maxModelLen=max_model_len, kvCacheDtype=kv_dtype)
    sizer = _Planner("x", "default", md.spec, arch, entry).sizer
    weight_format = Quantization(record["quantization"])
    gpu = _gpu(record)
    split = sizer.split(weight_format, tp, pp, _gpu_class(record, gpu, sizer))
    weights, layout = split.weight_bytes_per_gpu[0], split.kv_layouts[0]

    skipped = set(record.get("notComparable", []))
    weights_error = _error(weights, logged["weightsGiB"] * GIB) if "weightsGiB" in logged else None
    logged_tokens = logged.get("kvCacheTokens")
    kv_math_error = None
    if "availableKvGiB" in logged and "kvMath" not in skipped:
        tokens, concurrency = kv_capacity(int(logged["availableKvGiB"] * GIB), layout, max_model_len)
        if arch.recurrent is not None and logged.get("maxConcurrency"):
            kv_math_error = _error(concurrency, logged["maxConcurrency"])
        elif logged_tokens:
            kv_math_error = _error(tokens, logged_tokens)
    kv_error, predicted_tokens, predicted_concurrency = None, None, None
    if "weights" in skipped:
        weights_error = None
    if gpu is not None and "gpuMemoryUtilization" in record:
        budget = int(gpu.memory_bytes * record["gpuMemoryUtilization"])
        predicted_tokens, predicted_concurrency = min(sizer._stage_capacities(split, budget))
        if logged_tokens and "endToEnd" not in skipped:
            kv_error = _error(predicted_tokens, logged_tokens)
    return Result(record["id"], weights_error, kv_math_error, kv_error, predicted_tokens, logged_tokens,
                  predicted_concurrency, logged.get("maxConcurrency"), record.get("explanation"),
                  is_calibration(record))  # fmt: skip


def results() -> list[Result]:
    return [evaluate(record) for record in records()]


@cache
def calibration_sources() -> frozenset[str]:
    """The logs the overhead model's constants were fitted to: the evidence list of overhead.yaml."""
    text = resources.files("modelplane.catalog").joinpath("data/overhead.yaml").read_text()
    return frozenset(str(item["source"]).split()[0] for item in yaml.safe_load(text)["evidence"])


def is_calibration(record: dict[str, Any]) -> bool:
    return str(record["source"]).split()[0] in calibration_sources()


def held_out(rows: list[Result]) -> list[Result]:
    """The records the targets are measured on: every one the model was not fitted to."""
    return [row for row in rows if not row.calibration]


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.1f}%"


WEIGHTS_TARGET = 0.02
KV_TARGET = 0.10
OVERESTIMATE_LIMIT = 0.05


def _distribution(name: str, errors: list[float], target: float) -> str:
    if not errors:
        return f"| {name} | 0 | | | | |"
    absolute = [abs(error) for error in errors]
    within = sum(error <= target for error in absolute)
    return (f"| {name} | {len(errors)} | {median(absolute) * 100:.1f}% | {max(absolute) * 100:.1f}% | "
            f"{max(errors) * 100:+.1f}% | {within}/{len(errors)} |")  # fmt: skip


def _compared(row: Result) -> bool:
    return any(error is not None for error in (row.weights_error, row.kv_math_error, row.kv_error))


def report() -> str:
    rows = results()
    lines = [
        "| record | weights | KV math | KV end to end | tokens (planner / vLLM) | max concurrency (planner / vLLM) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        tokens = ""
        if row.predicted_tokens is not None and row.logged_tokens:
            tokens = f"{row.predicted_tokens:,} / {row.logged_tokens:,}"
        concurrency = (f"{row.predicted_concurrency:.2f} / {row.logged_concurrency:.2f}"
                       if row.predicted_concurrency is not None and row.logged_concurrency else "")  # fmt: skip
        lines.append(f"| {row.record} | {_percent(row.weights_error)} | {_percent(row.kv_math_error)} | "
                     f"{_percent(row.kv_error)} | {tokens} | {concurrency} |")  # fmt: skip
    for title, subset in (("held out", held_out(rows)), ("calibration", [row for row in rows if row.calibration])):
        lines += [
            "",
            f"| comparison ({title}) | records | median abs error | max abs error | largest overestimate "
            "| within target |",
            "|---|---|---|---|---|---|",
            _distribution("weights per GPU (target 2%)",
                          [row.weights_error for row in subset if row.weights_error is not None], WEIGHTS_TARGET),
            _distribution("KV tokens from vLLM's KV budget (target 10%)",
                          [row.kv_math_error for row in subset if row.kv_math_error is not None], KV_TARGET),
            _distribution("KV tokens end to end (target 10%)",
                          [row.kv_error for row in subset if row.kv_error is not None], KV_TARGET),
        ]  # fmt: skip
    lines.append("")
    lines.append(f"{len(rows)} records, {sum(row.calibration for row in rows)} of them calibration;"
                 f" {sum(_compared(row) for row in rows)} compared at least once.")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
