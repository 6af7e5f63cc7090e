"""Sourced constants of the runtime-overhead model (catalog/data/overhead.yaml)."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError


class BatchedTokensRule(BaseModel):
    """The runtime's default max_num_batched_tokens on GPUs of at least this much memory (first match wins)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    device_memory_at_least_gib: int = Field(ge=0, alias="deviceMemoryAtLeastGiB")
    value: int = Field(gt=0)
    except_names: list[str] = Field(default_factory=list)
    """Lower-case substrings of the device name this rule skips (vLLM keeps A100s on the small default)."""


class OverheadConstants(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    non_torch_bytes: int = Field(ge=0)
    non_torch_bytes_per_extra_rank: int = Field(ge=0)
    max_num_batched_tokens: int = Field(gt=0)
    batched_tokens_by_device: list[BatchedTokensRule] = Field(default_factory=list)
    """Per-GPU-class defaults; `max_num_batched_tokens` when empty or when no rule matches."""
    in_flight_batches_beyond_pipeline: int = Field(default=0, ge=0)
    """Batches in flight besides one per pipeline stage (vLLM's async scheduling keeps one more)."""
    activation_bytes_per_hidden: int = Field(ge=0)
    activation_bytes_per_intermediate: int = Field(ge=0)
    cuda_graph_bytes: int = Field(ge=0)
    state_checkpoint_architectures: list[str] | None = None
    """GPU architectures whose kernels export a hybrid's recurrent-state prefill checkpoints (planning/kv_cache.py
    `state_path`); None: assume every one does, the conservative sizing."""
    sources: dict[str, str]

    def exports_state_checkpoints(self, architecture: str) -> bool:
        listed = self.state_checkpoint_architectures
        return listed is None or architecture in listed


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
