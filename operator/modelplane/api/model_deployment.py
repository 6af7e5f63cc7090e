"""ModelDeployment: a model to serve, with the load it must carry and where it may run."""

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, JsonValue, field_validator

from modelplane.api.base import DNS_LABEL, DNS_SUBDOMAIN, ObjectMeta, WireModel
from modelplane.api.status import ModelDeploymentStatus

ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
MAX_MODEL_LEN = 2_097_152


class Quantization(StrEnum):
    """Weight precision. awq and gptq mean a checkpoint that is already quantized to 4 bits."""

    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    AWQ = "awq"
    GPTQ = "gptq"


class KvCacheDtype(StrEnum):
    AUTO = "auto"
    FP8 = "fp8"


class Runtime(StrEnum):
    VLLM = "vllm"
    TENSORRT_LLM = "tensorrt-llm"


class Strategy(StrEnum):
    CHEAPEST = "cheapest"
    FEWEST_GPUS = "fewest-gpus"
    FASTEST = "fastest"


class Locality(StrEnum):
    ANY = "any"
    PREFER_ON_PREM = "prefer-on-prem"
    ON_PREM_ONLY = "on-prem-only"
    CLOUD_ONLY = "cloud-only"


class Mode(StrEnum):
    APPLY = "Apply"
    PLAN_ONLY = "PlanOnly"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ModelSource(WireModel):
    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$",
        description="Hugging Face repo id the server loads (or a catalog alias).",
    )
    architecture: dict[str, JsonValue] | None = Field(
        default=None,
        description="The model's config.json fields, verbatim; required when the name is not in the catalog.",
    )


class Parallelism(WireModel):
    tensor_parallel: int | None = Field(default=None, ge=1, le=64)
    pipeline_parallel: int | None = Field(default=None, ge=1, le=64)


class Placement(WireModel):
    strategy: Strategy = Strategy.CHEAPEST
    pools: list[str] | None = Field(default=None, max_length=100, description="Only these GPUNodePools.")
    locality: Locality = Locality.ANY


class EnvVar(WireModel):
    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME)
    value: str = Field(default="", max_length=32768)


class SecretKeyRef(WireModel):
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(default="token", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class ModelCache(WireModel):
    pvc_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    mount_path: str = Field(default="/root/.cache/huggingface", max_length=1024, pattern=r"^/[^\x00]*$")


class ResourceExtras(WireModel):
    cpu: str | None = Field(default=None, pattern=QUANTITY, max_length=32)
    memory: str | None = Field(default=None, pattern=QUANTITY, max_length=32)


class PodDisruptionBudgetSpec(WireModel):
    max_unavailable: int = Field(default=1, ge=0)


class ModelDeploymentSpec(WireModel):
    model: ModelSource
    quantization: Quantization = Quantization.AUTO
    kv_cache_dtype: KvCacheDtype = KvCacheDtype.AUTO
    runtime: Runtime = Runtime.VLLM
    max_model_len: int = Field(ge=1, le=MAX_MODEL_LEN, description="Longest sequence (prompt + output).")
    max_concurrency: int = Field(
        default=1, ge=1, le=65536, description="Sequences at full maxModelLen the KV cache must hold at once."
    )
    replicas: int = Field(default=1, ge=0, le=1000)
    parallelism: Parallelism | None = None
    gpu_memory_utilization: int = Field(default=90, ge=10, le=99, description="Percent of GPU memory to use.")
    placement: Placement = Field(default_factory=Placement)
    mode: Mode = Mode.APPLY
    image: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^[^\s]+$")
    env: list[EnvVar] = Field(default_factory=list, max_length=100)
    extra_args: list[str] = Field(default_factory=list, max_length=100)
    resources: ResourceExtras | None = None
    hf_token_secret_ref: SecretKeyRef | None = None
    model_cache: ModelCache | None = None
    service_type: ServiceType = ServiceType.CLUSTER_IP
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None

    @field_validator("extra_args")
    @classmethod
    def _bounded_args(cls, args: list[str]) -> list[str]:
        for arg in args:
            if len(arg) > 4096:
                raise ValueError("each extraArgs entry must be at most 4096 characters")
        return args

    @field_validator("env")
    @classmethod
    def _unique_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        names = [var.name for var in env]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate env names: {', '.join(duplicates)}")
        return env


class ModelDeployment(WireModel):
    api_version: Literal["modelplane.dev/v1alpha1"] = "modelplane.dev/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name_is_dns_label(cls, metadata: ObjectMeta) -> ObjectMeta:
        """Children are named after the deployment and Service names must be DNS labels."""
        if len(metadata.name) > 52 or not re.match(DNS_LABEL, metadata.name):
            raise ValueError(
                "metadata.name must be a DNS label of at most 52 characters "
                "(lowercase letters, digits, '-'), since Services are named after it"
            )
        return metadata
