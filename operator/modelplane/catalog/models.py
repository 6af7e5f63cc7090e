"""The model catalog: config.json architectures of popular open models, stored verbatim with sources."""

from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from modelplane.api.base import MODEL_CATALOG_LABEL
from modelplane.catalog.architecture import REQUIRED_KEYS, Architecture, parse_architecture
from modelplane.catalog.checkpoint import TensorSummary
from modelplane.catalog.errors import CatalogError, UnknownModelError, UnsupportedArchitectureError


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
    quant_config: dict[str, Any] | None = None
    """hf_quant_config.json, which ModelOpt checkpoints carry beside (or instead of) config.json's
    quantization_config."""
    tensors: TensorSummary | None = None
    """The checkpoint's safetensors headers, summarized (catalog.checkpoint); absent for packaged entries."""

    @property
    def architecture(self) -> Architecture:
        return merge_architecture(self, None, self.name)


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


def merge_architecture(entry: ModelEntry | None, architecture: Mapping[str, Any] | None, source: str) -> Architecture:
    """The architecture to plan with: the user's config.json fields win over the entry's."""
    # The CRD does not declare the required fields nullable, so the API server drops a null given for one.
    given = {key: value for key, value in (architecture or {}).items()
             if value is not None or key not in REQUIRED_KEYS}  # fmt: skip
    merged = {**(entry.config if entry else {}), **given}
    if entry is not None and entry.quant_config and "quantization_config" not in merged:
        merged["quantization_config"] = entry.quant_config
    arch = parse_architecture(merged, source)
    tensors = entry.tensors if entry is not None else None
    if tensors is not None:
        arch = _with_checkpoint_bytes(arch, tensors)
    if not arch.multimodal:
        return arch
    if tensors is None:
        raise UnsupportedArchitectureError(
            f"{source}: a multimodal model ({arch.model_type} language model): its vision tower's weights are"
            " counted from the checkpoint's safetensors headers, which this catalog entry lacks; make one with"
            " `modelplane catalog add`"
        )
    return replace(arch, vision_weight_bytes=tensors.vision_bytes())


def _with_checkpoint_bytes(arch: Architecture, tensors: TensorSummary) -> Architecture:
    """The headers' bytes per decoder layer, when they hold exactly the architecture's layers (an MTP layer past the
    last is left out; headers of another layer count, as when spec.model.architecture overrides it, are ignored)."""
    per_layer = tensors.layer_bytes()
    if not all(layer in per_layer for layer in range(arch.num_layers)):
        return arch
    stored = tuple(per_layer[layer] for layer in range(arch.num_layers))
    return replace(arch, checkpoint_layer_bytes=stored, checkpoint_outside_bytes=tensors.outside_layers_bytes())


def unknown_model(name: str, source: str) -> UnknownModelError:
    """The three ways to make a model known, in the words of the CLI and of the operator's ModelUnknown."""
    return UnknownModelError(
        f"{source}: model {name!r} is not in modelplane's catalog; either set spec.model.architecture to the fields"
        f" of its config.json, or add a catalog entry (`modelplane catalog add {name} -o yaml` prints a ConfigMap"
        f" labelled {MODEL_CATALOG_LABEL}=true: apply it in the operator's namespace, or pass it to plan/render with"
        " --catalog), or enable Hub resolution (chart value hub.enabled; plan/render --hub)"
    )


def resolve_architecture(
    name: str, architecture: Mapping[str, Any] | None, source: str
) -> tuple[Architecture, ModelEntry | None]:
    """The architecture from the spec and the packaged catalog only; catalog.resolve adds the other sources."""
    entry = find_model(name)
    if entry is None and not architecture:
        raise unknown_model(name, source)
    return merge_architecture(entry, architecture, source), entry
