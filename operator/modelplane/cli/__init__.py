"""The `modelplane` command line: the planner and renderer offline, for people and GitOps pipelines."""

from modelplane.cli.app import app, main

__all__ = ["app", "main"]
