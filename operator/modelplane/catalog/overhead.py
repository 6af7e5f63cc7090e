"""Sourced constants of the runtime-overhead model (catalog/data/overhead.yaml)."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError


class OverheadConstants(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    non_torch_bytes: int = Field(ge=0)
    non_torch_bytes_per_extra_rank: int = Field(ge=0)
    max_num_batched_tokens: int = Field(gt=0)
    activation_bytes_per_hidden: int = Field(ge=0)
    activation_bytes_per_intermediate: int = Field(ge=0)
    cuda_graph_bytes: int = Field(ge=0)
    sources: dict[str, str]


class _OverheadFile(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: int
    model: dict[str, OverheadConstants]
    evidence: list[dict[str, object]] = Field(default_factory=list)


@cache
def _overhead_file() -> _OverheadFile:
    text = resources.files("modelplane.catalog").joinpath("data/overhead.yaml").read_text()
    return _OverheadFile.model_validate(yaml.safe_load(text))


def overhead_constants(runtime: str) -> OverheadConstants:
    try:
        return _overhead_file().model[runtime]
    except KeyError:
        raise CatalogError(f"overhead.yaml has no constants for runtime {runtime!r}") from None
