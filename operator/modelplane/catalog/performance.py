"""Sourced constants of the performance model (catalog/data/performance.yaml)."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
Fraction = dict[str, float]
"""A share of a datasheet rate by GPU architecture (hopper, ampere, cdna3, ...), with a `default`."""


class RuntimePerformance(BaseModel):
    model_config = _CONFIG

    step_overhead_seconds: float = Field(ge=0, le=1)
    sequence_overhead_seconds: float = Field(ge=0, le=0.01)
    request_overhead_seconds: float = Field(ge=0, le=10)
    bandwidth_fraction: Fraction
    compute_fraction: Fraction
    attention_latency_seconds: Fraction
    """Seconds per token of context per layer of a small-batch decode attention kernel, by GPU architecture."""

    def bandwidth(self, architecture: str) -> float:
        return self.bandwidth_fraction.get(architecture, self.bandwidth_fraction["default"])

    def compute(self, architecture: str) -> float:
        return self.compute_fraction.get(architecture, self.compute_fraction["default"])

    def attention(self, architecture: str) -> float:
        return self.attention_latency_seconds.get(architecture, self.attention_latency_seconds["default"])


class Link(BaseModel):
    model_config = _CONFIG

    latency_seconds: float = Field(ge=0, le=0.01)
    bandwidth_fraction: float = Field(gt=0, le=1)


class DeviceRule(BaseModel):
    """A default that depends on the GPU: the first rule whose memory floor the GPU reaches, names excepted."""

    model_config = _CONFIG

    device_memory_at_least_gi_b: int = Field(ge=0, alias="deviceMemoryAtLeastGiB")
    value: int = Field(ge=1)
    except_names: tuple[str, ...] = ()


class PerformanceConstants(BaseModel):
    model_config = _CONFIG

    schema_version: int
    runtimes: dict[str, RuntimePerformance]
    all_reduce: dict[str, Link]
    max_num_seqs: dict[str, tuple[DeviceRule, ...]]
    sources: dict[str, str]


@cache
def performance_constants() -> PerformanceConstants:
    text = resources.files("modelplane.catalog").joinpath("data/performance.yaml").read_text()
    return PerformanceConstants.model_validate(yaml.safe_load(text))
