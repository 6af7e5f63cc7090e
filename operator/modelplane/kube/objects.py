"""Read and server-side apply the children modelplane owns, writing only when something differs.

An apply is a PATCH even when nothing changes, so we compare first: a child is applied only if a
field we set is missing or different on the live object. A quiet cluster therefore sees zero
mutating requests from a resync or an operator restart.
"""

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from modelplane.kube.client import call
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
    """True when every field of `desired` has the same value in `live` (server-added fields ignored)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(key in live and is_subset(value, live[key])
                                              for key, value in desired.items())  # fmt: skip
    if isinstance(desired, list):
        return (isinstance(live, list) and len(desired) == len(live)
                and all(is_subset(d, item) for d, item in zip(desired, live, strict=True)))  # fmt: skip
    if isinstance(desired, str) and isinstance(live, int) and not isinstance(live, bool):
        return desired == str(live)
    return bool(desired == live)


def _request(api: client.ApiClient, action: str, method: str, path: str, **kwargs: Any) -> Any:
    return call(action, api.call_api, path, method, response_type="object", auth_settings=["BearerToken"],
                _return_http_data_only=True, **kwargs)  # fmt: skip


def get_child(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The live child, or None when it does not exist."""
    try:
        live: dict[str, Any] = _request(api, f"get {kind} {namespace}/{name}", "GET",
                                        CHILD_KINDS[kind].path(namespace, name))  # fmt: skip
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    return live


def apply_child(api: client.ApiClient, desired: dict[str, Any]) -> None:
    """Server-side apply with our field manager, forcing ownership of the fields we set."""
    kind, metadata = desired["kind"], desired["metadata"]
    _request(
        api,
        f"apply {kind} {metadata['namespace']}/{metadata['name']}",
        "PATCH",
        CHILD_KINDS[kind].path(metadata["namespace"], metadata["name"]),
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
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
        _request(api, f"delete {kind} {namespace}/{name}", "DELETE", CHILD_KINDS[kind].path(namespace, name),
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
