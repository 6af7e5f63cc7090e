"""Builders for API objects in tests: real pydantic validation, no mocks."""

from typing import Any

from modelplane.api.documents import parse_object
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.model_deployment import ModelDeployment


def deployment(name: str = "chat", namespace: str = "default", labels: dict[str, str] | None = None,
               **spec: Any) -> ModelDeployment:  # fmt: skip
    """A ModelDeployment from camelCase spec fields, validated exactly as a file would be."""
    spec.setdefault("model", {"name": "meta-llama/Llama-3.1-8B-Instruct"})
    spec.setdefault("maxModelLen", 8192)
    body = {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }
    parsed = parse_object(body, "test")
    assert isinstance(parsed, ModelDeployment)
    return parsed


def pool(name: str, gpu: str, gpus_per_node: int = 8, nodes: int = 2, location: str = "cloud",
         cost: str | None = "2.00", **extra: Any) -> GPUNodePool:  # fmt: skip
    spec: dict[str, Any] = {"gpu": gpu, "gpusPerNode": gpus_per_node, "nodes": nodes, "location": location, **extra}
    if cost is not None:
        spec["costPerGpuHour"] = cost
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": name}, "spec": spec}
    parsed = parse_object(body, "test")
    assert isinstance(parsed, GPUNodePool)
    return parsed


# Two deployment specs the render tests share: one GPU on one node, and 16 GPUs across two nodes (TP8×PP2).
SINGLE: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "maxModelLen": 4096}
MULTI_NODE: dict[str, Any] = {
    "model": {"name": "meta-llama/Llama-3.1-405B-Instruct"},
    "quantization": "bf16",
    "maxModelLen": 8192,
    "parallelism": {"tensorParallel": 8, "pipelineParallel": 2},
}
