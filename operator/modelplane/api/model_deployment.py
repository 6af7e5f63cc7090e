"""ModelDeployment: a model to serve, with the load it must carry and where it may run."""

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from modelplane.api.base import (
    ARCHITECTURE_BOUNDS_MARKER,
    CEL,
    DNS_SUBDOMAIN,
    FREE_FORM_MARKER,
    JsonDict,
    ObjectMeta,
    WireModel,
)
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
        json_schema_extra={
            FREE_FORM_MARKER: {
                "num_attention_heads": {"type": "integer", "minimum": 1},
                "quantization_config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            ARCHITECTURE_BOUNDS_MARKER: True,
        },
    )


class Parallelism(WireModel):
    tensor_parallel: int | None = Field(default=None, ge=1, le=64)
    pipeline_parallel: int | None = Field(default=None, ge=1, le=64)


class Placement(WireModel):
    strategy: Strategy = Strategy.CHEAPEST
    pools: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, min_length=1, max_length=100, description="Only these GPUNodePools."
    )
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
    # Bounded: the API server answered 500 for maxUnavailable 100000000000 (past int32), after admission.
    max_unavailable: int = Field(default=1, ge=0, le=100_000)


POWERS_OF_TWO = (1, 2, 4, 8, 16, 32, 64)
PRE_QUANTIZED_FORMATS = ("awq", "gptq")
TP_RULE: JsonDict = {
    "rule": "!has(self.parallelism) || !has(self.parallelism.tensorParallel)"
    " || ((has(self.model.architecture) && has(self.model.architecture.num_attention_heads))"
    " ? int(self.model.architecture.num_attention_heads) % self.parallelism.tensorParallel == 0"
    " : self.parallelism.tensorParallel in [1, 2, 4, 8, 16, 32, 64])",
    "message": "spec.parallelism.tensorParallel must divide spec.model.architecture.num_attention_heads when that is"
    " given, and be a power of two (1 to 64) otherwise",
    "fieldPath": ".parallelism.tensorParallel",
    "reason": "FieldValueInvalid",
}
PRE_QUANTIZED_RULE: JsonDict = {
    "rule": "!(self.quantization in ['awq', 'gptq']) || self.model.name.lowerAscii().contains(self.quantization)"
    " || (has(self.model.architecture) && has(self.model.architecture.quantization_config))",
    "message": "quantization awq/gptq needs a pre-quantized checkpoint: model.name must name it (contain awq or gptq)"
    " or model.architecture must carry its quantization_config",
    "fieldPath": ".quantization",
    "reason": "FieldValueInvalid",
}


ENV_UNIQUE_RULE: JsonDict = {
    "rule": "self.all(e, self.filter(f, f.name == e.name).size() == 1)",
    "message": "env names must be unique: the container would get only the last of each",
    "reason": "FieldValueDuplicate",
}
NAME_RULE: JsonDict = {
    "rule": "self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    "message": "metadata.name must be at most 52 characters, lowercase letters, digits and '-', starting with a"
    " letter: it names the Service (a DNS-1035 label) and a LeaderWorkerSet's StatefulSets, whose"
    " controller-revision-hash label (name + '-' + 10 characters) must fit in 63",
    "reason": "FieldValueInvalid",
}
MAX_NAME = 52
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def _tp_allowed(tp: int, architecture: dict[str, JsonValue]) -> bool:
    """TP_RULE: attention heads are split evenly across TP ranks; without them, only the usual powers of two."""
    if "num_attention_heads" not in architecture:
        return tp in POWERS_OF_TWO
    heads = architecture["num_attention_heads"]
    return type(heads) is int and heads % tp == 0


class ModelDeploymentSpec(WireModel):
    model_config = ConfigDict(json_schema_extra={CEL: [TP_RULE, PRE_QUANTIZED_RULE]})

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
    # Printable ASCII without spaces: `\s` would mean Unicode whitespace to Python but ASCII only to the API
    # server's RE2, which then admitted an NBSP the container runtime refuses. Image references are ASCII.
    image: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^[!-~]+$")
    env: list[EnvVar] = Field(default_factory=list, max_length=100, json_schema_extra={CEL: [ENV_UNIQUE_RULE]})
    extra_args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=100, description="More runtime flags; flags the plan sets are refused."
    )
    resources: ResourceExtras | None = None
    hf_token_secret_ref: SecretKeyRef | None = None
    model_cache: ModelCache | None = None
    service_type: ServiceType = ServiceType.CLUSTER_IP
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None

    @model_validator(mode="after")
    def _mirror_admission_rules(self) -> "ModelDeploymentSpec":
        """The CRD's CEL rules, so the CLI refuses what the API server would."""
        architecture = self.model.architecture or {}
        tp = self.parallelism.tensor_parallel if self.parallelism else None
        if tp is not None and not _tp_allowed(tp, architecture):
            raise ValueError(str(TP_RULE["message"]))
        quantization = self.quantization.value
        if (quantization in PRE_QUANTIZED_FORMATS and quantization not in self.model.name.lower()
                and "quantization_config" not in architecture):  # fmt: skip
            raise ValueError(str(PRE_QUANTIZED_RULE["message"]))
        return self

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
    def _name_fits_the_children(cls, metadata: ObjectMeta) -> ObjectMeta:
        """NAME_RULE, as the API server applies it at the CRD's root: children are named after the deployment."""
        if len(metadata.name) > MAX_NAME or re.match(NAME_PATTERN, metadata.name) is None:
            raise ValueError(str(NAME_RULE["message"]))
        return metadata
