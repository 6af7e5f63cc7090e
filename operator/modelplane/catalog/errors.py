"""Errors of the catalog layer."""


class CatalogError(Exception):
    """Raised when catalog data or a user-supplied architecture is malformed or names an unknown entry."""


class UnknownModelError(CatalogError):
    """Raised when a model name is neither in the catalog nor accompanied by an architecture."""


class UnsupportedArchitectureError(CatalogError):
    """Raised when a config.json describes layers the planner does not model (it refuses rather than guesses)."""


class ModelSourceError(CatalogError):
    """Raised when a model's own files (Hub, mirror, HF cache or a local directory) cannot be read."""


class UnknownGpuError(CatalogError):
    """Raised when a GPU id is not in the GPU catalog."""
