"""Status writes and events for our own kinds."""

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.kube.client import call

REPORTING_COMPONENT = "modelplane"


def patch_status(api: client.ApiClient, plural: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
    """Merge-patch the status subresource (only the keys given)."""
    custom = client.CustomObjectsApi(api)
    body = {"status": status}
    if namespace is None:
        call(f"patch status of {plural} {name}", custom.patch_cluster_custom_object_status,
             API_GROUP, API_VERSION, plural, name, body)  # fmt: skip
    else:
        call(f"patch status of {plural} {namespace}/{name}", custom.patch_namespaced_custom_object_status,
             API_GROUP, API_VERSION, namespace, plural, name, body)  # fmt: skip


def post_event(api: client.ApiClient, involved: dict[str, Any], event_type: str, reason: str, message: str) -> None:
    """A core/v1 Event about one of our objects: only for transitions a person should see."""
    metadata = involved["metadata"]
    now = datetime.now(UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{metadata['name']}.", namespace=metadata.get("namespace")),
        involved_object=client.V1ObjectReference(
            api_version=involved["apiVersion"], kind=involved["kind"], name=metadata["name"],
            namespace=metadata.get("namespace"), uid=metadata.get("uid"),
        ),
        type=event_type, reason=reason, message=message[:1024],
        first_timestamp=now, last_timestamp=now, count=1,
        source=client.V1EventSource(component=REPORTING_COMPONENT),
        reporting_component=REPORTING_COMPONENT, reporting_instance=REPORTING_COMPONENT,
    )  # fmt: skip
    call(f"post event {reason}", client.CoreV1Api(api).create_namespaced_event,
         metadata.get("namespace") or "default", event)  # fmt: skip
