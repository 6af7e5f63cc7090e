"""Fit performance.yaml's calibrated constants to the calibration split of performance_records.yaml.

Coordinate descent on a multiplicative grid: each constant in turn is scaled by the factor that lowers the mean
|log(model / measured)| of the inter-token latencies and times to first token of the calibration records, until
no factor helps. The held-out records never enter. `python -m tests.validation.performance_fit` prints the
constants to put in performance.yaml (rounded to 2 significant digits) and the calibration residuals.
"""

from collections.abc import Sequence
from math import log
from typing import Any

from modelplane.catalog.performance import PerformanceConstants, performance_constants
from tests.validation.performance import Case, cases, is_calibration, predict, records

FACTORS = (0.5, 0.7, 0.85, 0.93, 1.07, 1.18, 1.4, 2.0)
RUNTIME_KEYS = ("stepOverheadSeconds", "sequenceOverheadSeconds", "requestOverheadSeconds")
FRACTION_KEYS = ("bandwidthFraction", "computeFraction", "attentionLatencySeconds")
FEW_RECORDS = 30
"""A runtime with fewer calibration records fits its bandwidth fraction only; its other constants stay the
assumptions performance.yaml states (a fit of seven constants to a handful of records only memorizes them)."""
CEILINGS = {"bandwidthFraction": 0.95, "computeFraction": 0.9}


def _loss(constants: PerformanceConstants, chosen: Sequence[tuple[Case | str, dict[str, Any]]]) -> float:
    total, count = 0.0, 0
    for ready, record in chosen:
        result = predict(ready, record, constants)
        for predicted, measured in ((result.predicted_itl_ms, result.measured_itl_ms),
                                    (result.predicted_ttft_ms, result.measured_ttft_ms)):  # fmt: skip
            if predicted and measured:
                total += abs(log(predicted / measured))
                count += 1
    return total / max(1, count)


def _paths(runtime: str, architectures: set[str], records: int) -> list[tuple[str, ...]]:
    if records < FEW_RECORDS:
        return [("runtimes", runtime, "bandwidthFraction", architecture) for architecture in sorted(architectures)]
    paths: list[tuple[str, ...]] = [("runtimes", runtime, key) for key in RUNTIME_KEYS]
    for key in FRACTION_KEYS:
        paths += [("runtimes", runtime, key, architecture) for architecture in sorted(architectures)]
    return paths


def _get(data: dict[str, Any], path: tuple[str, ...]) -> float:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if path[-1] not in node:
        node[path[-1]] = node["default"]
    return float(node[path[-1]])


def _set(data: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def fit() -> dict[str, Any]:
    data = performance_constants().model_dump(by_alias=True)
    chosen = [(ready, record) for ready, record in zip(cases(), records(), strict=True)
              if not isinstance(ready, str) and is_calibration(record["id"])]  # fmt: skip
    by_runtime: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for ready, _ in chosen:
        assert not isinstance(ready, str)
        by_runtime.setdefault(ready.runtime, set()).add(ready.gpu.architecture)
        counts[ready.runtime] = counts.get(ready.runtime, 0) + 1
    paths: list[tuple[str, ...]] = [("allReduce", link, "latencySeconds") for link in ("nvlink",)]
    for runtime, architectures in sorted(by_runtime.items()):
        paths += _paths(runtime, architectures, counts[runtime])
    best = _loss(PerformanceConstants.model_validate(data), chosen)
    for _ in range(6):
        improved = False
        for path in paths:
            start = _get(data, path)
            for factor in FACTORS:
                value = min(start * factor, CEILINGS.get(path[-2] if len(path) == 4 else "", float("inf")))
                _set(data, path, value)
                loss = _loss(PerformanceConstants.model_validate(data), chosen)
                if loss < best - 1e-6:
                    best, start, improved = loss, value, True
                _set(data, path, start)
        print(f"mean |log error| {best:.4f}")
        if not improved:
            break
    return data


if __name__ == "__main__":
    import yaml

    fitted = fit()
    print(yaml.safe_dump({"runtimes": fitted["runtimes"], "allReduce": fitted["allReduce"]}, sort_keys=False))
