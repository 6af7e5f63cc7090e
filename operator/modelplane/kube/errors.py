"""Errors of the kube layer, mapped from the client's ApiException at the boundary."""


class KubeError(Exception):
    """Raised when the API server refuses or fails a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientKubeError(KubeError):
    """Raised for failures worth retrying: timeouts, 409 conflicts, 429 throttling, 5xx."""


class InvalidChildError(KubeError):
    """Raised when the API server rejects a rendered child (422): retrying will not help."""
