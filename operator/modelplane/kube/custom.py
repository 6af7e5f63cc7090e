"""Status writes and events for our own kinds."""

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.kube.objects import request

REPORTING_COMPONENT = "modelplane"


def patch_status(api: client.ApiClient, plural: str, namespace: str | None, name: str, status: dict[str, Any]) -> str:
    """Merge-patch the status subresource (only the keys given); returns the object's new resourceVersion."""
    scope = f"/namespaces/{namespace}" if namespace else ""
    path = f"/apis/{API_GROUP}/{API_VERSION}{scope}/{plural}/{name}/status"
    stored = request(api, f"patch status of {plural} {namespace or ''}/{name}", "PATCH", path,
                     headers={"Content-Type": "application/merge-patch+json"}, body={"status": status})  # fmt: skip
    return str(stored["metadata"]["resourceVersion"])


def post_event(api: client.ApiClient, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
    """A core/v1 Event about one of our objects: only for transitions a person should see."""
    metadata = involved["metadata"]
    namespace = metadata.get("namespace") or "default"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": metadata["name"],
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": REPORTING_COMPONENT},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": REPORTING_COMPONENT,
    }
    request(api, f"post event {reason}", "POST", f"/api/v1/namespaces/{namespace}/events", body=event)
