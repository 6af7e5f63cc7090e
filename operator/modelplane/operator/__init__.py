"""The kopf operator: a thin shell that feeds cluster state to the planner and renderer and applies the result."""
