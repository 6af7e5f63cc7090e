"""modelplane: plan, render and operate LLM serving on Kubernetes GPU node pools."""

__version__ = "0.1.0"
