"""Build the Kubernetes client once: in-cluster when running in a pod, else the kubeconfig."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from modelplane.kube.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    KubeError,
    ThrottledError,
    UnreachableError,
)

ERRORS_BY_STATUS: dict[int, type[KubeError]] = {
    400: InvalidError, 401: ForbiddenError, 403: ForbiddenError, 404: GoneError, 408: UnreachableError,
    409: ConflictError, 410: GoneError, 422: InvalidError, 425: ThrottledError, 429: ThrottledError,
}  # fmt: skip
REQUEST_TIMEOUT_SECONDS = 30


def make_api_client(pool_size: int = 16) -> client.ApiClient:
    """An ApiClient with a connection pool sized for concurrent handlers."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = 3
    return client.ApiClient(configuration)


@contextmanager
def mapped_errors(action: str) -> Iterator[None]:
    """Map client exceptions to our KubeError tree, saying what we were doing."""
    try:
        yield
    except ApiException as error:
        reason = _api_message(error)
        message = f"{action}: {error.status} {reason}"
        status = int(error.status or 0)
        kind = ERRORS_BY_STATUS.get(status, UnreachableError if status >= 500 else KubeError)
        raise kind(message, status) from None
    except (HTTPError, OSError) as error:
        raise UnreachableError(f"{action}: {error}") from None


def _api_message(error: ApiException) -> str:
    try:
        body: dict[str, Any] = json.loads(error.body or "{}")
    except ValueError:
        return str(error.reason)
    return str(body.get("message") or error.reason)
