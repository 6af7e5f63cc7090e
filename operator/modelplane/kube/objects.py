"""Read and server-side apply the children modelplane owns, writing only when something differs.

An apply is a PATCH even when nothing changes, so we compare first: a child is applied only if a
field we set is missing or different on the live object. A quiet cluster therefore sees zero
mutating requests from a resync or an operator restart.
"""

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelplane.kube.client import REQUEST_TIMEOUT_SECONDS, mapped_errors
from modelplane.kube.errors import KubeError

FIELD_MANAGER = "modelplane"


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
    return type(desired) is type(live) and bool(desired == live)


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


def get_child(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The live child, or None when it does not exist."""
    try:
        live: dict[str, Any] = request(api, f"get {kind} {namespace}/{name}", "GET",
                                        CHILD_KINDS[kind].path(namespace, name))  # fmt: skip
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    return live


def apply_child(api: client.ApiClient, desired: dict[str, Any]) -> None:
    """Server-side apply with our field manager, forcing ownership of the fields we set."""
    kind, metadata = desired["kind"], desired["metadata"]
    request(
        api,
        f"apply {kind} {metadata['namespace']}/{metadata['name']}",
        "PATCH",
        CHILD_KINDS[kind].path(metadata["namespace"], metadata["name"]),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        headers={"Content-Type": "application/apply-patch+yaml"},
        body=desired,
    )


def ensure_child(api: client.ApiClient, desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Apply `desired` unless the live object already matches it; True when a write was made."""
    if live is not None and is_subset(desired, live):
        return False
    apply_child(api, desired)
    return True


def delete_child(api: client.ApiClient, kind: str, namespace: str, name: str) -> None:
    """Delete a child we no longer render (e.g. a Deployment replaced by a LeaderWorkerSet)."""
    try:
        request(api, f"delete {kind} {namespace}/{name}", "DELETE", CHILD_KINDS[kind].path(namespace, name),
                 body={"propagationPolicy": "Background"})  # fmt: skip
    except KubeError as error:
        if error.status != 404:
            raise


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
