"""Which runtime runs which weight format (and fp8 KV cache) on which hardware, from sourced data."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.gpus import GpuSpec, Vendor


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class NvidiaSupport(_Model):
    min_compute_capability: str = Field(pattern=r"^\d+\.\d+$")
    weight_only_from: str | None = Field(default=None, pattern=r"^\d+\.\d+$")
    weight_only_mode: str | None = Field(
        default=None, description="How the runtime serves the format from weightOnlyFrom up to minComputeCapability."
    )
    note: str | None = None


class AmdSupport(_Model):
    gfx_archs: list[str]
    note: str | None = None


class SupportRule(_Model):
    runtime: str
    quantization: str
    requires_checkpoint: bool = False
    nvidia: NvidiaSupport | None = None
    amd: AmdSupport | None = None
    source: str
    note: str | None = None


class SupportFile(_Model):
    schema_version: int
    rules: list[SupportRule]


def _capability(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@cache
def support_rules() -> dict[tuple[str, str], SupportRule]:
    text = resources.files("modelplane.catalog").joinpath("data/hardware_support.yaml").read_text()
    parsed = SupportFile.model_validate(yaml.safe_load(text))
    return {(rule.runtime, rule.quantization): rule for rule in parsed.rules}


def needs_checkpoint(runtime: str, feature: str) -> bool:
    """Whether the runtime only serves this format from a checkpoint already stored in it."""
    rule = support_rules().get((runtime, feature))
    return rule is None or rule.requires_checkpoint


def support_problem(runtime: str, feature: str, gpu: GpuSpec) -> str | None:
    """Why `runtime` cannot run `feature` (a weight format or fp8-kv-cache) on `gpu`, or None if it can."""
    rule = support_rules().get((runtime, feature))
    if rule is None:
        return f"{runtime} does not support {feature}"
    if gpu.vendor is Vendor.AMD:
        if rule.amd is None or gpu.gfx_arch not in rule.amd.gfx_archs:
            return f"{runtime} does not support {feature} on {gpu.id} ({gpu.gfx_arch})"
        return None
    capability = gpu.compute_capability_tuple
    if rule.nvidia is None or capability is None:
        return f"{runtime} does not support {feature} on NVIDIA GPUs"
    lowest = rule.nvidia.weight_only_from or rule.nvidia.min_compute_capability
    if capability < _capability(lowest):
        return (
            f"{runtime} needs compute capability {lowest} or newer for {feature}; {gpu.id} has {gpu.compute_capability}"
        )
    return None


def weight_only_note(runtime: str, feature: str, gpu: GpuSpec) -> str | None:
    """What to tell people when `runtime` serves `feature` on `gpu` only weight-only, or None.

    From the support rule's `weightOnlyFrom` (lowest compute capability of the weight-only path),
    `minComputeCapability` (the full path) and `weightOnlyMode` (what the runtime does instead).
    """
    rule = support_rules().get((runtime, feature))
    if rule is None or rule.nvidia is None or rule.nvidia.weight_only_from is None or gpu.vendor is not Vendor.NVIDIA:
        return None
    capability = gpu.compute_capability_tuple
    full = rule.nvidia.min_compute_capability
    if capability is None or not _capability(rule.nvidia.weight_only_from) <= capability < _capability(full):
        return None
    mode = rule.nvidia.weight_only_mode or "weight-only"
    return (
        f"{runtime} serves {feature} weight-only on {gpu.id} (compute capability {gpu.compute_capability}; "
        f"{feature} compute needs {full} or newer): {mode}"
    )
