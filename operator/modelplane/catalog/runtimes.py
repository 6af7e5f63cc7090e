"""Serving runtimes as data: pinned version and image, and the CLI flags that version accepts."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


class RuntimeFlag(_Model):
    name: str = Field(pattern=r"^--[a-z0-9][a-z0-9_-]*$")
    source: str | None = None


class RuntimeSpec(_Model):
    version: str
    image: str
    image_amd: str | None = None
    port: int = Field(gt=0, lt=65536)
    health_path: str
    metrics_path: str = Field(pattern=r"^/")
    flags: list[RuntimeFlag]

    @property
    def flag_names(self) -> frozenset[str]:
        return frozenset(flag.name for flag in self.flags)

    def image_for(self, vendor: str) -> str:
        """The runtime's image for a GPU vendor; AMD pools need the ROCm build."""
        if vendor == "amd":
            if self.image_amd is None:
                raise CatalogError(f"runtime {self.version} has no AMD image")
            return self.image_amd
        return self.image


class _RuntimesFile(_Model):
    schema_version: int
    runtimes: dict[str, RuntimeSpec]


@cache
def runtime_catalog() -> dict[str, RuntimeSpec]:
    text = resources.files("modelplane.catalog").joinpath("data/runtimes.yaml").read_text()
    return _RuntimesFile.model_validate(yaml.safe_load(text)).runtimes


def runtime_spec(runtime: str) -> RuntimeSpec:
    try:
        return runtime_catalog()[runtime]
    except KeyError:
        raise CatalogError(f"runtimes.yaml has no runtime {runtime!r}") from None
