"""Wire types: the custom resources' pydantic models and the plan contract shared by CLI and status."""

from modelplane.api.base import API_GROUP, API_VERSION, APIVERSION
from modelplane.api.gpu_node_pool import GPUNodePool, GPUNodePoolSpec, Location
from modelplane.api.model_deployment import Locality, ModelDeployment, ModelDeploymentSpec, Strategy
from modelplane.api.serving import KvCacheDtype, Quantization, Runtime

__all__ = [
    "APIVERSION",
    "API_GROUP",
    "API_VERSION",
    "GPUNodePool",
    "GPUNodePoolSpec",
    "KvCacheDtype",
    "Locality",
    "Location",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "Quantization",
    "Runtime",
    "Strategy",
]
