"""Errors of the catalog layer."""


class CatalogError(Exception):
    """Raised when catalog data or a user-supplied architecture is malformed or names an unknown entry."""


class UnknownModelError(CatalogError):
    """Raised when a model name is neither in the catalog nor accompanied by an architecture."""


class UnknownGpuError(CatalogError):
    """Raised when a GPU id is not in the GPU catalog."""
