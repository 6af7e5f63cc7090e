"""Errors of the planning layer."""


class PlanningError(Exception):
    """Raised when a deployment cannot be planned because its input is malformed (not merely infeasible)."""
