"""Build the Kubernetes client once: in-cluster when running in a pod, else the kubeconfig."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from modelplane.kube.errors import InvalidChildError, KubeError, TransientKubeError

# 401 and 403 included: while an API server restarts, its authenticator and RBAC caches are briefly unsynced
# and refuse requests that are allowed. A permission that is really missing keeps retrying with capped backoff
# and a warning each time, as controller-runtime requeues any error.
TRANSIENT_STATUSES = {401, 403, 408, 409, 425, 429, 500, 502, 503, 504}
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
        if error.status in TRANSIENT_STATUSES:
            raise TransientKubeError(message, error.status) from None
        if error.status == 422:
            raise InvalidChildError(message, error.status) from None
        raise KubeError(message, error.status) from None
    except (HTTPError, OSError) as error:
        raise TransientKubeError(f"{action}: {error}") from None


def _api_message(error: ApiException) -> str:
    try:
        body: dict[str, Any] = json.loads(error.body or "{}")
    except ValueError:
        return str(error.reason)
    return str(body.get("message") or error.reason)
