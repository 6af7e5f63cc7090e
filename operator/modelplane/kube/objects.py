"""Read and server-side apply the children modelplane owns, writing only when something differs.

An apply is a PATCH even when nothing changes, so we compare first: a child is applied only if a
field we set is missing or different on the live object. A quiet cluster therefore sees zero
mutating requests from a resync or an operator restart.

Server-side apply cannot remove a field another manager added (a sidecar, `hostNetwork`, an extra
Service selector key): those fields belong to that manager. The live object's managedFields say who
added what, so a child with spec fields added by anyone else is replaced (PUT) with what we render,
which drops them; the fields the API server defaults are owned by no manager and stay.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelplane.kube.client import REQUEST_TIMEOUT_SECONDS, mapped_errors
from modelplane.kube.errors import GoneError

FIELD_MANAGER = "modelplane"
REPLACE_MANAGER = "modelplane-replace"
"""The manager of our replaces (PUTs): an update's fields are its own, apart from those of our applies."""
TOLERATED_FOREIGN_PATHS = (
    # `kubectl rollout restart` stamps the pod template; removing the stamp would restart the pods again.
    "spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt",
)


@dataclass(frozen=True)
class ResourceKind:
    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        prefix = "/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"
        base = f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{name}" if name else base


CHILD_KINDS: dict[str, ResourceKind] = {
    "Service": ResourceKind("", "v1", "services"),
    "Deployment": ResourceKind("apps", "v1", "deployments"),
    "PodDisruptionBudget": ResourceKind("policy", "v1", "poddisruptionbudgets"),
    "LeaderWorkerSet": ResourceKind("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
    "NetworkPolicy": ResourceKind("networking.k8s.io", "v1", "networkpolicies"),
    "ScaledObject": ResourceKind("keda.sh", "v1alpha1", "scaledobjects"),
}


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (server-added fields ignored).

    The API server drops empty lists and maps, so an empty desired value matches a missing field.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(
            is_subset(value, live[key]) if key in live else value in ({}, [], None) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (isinstance(live, list) and len(desired) == len(live)
                and all(is_subset(d, item) for d, item in zip(desired, live, strict=True)))  # fmt: skip
    if isinstance(desired, str) and isinstance(live, int) and not isinstance(live, bool):
        return desired == str(live)
    if _is_number(desired) and _is_number(live):
        # JSON has one number type: the API server stores our 288.0 as 288, and reads it back as an int.
        return bool(desired == live)
    return type(desired) is type(live) and bool(desired == live)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge_patch(wanted: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that makes the maps under `wanted`'s keys exactly `wanted`'s (RFC 7386).

    A merge patch only adds and replaces keys of a map; one the live map has and `wanted` no longer does is
    removed by sending it as null. Keys of `live` beside `wanted`'s own stay: they are not this patch's.
    """
    patch: dict[str, Any] = {}
    for key, value in wanted.items():
        current = live.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            nested = merge_patch(value, current)
            patch[key] = {**nested, **{stale: None for stale in current if stale not in value}}
        else:
            patch[key] = value
    return patch


def _encoded(body: Any, content_type: str) -> Any:
    """The REST layer JSON-encodes bodies of JSON content types itself; an apply patch goes as text."""
    if body is None or "json" in content_type:
        return body
    return json.dumps(body)


def request(api: client.ApiClient, action: str, method: str, path: str,
             query: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None,
             body: Any = None) -> Any:  # fmt: skip
    """A raw API request: the typed clients cannot send apply patches for arbitrary kinds."""
    all_headers = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
    with mapped_errors(action):
        method, url, header_params, serialized, _ = api.param_serialize(
            method=method, resource_path=path, query_params=query or [], auth_settings=["BearerToken"],
            header_params=all_headers, body=_encoded(body, all_headers["Content-Type"]),
        )  # fmt: skip
        response = api.call_api(method, url, header_params=header_params, body=serialized,
                                _request_timeout=REQUEST_TIMEOUT_SECONDS)  # fmt: skip
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response, body=data.decode() if data else None)
    return json.loads(data) if data else None


def child_key(kind: str, namespace: str, name: str) -> str:
    """How the operator's index of existing children names one."""
    return f"{kind}/{namespace}/{name}"


def get_child(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The live child, or None when it does not exist."""
    try:
        live: dict[str, Any] = request(api, f"get {kind} {namespace}/{name}", "GET",
                                        CHILD_KINDS[kind].path(namespace, name))  # fmt: skip
    except GoneError:
        return None
    return live


def apply_child(api: client.ApiClient, desired: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply with our field manager, forcing ownership of the fields we set; returns the child stored."""
    kind, metadata = desired["kind"], desired["metadata"]
    stored: dict[str, Any] = request(
        api,
        f"apply {kind} {metadata['namespace']}/{metadata['name']}",
        "PATCH",
        CHILD_KINDS[kind].path(metadata["namespace"], metadata["name"]),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        headers={"Content-Type": "application/apply-patch+yaml"},
        body=desired,
    )
    return stored


def ensure_child(api: client.ApiClient, desired: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Make the live child what we render; returns the child as stored now.

    Applied unless it already matches; replaced when others added spec fields we do not render. After a write
    the child is the write's response, so a workload just created reads as not yet rolled out, whatever its
    controllers did since: its status then comes from the events that follow, never from a race with them.
    """
    if live is not None and added_fields(live, desired):
        return replace_child(api, desired, live)
    if live is not None and is_subset(desired, live):
        return live
    return apply_child(api, desired)


def _added_paths(fields: Mapping[str, Any], desired: Any, live: Any, path: str) -> Iterator[str]:
    """Paths a managedFields (FieldsV1) tree owns that `desired` does not set.

    FieldsV1 keys: `f:<name>` a map field, `k:<json>` a list item by its merge keys, `v:<json>` a set item,
    `i:<n>` a list item by index, `.` the field itself. A field owned whole (no children listed) is an atomic
    value, such as a Service's selector: keys the live map has beyond ours were added.
    """
    if not any(key != "." for key in fields):
        if isinstance(desired, Mapping) and isinstance(live, Mapping):
            yield from (f"{path}.{key}" for key in live if key not in desired)
        return
    for key, sub in fields.items():
        if key == ".":
            continue
        kind, _, raw = key.partition(":")
        if kind == "f":
            child_path = f"{path}.{raw}" if path else raw
            if not isinstance(desired, Mapping) or raw not in desired:
                yield child_path
            else:
                yield from _added_paths(sub or {}, desired[raw], _field(live, raw), child_path)
        elif kind == "k":
            merge_keys = json.loads(raw)
            match, live_match = (_keyed_item(items, merge_keys) for items in (desired, live))
            if match is None:
                yield f"{path}[{raw}]"
            else:
                yield from _added_paths(sub or {}, match, live_match, f"{path}[{raw}]")
        elif kind == "v":
            if not isinstance(desired, list) or json.loads(raw) not in desired:
                yield f"{path}[{raw}]"
        elif kind == "i":
            index = int(raw)
            if not isinstance(desired, list) or index >= len(desired):
                yield f"{path}[{raw}]"
            else:
                live_item = live[index] if isinstance(live, list) and index < len(live) else None
                yield from _added_paths(sub or {}, desired[index], live_item, f"{path}[{raw}]")


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


def _keyed_item(items: Any, merge_keys: Mapping[str, Any]) -> Any:
    """The item of a list-map with these merge keys; a key the item leaves out is the API server's default."""
    if not isinstance(items, list):
        return None
    return next((item for item in items if isinstance(item, Mapping)
                 and all(item.get(name, value) == value for name, value in merge_keys.items())), None)  # fmt: skip


def added_fields(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Spec fields other managers added to the live child that we do not render (a hand edit to undo).

    Writes through a subresource (status, scale) are not edits of the spec we own. Another manager's fields
    that outlived our last replace are values the API server defaults (a replace cannot remove them), so only
    managers that wrote after it count. Fields our own replace set and we no longer render count too: an
    apply cannot remove fields of another manager, even our replace's.
    """
    entries = (live.get("metadata") or {}).get("managedFields") or []
    replaced_at = max((entry.get("time") or "" for entry in entries if entry.get("manager") == REPLACE_MANAGER),
                      default="")  # fmt: skip
    added: list[str] = []
    for entry in entries:
        manager = entry.get("manager")
        if manager == FIELD_MANAGER or entry.get("subresource"):
            continue
        if manager != REPLACE_MANAGER and replaced_at and (entry.get("time") or "") <= replaced_at:
            continue
        spec_fields = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        for path in _added_paths(spec_fields, desired.get("spec") or {}, live.get("spec") or {}, "spec"):
            if path not in TOLERATED_FOREIGN_PATHS and path not in added:
                added.append(path)
    return added


def replace_child(api: client.ApiClient, desired: dict[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """PUT `desired` over the live child, dropping fields others added to its spec; returns the child stored.

    Labels, annotations and finalizers others set on the metadata stay (controllers annotate what they manage);
    the resourceVersion makes a concurrent write fail with a conflict, retried, instead of being overwritten.
    The API server keeps a Service's allocated clusterIP and node ports when the body leaves them out.
    """
    kind, metadata = desired["kind"], desired["metadata"]
    current = live.get("metadata") or {}
    body = {**desired, "metadata": {
        **metadata,
        "labels": {**(current.get("labels") or {}), **(metadata.get("labels") or {})},
        "annotations": {**(current.get("annotations") or {}), **(metadata.get("annotations") or {})},
        "finalizers": current.get("finalizers") or [],
        "resourceVersion": current.get("resourceVersion"),
    }}  # fmt: skip
    stored: dict[str, Any] = request(api, f"replace {kind} {metadata['namespace']}/{metadata['name']}", "PUT",
                                     CHILD_KINDS[kind].path(metadata["namespace"], metadata["name"]),
                                     query=[("fieldManager", REPLACE_MANAGER)], body=body)  # fmt: skip
    return stored


def delete_child(api: client.ApiClient, kind: str, namespace: str, name: str) -> None:
    """Delete a child we no longer render (e.g. a Deployment replaced by a LeaderWorkerSet)."""
    with suppress(GoneError):  # already gone
        request(api, f"delete {kind} {namespace}/{name}", "DELETE", CHILD_KINDS[kind].path(namespace, name),
                 body={"propagationPolicy": "Background"})  # fmt: skip


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    """Makes the garbage collector delete children with their ModelDeployment; no finalizer needed."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
