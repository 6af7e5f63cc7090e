"""Turn YAML documents (a GitOps repository's files, an API server's bodies) into validated API objects."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml
from pydantic import ValidationError

from modelplane.api.base import APIVERSION
from modelplane.api.errors import InvalidObjectError
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.kubectl_yaml import KubectlLoader
from modelplane.api.labels import LABEL_KEY_HELP, LABEL_VALUE_HELP, is_label_key, is_label_value
from modelplane.api.model_deployment import ModelDeployment

KINDS: dict[str, type[ModelDeployment] | type[GPUNodePool]] = {
    "ModelDeployment": ModelDeployment,
    "GPUNodePool": GPUNodePool,
}
DEFAULT_NAMESPACE = "default"
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink")


@dataclass
class Inventory:
    """Every ModelDeployment and GPUNodePool found in a set of files."""

    deployments: list[ModelDeployment] = field(default_factory=list)
    pools: list[GPUNodePool] = field(default_factory=list)


def field_path(location: Iterable[int | str]) -> str:
    """pydantic's error location as a JSON path a kubectl user recognizes: spec.env[0].name."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe(document: Mapping[str, Any]) -> str:
    kind = document.get("kind", "object")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if name and namespace:
        return f"{kind} {namespace}/{name}"
    return f"{kind} {name}" if name else str(kind)


OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
})  # fmt: skip
"""Kubernetes ObjectMeta's fields: the API server refuses any other under strict field validation (kubectl's)."""
UNKNOWN_FIELD = "unknown field (remove it or check its spelling against `kubectl explain`)"
MAX_ANNOTATIONS_BYTES = 256 * 1024
"""apimachinery's TotalAnnotationSizeLimitB."""


def _check_metadata(metadata: Mapping[str, Any], described: str) -> None:
    """What the API server checks in every object's metadata, which the CRD's schema does not describe."""
    unknown = sorted(str(key) for key in metadata if key not in OBJECT_META_FIELDS)
    if unknown:
        raise InvalidObjectError(described, f"metadata.{unknown[0]}", UNKNOWN_FIELD)
    labels = metadata.get("labels")
    for key, value in labels.items() if isinstance(labels, Mapping) else ():
        if not is_label_key(str(key)):
            raise InvalidObjectError(described, f"metadata.labels.{key}", f"must be {LABEL_KEY_HELP}")
        if isinstance(value, str) and not is_label_value(value):
            raise InvalidObjectError(described, f"metadata.labels.{key}", f"value must be {LABEL_VALUE_HELP}")
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping):
        for key in annotations:
            if not is_label_key(str(key)):
                help_text = LABEL_KEY_HELP.replace("a label key", "an annotation key")
                raise InvalidObjectError(described, f"metadata.annotations.{key}", f"must be {help_text}")
        size = sum(len(str(key).encode()) + len(str(value).encode()) for key, value in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            too_large = f"{size:,} bytes, more than the API server's {MAX_ANNOTATIONS_BYTES:,}"
            raise InvalidObjectError(described, "metadata.annotations", too_large)


def parse_object(document: Any, where: str) -> ModelDeployment | GPUNodePool:
    """Validate one document; the error names where it came from, the object and the field."""
    if not isinstance(document, Mapping):
        raise InvalidObjectError(where, "", f"expected a Kubernetes object (a mapping), got {type(document).__name__}")
    described = f"{where}: {_describe(document)}"
    kind = document.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidObjectError(described, "kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if document.get("apiVersion") != APIVERSION:
        raise InvalidObjectError(
            described, "apiVersion", f"expected {APIVERSION!r}, got {document.get('apiVersion')!r}"
        )
    body = dict(document)
    if isinstance(body.get("metadata"), Mapping):
        _check_metadata(body["metadata"], described)
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in SERVER_FIELDS}
    if "spec" in body:
        body["spec"] = _without_nulls(body["spec"])
    try:
        wire = json.dumps(body, default=_json_scalar, allow_nan=False)
    except TypeError as error:
        raise InvalidObjectError(described, "", str(error)) from None
    except ValueError:
        raise InvalidObjectError(described, "", "a YAML .nan or .inf value is not JSON: write a number") from None
    try:
        # As the API server validates: JSON types exactly ("4096" is not an integer, true is not a number) and
        # the wire's camelCase names only (max_model_len is an unknown field there).
        parsed = KINDS[kind].model_validate_json(wire, strict=True, by_alias=True, by_name=False)
    except ValidationError as error:
        errors = error.errors()
        # An unknown field first: a misspelt key (snake_case) also makes its real one look missing.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        problem = first["msg"]
        if first["type"] == "value_error":
            problem = str(first["ctx"]["error"])
        elif first["type"] == "extra_forbidden":
            problem = UNKNOWN_FIELD
        raise InvalidObjectError(described, field_path(first["loc"]), problem) from None
    if isinstance(parsed, ModelDeployment) and parsed.metadata.namespace is None:
        parsed = parsed.model_copy(
            update={"metadata": parsed.metadata.model_copy(update={"namespace": DEFAULT_NAMESPACE})}
        )
    return parsed


FREE_FORM_FIELDS = ("architecture",)
"""Fields kept as the user wrote them, nulls included: config.json, whose nulls the CRD allows where they mean
something (catalog.models.resolve_architecture drops the others, as the API server does)."""


def _without_nulls(value: Any) -> Any:
    """The spec as the API server stores it: a field set to null that its schema does not declare nullable is
    dropped (`env: null` is no env, `value: null` the default), while a null in a list stays, and is invalid."""
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    if not isinstance(value, Mapping):
        return value
    return {key: item if key in FREE_FORM_FIELDS else _without_nulls(item)
            for key, item in value.items() if item is not None}  # fmt: skip


def _json_scalar(value: Any) -> str:
    """An explicitly tagged YAML date as the text kubectl sends; other YAML-only types (!!binary, !!set) have no
    JSON form the API server would take."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"a YAML {type(value).__name__} value is not JSON: write it as a string")


MAX_ALIASES = 10
"""YAML aliases one stream may use. Each expands to a copy of its anchor's node, so nested levels of aliases
multiply (nine levels of nine, a "billion laughs", are 3.5 billion nodes). With k aliases in all the expansion
is at most about e^(k/e): 40 nodes for 10. Real manifests use a handful, if any."""


class _BoundedLoader(KubectlLoader):
    """KubectlLoader that refuses a stream using more than MAX_ALIASES aliases, before building anything."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                line = self.line + 1
                raise yaml.YAMLError(f"line {line}: more than {MAX_ALIASES} YAML aliases;"
                                     " write the objects out instead of aliasing them")  # fmt: skip
        return super().compose_node(parent, index)


def load_documents(text: str, where: str) -> Inventory:
    """Parse a multi-document YAML stream. Lists (`kind: List`) are flattened; empty documents skipped."""
    try:
        documents = list(yaml.load_all(text, Loader=_BoundedLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InvalidObjectError(where, "", f"invalid YAML: {position}{problem}") from None
    inventory = Inventory()
    for index, document in enumerate(documents):
        if document is None:
            continue
        location = f"{where} (document {index + 1})" if len(documents) > 1 else where
        items = document.get("items") if isinstance(document, Mapping) and document.get("kind") == "List" else None
        for item in items if isinstance(items, list) else [document]:
            parsed = parse_object(item, location)
            if isinstance(parsed, ModelDeployment):
                inventory.deployments.append(parsed)
            else:
                inventory.pools.append(parsed)
    return inventory
