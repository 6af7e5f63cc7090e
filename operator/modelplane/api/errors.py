"""Errors of the API layer."""


class InvalidObjectError(ValueError):
    """Raised when a document is not a valid ModelDeployment or GPUNodePool; the message names the field."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        self.where, self.field, self.problem = where, field, problem
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
