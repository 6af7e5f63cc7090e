"""Generate CustomResourceDefinitions from the pydantic models: one source of truth for CLI and API server.

Pydantic's JSON Schema is turned into a Kubernetes structural schema: every $ref inlined, titles
dropped, optional fields collapsed from anyOf[X, null] to X, free-form config.json kept with
x-kubernetes-preserve-unknown-fields, conditions as a list-map, and the CEL rules the models carry.
"""

from typing import Any

from pydantic import BaseModel

from modelplane.api.base import API_GROUP, API_VERSION, ARCHITECTURE_BOUNDS_MARKER, CEL, FREE_FORM_MARKER
from modelplane.api.gpu_node_pool import GPUNodePoolSpec, GPUNodePoolStatus
from modelplane.api.model_deployment import NAME_RULE, ModelDeploymentSpec
from modelplane.api.status import ModelDeploymentStatus
from modelplane.catalog.architecture import POSITIVE_KEYS, REQUIRED_KEYS, architecture_bounds
from modelplane.catalog.gpus import gpu_catalog

DROPPED_KEYS = {"title", "$defs"}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """Resolve $ref, drop titles, collapse nullable unions; recursively."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, definitions)
    variants = node.get("anyOf")
    if isinstance(variants, list):
        non_null = [variant for variant in variants if variant.get("type") != "null"]
        if len(non_null) == 1:
            rest = {key: value for key, value in node.items() if key != "anyOf"}
            if rest.get("default", 0) is None:
                rest.pop("default")
            return _inline({**non_null[0], **rest}, definitions)
    if node.get(FREE_FORM_MARKER):
        properties = dict(node[FREE_FORM_MARKER])
        if node.get(ARCHITECTURE_BOUNDS_MARKER):
            bounds = _architecture_bounds()
            properties = {key: {**bounds.get(key, {}), **properties.get(key, {})} for key in {**bounds, **properties}}
        free: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                "properties": properties}  # fmt: skip
        if "description" in node:
            free["description"] = node["description"]
        return free
    result = {key: _inline(value, definitions) for key, value in node.items() if key not in DROPPED_KEYS}
    if result.get("additionalProperties") is False:
        result.pop("additionalProperties")
    if "default" in result and result["default"] is None:
        result.pop("default")
    return result


def _architecture_bounds() -> dict[str, Any]:
    """The config.json numbers the parser bounds, bounded at admission too: the API server refuses
    `num_hidden_layers: 5000000` before the operator ever plans it. Null is allowed, as configs write it."""
    bounds = architecture_bounds()
    properties: dict[str, Any] = {}
    for key, limit in sorted(bounds.bounds.items()):
        properties[key] = {"type": "integer", "minimum": int(key in POSITIVE_KEYS), "maximum": limit}
        if key not in REQUIRED_KEYS:
            properties[key]["nullable"] = True
    for key in ("layer_types", "mlp_only_layers"):
        properties[key] = {"type": "array", "maxItems": bounds.max_list_length, "nullable": True,
                           "items": {"x-kubernetes-preserve-unknown-fields": True}}  # fmt: skip
    return properties


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as Kubernetes expects it (camelCase names, as on the wire)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return schema


def _without_rules(schema: Any) -> Any:
    """The schema without CEL rules: status is the operator's to write, and the rules models carry for spec
    (a toleration's, in status.plan) would cost the API server's CEL budget for nothing there."""
    if isinstance(schema, dict):
        return {key: _without_rules(value) for key, value in schema.items() if key != CEL}
    if isinstance(schema, list):
        return [_without_rules(item) for item in schema]
    return schema


def _with_condition_list_map(status: dict[str, Any]) -> dict[str, Any]:
    conditions = status.get("properties", {}).get("conditions")
    if conditions:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
    return status


def _root(spec: dict[str, Any], status: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole object's schema; `rules` are CEL rules on the root (the only place metadata.name is seen)."""
    return {
        "type": "object",
        **({CEL: rules} if rules else {}),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": _with_condition_list_map(_without_rules(status)),
        },
    }


def _crd(kind: str, plural: str, short: str, scope: str, schema: dict[str, Any],
         columns: list[dict[str, Any]], subresources: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["modelplane"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": subresources or {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


AGE = _column("Age", ".metadata.creationTimestamp", "date")
SCALE_SUBRESOURCES = {
    "status": {},
    "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
              "labelSelectorPath": ".status.selector"},
}  # fmt: skip
"""`kubectl scale md/NAME`, HPA and KEDA drive spec.replicas; the operator reports replicas and the pods' selector."""


def model_deployment_crd() -> dict[str, Any]:
    columns = [
        _column("Model", ".spec.model.name"),
        _column("Quant", ".status.plan.quantization"),
        _column("Pool", ".status.plan.pool"),
        _column("GPUs", ".status.plan.gpusPerReplica", "integer"),
        _column("TP", ".status.plan.tensorParallel", "integer"),
        _column("PP", ".status.plan.pipelineParallel", "integer"),
        _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        _column("Desired", ".spec.replicas", "integer"),
        _column("Available", ".status.readyReplicas", "integer"),
        _column("Reason", '.status.conditions[?(@.type=="Planned")].reason', priority=1),
        AGE,
    ]
    spec = structural_schema(ModelDeploymentSpec)
    # No admission rule on model names: catalog ConfigMaps and the Hub make any name resolvable later, and
    # the operator reports one it cannot resolve as Planned=False ModelUnknown.
    schema = _root(spec, structural_schema(ModelDeploymentStatus), [NAME_RULE])
    return _crd("ModelDeployment", "modeldeployments", "md", "Namespaced", schema, columns, SCALE_SUBRESOURCES)


def gpu_node_pool_crd() -> dict[str, Any]:
    columns = [
        _column("GPU", ".spec.gpu"),
        _column("Nodes", ".spec.nodes", "integer"),
        _column("Free GPUs", ".status.freeGpus", "integer"),
        _column("Location", ".spec.location"),
        AGE,
    ]
    spec = structural_schema(GPUNodePoolSpec)
    # The catalog's ids, as the CLI checks them: a pool of an unknown GPU can never be planned on.
    spec["properties"]["gpu"]["enum"] = sorted(gpu_catalog())
    schema = _root(spec, structural_schema(GPUNodePoolStatus))
    return _crd("GPUNodePool", "gpunodepools", "gpupool", "Cluster", schema, columns)


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD, as checked in under crds/."""
    return {
        f"{API_GROUP}_modeldeployments.yaml": model_deployment_crd(),
        f"{API_GROUP}_gpunodepools.yaml": gpu_node_pool_crd(),
    }
