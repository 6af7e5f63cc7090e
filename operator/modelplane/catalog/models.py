"""The model catalog: config.json architectures of popular open models, stored verbatim with sources."""

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from modelplane.catalog.architecture import REQUIRED_KEYS, Architecture, parse_architecture
from modelplane.catalog.errors import CatalogError, UnknownModelError


class ModelEntry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    name: str
    aliases: list[str] = Field(default_factory=list)
    config_source: str
    official_parameters: int | None = None
    parameters_source: str | None = None
    parameters_rounding: int | None = None
    pre_quantized: str | None = None
    note: str | None = None
    config: dict[str, Any]

    @property
    def architecture(self) -> Architecture:
        return parse_architecture(self.config, self.name)


@cache
def model_catalog() -> dict[str, ModelEntry]:
    """Every catalog model by Hugging Face name, loaded once from the packaged data files."""
    folder = resources.files("modelplane.catalog").joinpath("data/models")
    entries: dict[str, ModelEntry] = {}
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if not item.name.endswith(".yaml"):
            continue
        try:
            entry = ModelEntry.model_validate(yaml.safe_load(item.read_text()))
        except ValidationError as error:
            raise CatalogError(f"models/{item.name}: {error}") from error
        entries[entry.name] = entry
    return entries


def find_model(name: str) -> ModelEntry | None:
    """Look a model up by exact name, case-insensitive name or alias."""
    catalog = model_catalog()
    if name in catalog:
        return catalog[name]
    wanted = name.lower()
    for entry in catalog.values():
        if entry.name.lower() == wanted or wanted in entry.aliases:
            return entry
    return None


def resolvable_names() -> list[str]:
    """Every spelling of a model name find_model resolves, lowercased: what admission can check without code."""
    names = {spelling for entry in model_catalog().values()
             for spelling in (entry.name.lower(), *entry.aliases) if spelling == spelling.lower()}  # fmt: skip
    return sorted(names)


def resolve_architecture(
    name: str, architecture: Mapping[str, Any] | None, source: str
) -> tuple[Architecture, ModelEntry | None]:
    """The architecture to plan with: the user's config.json fields win over the catalog's."""
    entry = find_model(name)
    if architecture:
        # The CRD does not declare the required fields nullable, so the API server drops a null given for one.
        given = {key: value for key, value in architecture.items() if value is not None or key not in REQUIRED_KEYS}
        merged = {**(entry.config if entry else {}), **given}
        return parse_architecture(merged, source), entry
    if entry is None:
        raise UnknownModelError(
            f"{source}: model {name!r} is not in the catalog; set spec.model.architecture to the "
            "fields of its config.json (see `modelplane catalog models`)"
        )
    return entry.architecture, entry
