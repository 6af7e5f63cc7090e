"""Model catalog ConfigMaps: listed and watched in the operator's own namespace only (a namespaced Role suffices).

kopf watches a resource in every namespace the operator serves, which for ConfigMaps would need cluster-wide read
access to them; this one watch needs `get, list, watch` on configmaps in one namespace.
"""

import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from modelplane.api.base import MODEL_CATALOG_LABEL
from modelplane.kube.client import mapped_errors
from modelplane.kube.errors import KubeError

WATCH_SECONDS = 300
CLIENT_TIMEOUT_SECONDS = 330
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


def _plain(api: client.ApiClient, item: Any) -> dict[str, Any]:
    plain: dict[str, Any] = api.sanitize_for_serialization(item)
    return plain


def watch_catalog(
    api: client.ApiClient,
    namespace: str,
    on_change: Callable[[list[dict[str, Any]]], None],
    on_error: Callable[[KubeError], None],
    stop: threading.Event,
) -> None:
    """Blocking: hand every catalog ConfigMap to `on_change`, again after each change, until `stop` is set.

    A list, then a watch from the list's resourceVersion; any failure (the version expired, the API server went
    away) is reported to `on_error` and followed by a fresh list after a growing pause.
    """
    core = client.CoreV1Api(api)
    selector = f"{MODEL_CATALOG_LABEL}=true"
    failures = 0
    while not stop.is_set():
        try:
            with mapped_errors(f"list catalog ConfigMaps in {namespace}"):
                listed = core.list_namespaced_config_map(namespace, label_selector=selector,
                                                         _request_timeout=CLIENT_TIMEOUT_SECONDS)  # fmt: skip
            current = {item.metadata.name: _plain(api, item) for item in listed.items}
            on_change(list(current.values()))
            failures = 0
            version = listed.metadata.resource_version
            stream = watch.Watch()
            with mapped_errors(f"watch catalog ConfigMaps in {namespace}"):
                for event in stream.stream(core.list_namespaced_config_map, namespace, label_selector=selector,
                                           resource_version=version, timeout_seconds=WATCH_SECONDS,
                                           _request_timeout=CLIENT_TIMEOUT_SECONDS):  # fmt: skip
                    if stop.is_set():
                        stream.stop()
                        return
                    kind, item = event["type"], event["object"]
                    if kind == "ERROR":
                        raise KubeError(f"watch catalog ConfigMaps in {namespace}: {item}")
                    name = item.metadata.name
                    if kind == "DELETED":
                        current.pop(name, None)
                    else:
                        current[name] = _plain(api, item)
                    on_change(list(current.values()))
        except KubeError as error:
            on_error(error)
            stop.wait(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
            failures += 1
