"""The GPU catalog: hardware facts the planner does arithmetic with, each with its source."""

from enum import StrEnum
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError, UnknownGpuError


class Vendor(StrEnum):
    NVIDIA = "nvidia"
    AMD = "amd"


class Interconnect(StrEnum):
    NVLINK = "nvlink"
    INFINITY_FABRIC = "infinity-fabric"
    PCIE = "pcie"


class GpuSpec(BaseModel):
    """One GPU model. Memory is what the driver reports, so budgets match what the runtime sees."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    id: str
    vendor: Vendor
    display_name: str
    architecture: str
    compute_capability: str | None = Field(default=None, pattern=r"^\d+\.\d+$")
    gfx_arch: str | None = None
    memory_bytes: int = Field(gt=0)
    memory_bandwidth_g_bps: int = Field(gt=0, alias="memoryBandwidthGBps")
    bf16_dense_tflops: int = Field(gt=0)
    fp8_dense_tflops: int | None = None
    int8_dense_tops: int | None = None
    interconnect: Interconnect
    interconnect_g_bps: int = Field(gt=0, alias="interconnectGBps")
    pcie_generation: int | None = None
    resource_name: str
    product_labels: list[str] = Field(min_length=1)
    precisions: list[str]
    gpus_per_server: int = Field(ge=1)
    sources: dict[str, str]
    note: str | None = None

    @property
    def compute_capability_tuple(self) -> tuple[int, int] | None:
        """(major, minor) for NVIDIA parts, None for AMD."""
        if self.compute_capability is None:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    @property
    def memory_bandwidth_bytes_per_second(self) -> int:
        return self.memory_bandwidth_g_bps * 10**9


class _GpuFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schemaVersion: int  # noqa: N815 - the file's own key
    gpus: list[GpuSpec]


@cache
def gpu_catalog() -> dict[str, GpuSpec]:
    """Every GPU by id, loaded once from the packaged data file."""
    text = resources.files("modelplane.catalog").joinpath("data/gpus.yaml").read_text()
    try:
        parsed = _GpuFile.model_validate(yaml.safe_load(text))
    except ValidationError as error:
        raise CatalogError(f"gpus.yaml: {error}") from error
    return {gpu.id: gpu for gpu in parsed.gpus}


def get_gpu(gpu_id: str) -> GpuSpec:
    """The GPU with this id; the error lists the known ids so the fix is obvious."""
    catalog = gpu_catalog()
    try:
        return catalog[gpu_id]
    except KeyError:
        raise UnknownGpuError(f"unknown GPU {gpu_id!r}; known: {', '.join(sorted(catalog))}") from None
