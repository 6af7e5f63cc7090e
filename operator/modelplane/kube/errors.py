"""Errors of the kube layer, by meaning, mapped from the client's ApiException once, at the boundary.

KubeError                       anything the API server refused or failed
├── GoneError                   404 / 410: the object (or its namespace) is not there
├── InvalidError                400 / 422: the request itself is wrong; retrying will not help
└── TransientKubeError          worth retrying with backoff
    ├── ConflictError           409: someone wrote first (resourceVersion, an apply conflict)
    ├── ForbiddenError          401 / 403: RBAC caches unsynced after a restart, a terminating namespace
    ├── ThrottledError          429: priority and fairness asked us to slow down
    └── UnreachableError        5xx, a timeout, no connection
"""


class KubeError(Exception):
    """Raised when the API server refuses or fails a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GoneError(KubeError):
    """The object, or the namespace it would live in, does not exist."""


class InvalidError(KubeError):
    """The API server rejected the request's content (400, 422); retrying unchanged will not help."""


class TransientKubeError(KubeError):
    """Raised for failures worth retrying."""


class ConflictError(TransientKubeError):
    """409: the object changed since it was read, or another manager owns a field."""


class ForbiddenError(TransientKubeError):
    """401/403. Retried: while an API server restarts its authenticator and RBAC caches refuse allowed
    requests for a moment, and a terminating namespace refuses new content until it is gone. A permission that
    is really missing keeps retrying with capped backoff and a warning each time, as controller-runtime does."""


class ThrottledError(TransientKubeError):
    """429: API priority and fairness asked the client to back off."""


class UnreachableError(TransientKubeError):
    """No usable answer: a server error (5xx), a timeout, or no connection."""
