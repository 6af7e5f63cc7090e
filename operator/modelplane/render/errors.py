"""Errors of the render layer."""


class RenderError(ValueError):
    """Raised when a deployment's serving settings cannot be rendered; the message names the field and the fix."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


class TemplateOutputError(RuntimeError):
    """Raised when a template produces objects that break an invariant: a bug in modelplane, not user input."""
