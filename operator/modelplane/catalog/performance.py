"""Sourced constants of the throughput model (catalog/data/performance.yaml)."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class PerformanceConstants(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: int
    memory_bandwidth_efficiency_percent: int = Field(gt=0, le=100)
    pcie_tensor_parallel_efficiency_percent: int = Field(gt=0, le=100)
    sources: dict[str, str]


@cache
def performance_constants() -> PerformanceConstants:
    text = resources.files("modelplane.catalog").joinpath("data/performance.yaml").read_text()
    return PerformanceConstants.model_validate(yaml.safe_load(text))
