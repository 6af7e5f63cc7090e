"""The common base of every wire type: camelCase on the wire, unknown fields refused."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

API_GROUP = "modelplane.dev"
API_VERSION = "v1alpha1"
APIVERSION = f"{API_GROUP}/{API_VERSION}"
MODEL_CATALOG_LABEL = f"{API_GROUP}/model-catalog"
"""ConfigMaps with this label set to "true" (in the operator's namespace) hold user model catalog entries."""
MODEL_CATALOG_KEY = "model.yaml"
"""The data key of a catalog ConfigMap that `modelplane catalog add` writes (any key ending .yaml is read)."""

JsonDict = dict[str, JsonValue]
FREE_FORM_MARKER = "x-modelplane-free-form"
ARCHITECTURE_BOUNDS_MARKER = "x-modelplane-architecture-bounds"
"""A free-form config.json object whose sized numbers the CRD bounds (catalog/data/architecture_bounds.yaml)."""
"""Marks a field whose content is free-form JSON (kept by the API server as is); its value lists the
properties that admission rules read, typed so CEL can reach them."""
CEL = "x-kubernetes-validations"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class WireModel(BaseModel):
    """Base for API objects: Kubernetes clients speak camelCase and expect unknown fields to be errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-compatible dict a Kubernetes client or `-o json` prints."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(BaseModel):
    """The subset of metadata modelplane reads; the rest of what the API server returns is kept, not checked."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    namespace: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    generation: int | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
