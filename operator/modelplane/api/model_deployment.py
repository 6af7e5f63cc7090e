"""ModelDeployment: a model to serve, with the load it must carry and where it may run."""

import re
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
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
from modelplane.api.serving import KvCacheDtype, Quantization, Runtime
from modelplane.api.status import ModelDeploymentStatus

ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
MAX_MODEL_LEN = 2_097_152


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


class LocalObjectReference(WireModel):
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)


URL = r"^https?://[!-~]+$"
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[!-~]*)?$"


class HubWeights(WireModel):
    """The Hugging Face Hub, or a mirror with its URL layout (HF_ENDPOINT)."""

    endpoint: str | None = Field(default=None, max_length=2048, pattern=URL,
                                 description="HF_ENDPOINT: a Hub mirror inside the network.")  # fmt: skip


class S3Weights(WireModel):
    """S3-compatible object storage: the objects under the prefix are the model's files."""

    uri: str = Field(max_length=2048, pattern=S3_URI, description="s3://bucket/prefix of the model's files.")
    endpoint: str | None = Field(default=None, max_length=2048, pattern=URL,
                                 description="The object store's URL (on-prem stores); unset: AWS S3.")  # fmt: skip
    region: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    credentials_secret_ref: LocalObjectReference | None = Field(
        default=None, description="A Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; unset: anonymous."
    )


class PvcWeights(WireModel):
    """A PersistentVolumeClaim that already holds the model's files (staged by hand, air-gapped)."""

    claim_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    path: str = Field(default="", max_length=1024, pattern=r"^([^/\x00][^\x00]*)?$",
                      description="The directory of the model's files inside the volume; empty: its root.")  # fmt: skip


class ImageWeights(WireModel):
    """An OCI image (artifact) whose files are the model's, mounted as an image volume (Kubernetes 1.33+:
    beta, behind the ImageVolume feature gate until it is on by default)."""

    reference: str = Field(min_length=1, max_length=512, pattern=r"^[!-~]+$")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    path: str = Field(default="", max_length=1024, pattern=r"^([^/\x00][^\x00]*)?$",
                      description="The directory of the model's files inside the image; empty: its root.")  # fmt: skip


ONE_SOURCE_RULE: JsonDict = {
    "rule": "[has(self.hub), has(self.s3), has(self.pvc), has(self.image)].filter(x, x).size() == 1",
    "message": "name exactly one source of the weights: hub, s3, pvc or image",
    "reason": "FieldValueInvalid",
}


class WeightsSource(WireModel):
    """Where the weights come from; unset means the Hugging Face Hub."""

    model_config = ConfigDict(json_schema_extra={CEL: [ONE_SOURCE_RULE]})

    hub: HubWeights | None = None
    s3: S3Weights | None = None
    pvc: PvcWeights | None = None
    image: ImageWeights | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "WeightsSource":
        if sum(source is not None for source in (self.hub, self.s3, self.pvc, self.image)) != 1:
            raise ValueError(str(ONE_SOURCE_RULE["message"]))
        return self


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
    revision: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][-._/A-Za-z0-9]*$",
        description="The checkpoint's pinned revision (a commit hash, tag or branch).",
    )  # fmt: skip
    source: WeightsSource | None = Field(default=None, description="Where the weights come from; unset: the Hub.")


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


class CacheAccessMode(StrEnum):
    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE = "ReadWriteOnce"


class CacheDeletionPolicy(StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class ManagedCache(WireModel):
    """A cache the operator creates: one PVC per (model, revision, source, pool), filled once by a download Job
    and mounted read-only by every server of that pool, in this namespace."""

    storage_class_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN,
        description="Unset: the cluster's default StorageClass.",
    )  # fmt: skip
    access_mode: CacheAccessMode = Field(
        default=CacheAccessMode.READ_WRITE_MANY,
        description="ReadWriteMany: one volume for every server of the pool. ReadWriteOnce: the volume attaches to"
        " one node, so it is refused for plans that span more than one node.",
    )
    size: str | None = Field(
        default=None, pattern=QUANTITY, max_length=32,
        description="Unset: the checkpoint's bytes plus a margin (catalog/data/weights.yaml).",
    )  # fmt: skip
    deletion_policy: CacheDeletionPolicy = Field(
        default=CacheDeletionPolicy.DELETE,
        description="Delete: the cache goes with the last ModelDeployment that uses it. Retain: it stays.",
    )


CACHE_FORM_RULE: JsonDict = {
    "rule": "has(self.pvcName) != has(self.managed)",
    "message": "modelCache is either pvcName (a PVC you provide) or managed (one the operator creates), not both",
    "reason": "FieldValueInvalid",
}


class ModelCache(WireModel):
    model_config = ConfigDict(json_schema_extra={CEL: [CACHE_FORM_RULE]})

    pvc_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    mount_path: str = Field(
        default="/root/.cache/huggingface", max_length=1024, pattern=r"^/[^\x00]*$",
        description="Where pvcName is mounted (HF_HOME); a managed cache is mounted at /weights.",
    )  # fmt: skip
    managed: ManagedCache | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "ModelCache":
        if (self.pvc_name is None) == (self.managed is None):
            raise ValueError(str(CACHE_FORM_RULE["message"]))
        return self


class ResourceExtras(WireModel):
    cpu: str | None = Field(default=None, pattern=QUANTITY, max_length=32)
    memory: str | None = Field(default=None, pattern=QUANTITY, max_length=32)


class PodDisruptionBudgetSpec(WireModel):
    # Bounded: the API server answered 500 for maxUnavailable 100000000000 (past int32), after admission.
    max_unavailable: int = Field(default=1, ge=0, le=100_000)


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


LabelText = Annotated[str, Field(max_length=317)]
"""A label key (a 253-character DNS prefix, '/', a 63-character name) or value; the API server checks the syntax."""
VALUES_RULE: JsonDict = {
    "rule": "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0"
    " : !has(self.values) || size(self.values) == 0",
    "message": "values must be non-empty for In and NotIn and empty for Exists and DoesNotExist",
    "fieldPath": ".values",
    "reason": "FieldValueInvalid",
}
NODE_VALUES_RULE: JsonDict = {
    "rule": "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0"
    " : self.operator in ['Gt', 'Lt'] ? has(self.values) && size(self.values) == 1"
    " : !has(self.values) || size(self.values) == 0",
    "message": "values must be non-empty for In and NotIn, one integer for Gt and Lt, empty for Exists and"
    " DoesNotExist",
    "fieldPath": ".values",
    "reason": "FieldValueInvalid",
}


def _check_values(operator: str, values: list[str], rule: JsonDict) -> None:
    """VALUES_RULE and NODE_VALUES_RULE as the API server applies them, for the CLI."""
    wanted = {"In": None, "NotIn": None, "Gt": 1, "Lt": 1}.get(operator, 0)
    if (not values) if wanted is None else len(values) != wanted:
        raise ValueError(str(rule["message"]))


class LabelSelectorRequirement(WireModel):
    model_config = ConfigDict(json_schema_extra={CEL: [VALUES_RULE]})

    key: LabelText = Field(min_length=1)
    operator: SelectorOperator
    values: list[LabelText] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> "LabelSelectorRequirement":
        _check_values(self.operator.value, self.values, VALUES_RULE)
        return self


class LabelSelector(WireModel):
    """Kubernetes' LabelSelector; empty selects everything (in NetworkPolicy peers: every pod or namespace)."""

    match_labels: dict[str, LabelText] = Field(default_factory=dict, max_length=50)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=20)


CIDR = r"^[0-9a-fA-F:.]{2,45}/[0-9]{1,3}$"
IP_BLOCK_RULE: JsonDict = {
    "rule": "isCIDR(self.cidr) && (!has(self.except) || self.except.all(e, isCIDR(e)"
    " && cidr(e).ip().family() == cidr(self.cidr).ip().family() && cidr(self.cidr).containsCIDR(e)"
    " && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",
    "message": "cidr must be a CIDR, and each except entry a CIDR strictly inside it",
    "reason": "FieldValueInvalid",
}


def _network(text: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(text, strict=False)
    except ValueError:
        raise ValueError(str(IP_BLOCK_RULE["message"])) from None


class IPBlock(WireModel):
    """Clients by address, as NetworkPolicy's ipBlock: for sources outside the cluster (a load balancer's)."""

    model_config = ConfigDict(json_schema_extra={CEL: [IP_BLOCK_RULE]})

    cidr: str = Field(pattern=CIDR, max_length=49)
    except_: list[Annotated[str, Field(pattern=CIDR, max_length=49)]] = Field(
        default_factory=list, alias="except", max_length=20
    )

    @model_validator(mode="after")
    def _except_inside_cidr(self) -> "IPBlock":
        """IP_BLOCK_RULE, for the CLI."""
        block = _network(self.cidr)
        for entry in map(_network, self.except_):
            if entry.version != block.version or not entry.subnet_of(block) or entry.prefixlen <= block.prefixlen:  # type: ignore[arg-type]
                raise ValueError(str(IP_BLOCK_RULE["message"]))
        return self


PEER_RULE: JsonDict = {
    "rule": "has(self.ipBlock) ? !has(self.namespaceSelector) && !has(self.podSelector)"
    " : has(self.namespaceSelector) || has(self.podSelector)",
    "message": "a peer is an ipBlock alone, or a namespaceSelector and/or a podSelector",
    "reason": "FieldValueInvalid",
}


class NetworkPeer(WireModel):
    """One allowed client, as a NetworkPolicy peer: a podSelector alone means pods of this namespace."""

    model_config = ConfigDict(json_schema_extra={CEL: [PEER_RULE]})

    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    @model_validator(mode="after")
    def _one_kind_of_peer(self) -> "NetworkPeer":
        selectors = self.namespace_selector is not None or self.pod_selector is not None
        if selectors == (self.ip_block is not None):
            raise ValueError(str(PEER_RULE["message"]))
        return self


class NetworkSpec(WireModel):
    allow_from: list[NetworkPeer] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Clients allowed to reach the serving port. Unset: pods of the same namespace (ClusterIP), or"
        " any source when serviceType is NodePort or LoadBalancer.",
    )


USER_ID = Field(default=None, ge=1, le=2_147_483_647)
GROUP_ID = Field(default=None, ge=0, le=2_147_483_647)
NON_ROOT_RULE: JsonDict = {
    "rule": "self.runAsNonRoot || (!has(self.runAsUser) && !has(self.runAsGroup) && !has(self.fsGroup))",
    "message": "runAsUser, runAsGroup and fsGroup belong to the non-root mode: set runAsNonRoot: true",
    "reason": "FieldValueInvalid",
}


class PodSecurity(WireModel):
    """The non-root mode: with runAsNonRoot every serving pod passes Pod Security "restricted"."""

    model_config = ConfigDict(json_schema_extra={CEL: [NON_ROOT_RULE]})

    run_as_non_root: bool = False
    run_as_user: int | None = USER_ID
    run_as_group: int | None = GROUP_ID
    fs_group: int | None = GROUP_ID

    @model_validator(mode="after")
    def _ids_need_non_root(self) -> "PodSecurity":
        if not self.run_as_non_root and (self.run_as_user, self.run_as_group, self.fs_group) != (None, None, None):
            raise ValueError(str(NON_ROOT_RULE["message"]))
        return self


class NodeSelectorRequirement(WireModel):
    model_config = ConfigDict(json_schema_extra={CEL: [NODE_VALUES_RULE]})

    key: LabelText = Field(min_length=1)
    operator: NodeSelectorOperator
    values: list[LabelText] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> "NodeSelectorRequirement":
        _check_values(self.operator.value, self.values, NODE_VALUES_RULE)
        return self


class NodeSelectorTerm(WireModel):
    match_expressions: list[NodeSelectorRequirement] = Field(default_factory=list, max_length=20)
    match_fields: list[NodeSelectorRequirement] = Field(default_factory=list, max_length=20)


class RequiredNodeTerms(WireModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=20)


class PreferredNodeTerm(WireModel):
    weight: int = Field(ge=1, le=100)
    preference: NodeSelectorTerm


class NodeAffinity(WireModel):
    """ANDed with the pool's nodeSelector by the scheduler: it narrows where pods go, never widens it."""

    required_during_scheduling_ignored_during_execution: RequiredNodeTerms | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredNodeTerm] = Field(
        default_factory=list, max_length=20
    )


class PodAffinityTerm(WireModel):
    label_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    namespaces: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=20)
    topology_key: str = Field(min_length=1, max_length=317)


class WeightedPodAffinityTerm(WireModel):
    weight: int = Field(ge=1, le=100)
    pod_affinity_term: PodAffinityTerm


class PodAntiAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(
        default_factory=list, max_length=20
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, max_length=20
    )


class Affinity(WireModel):
    node_affinity: NodeAffinity | None = None
    pod_anti_affinity: PodAntiAffinity | None = None


class PodTemplate(WireModel):
    """What a cluster may need of the serving pods; nothing here can change the plan's GPUs, pool or command."""

    security_context: PodSecurity | None = None
    runtime_class_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    priority_class_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list, max_length=20)
    affinity: Affinity | None = None


DURATION = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"
DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_LATENCY_SECONDS = 3600.0
DURATION_RULE: JsonDict = {
    "rule": "duration(self) > duration('0s') && duration(self) <= duration('1h')",
    "message": "must be a duration above 0 and at most 1h, such as 800ms, 1.5s or 2m",
    "reason": "FieldValueInvalid",
}
DECIMAL = r"^[0-9]{1,7}(\.[0-9]{1,6})?$"
"""A decimal string, as Kubernetes APIs carry fractions (spec.workload.requestsPerSecond, autoscaling.target)."""
RATE = DECIMAL
MAX_REQUESTS_PER_SECOND = 1_000_000.0
RATE_RULE: JsonDict = {
    "rule": "double(self) > 0.0 && double(self) <= 1000000.0",
    "message": 'must be a decimal string above 0 and at most 1000000 requests per second, such as "20" or "0.5"',
    "reason": "FieldValueInvalid",
}


def duration_seconds(text: str) -> float:
    """A Go-style duration string ("800ms", "1.5s", "1m30s") in seconds."""
    return sum(
        float(number) * DURATION_UNITS[unit] for number, _, unit in re.findall(r"([0-9]+(\.[0-9]+)?)(h|ms|m|s)", text)
    )


def _duration(value: str | None) -> str | None:
    if value is not None and not 0 < duration_seconds(value) <= MAX_LATENCY_SECONDS:
        raise ValueError(str(DURATION_RULE["message"]))
    return value


class Workload(WireModel):
    """A typical request and, optionally, the rate they arrive at: what the latency and replica count rest on."""

    input_tokens: int = Field(ge=1, le=MAX_MODEL_LEN, description="Prompt tokens of a typical request.")
    output_tokens: int = Field(ge=1, le=MAX_MODEL_LEN, description="Output tokens of a typical request.")
    requests_per_second: str | None = Field(
        default=None,
        max_length=16,
        pattern=RATE,
        json_schema_extra={CEL: [RATE_RULE]},
        description="Requests per second all replicas together must serve (decimal string); the planner then"
        " chooses the replicas, spec.replicas being the minimum.",
    )

    @field_validator("requests_per_second")
    @classmethod
    def _positive_rate(cls, value: str | None) -> str | None:
        if value is not None and not 0 < float(value) <= MAX_REQUESTS_PER_SECOND:
            raise ValueError(str(RATE_RULE["message"]))
        return value

    @property
    def rate(self) -> float | None:
        return None if self.requests_per_second is None else float(self.requests_per_second)


SLO_NOT_EMPTY_RULE: JsonDict = {
    "rule": "has(self.timeToFirstToken) || has(self.interTokenLatency)",
    "message": "spec.slo needs timeToFirstToken, interTokenLatency or both",
    "reason": "FieldValueRequired",
}


class ServiceLevelObjective(WireModel):
    """Latency targets each replica must meet at its operating point (Go duration strings)."""

    model_config = ConfigDict(json_schema_extra={CEL: [SLO_NOT_EMPTY_RULE]})

    time_to_first_token: str | None = Field(
        default=None,
        max_length=32,
        pattern=DURATION,
        json_schema_extra={CEL: [DURATION_RULE]},
        description="Longest mean time to the first token, e.g. 800ms.",
    )
    inter_token_latency: str | None = Field(
        default=None,
        max_length=32,
        pattern=DURATION,
        json_schema_extra={CEL: [DURATION_RULE]},
        description="Longest mean time between output tokens of a sequence, e.g. 50ms.",
    )

    @field_validator("time_to_first_token", "inter_token_latency")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return _duration(value)

    @model_validator(mode="after")
    def _not_empty(self) -> "ServiceLevelObjective":
        if self.time_to_first_token is None and self.inter_token_latency is None:
            raise ValueError(str(SLO_NOT_EMPTY_RULE["message"]))
        return self


class AutoscalingMetric(StrEnum):
    """The serving runtime's own Prometheus signal the autoscaler follows (names per runtime version:
    catalog/data/runtimes.yaml autoscalingMetrics)."""

    REQUESTS_WAITING = "requests-waiting"
    KV_CACHE_USAGE = "kv-cache-usage"
    RUNNING_REQUESTS = "running-requests"


MAX_IDLE_SECONDS = 86400.0
IDLE_RULE: JsonDict = {
    "rule": "duration(self) >= duration('1s') && duration(self) <= duration('24h')",
    "message": "must be a duration from 1s to 24h, such as 5m or 1h30m",
    "reason": "FieldValueInvalid",
}
TARGET = DECIMAL
TARGET_RULE: JsonDict = {
    "rule": "double(self) > 0.0",
    "message": 'must be a decimal string above 0, such as "4" or "0.8"',
    "reason": "FieldValueInvalid",
}
REPLICA_BOUNDS_RULE: JsonDict = {
    "rule": "self.minReplicas <= self.maxReplicas",
    "message": "spec.autoscaling.minReplicas must be at most maxReplicas",
    "fieldPath": ".minReplicas",
    "reason": "FieldValueInvalid",
}
KV_TARGET_RULE: JsonDict = {
    "rule": "self.metric != 'kv-cache-usage' || !has(self.target) || double(self.target) <= 1.0",
    "message": "spec.autoscaling.target of kv-cache-usage is a fraction of the KV cache: above 0 and at most 1, such"
    ' as "0.8"',
    "fieldPath": ".target",
    "reason": "FieldValueInvalid",
}


class ScaleToZero(WireModel):
    """With no load for idlePeriod the deployment scales to zero replicas and releases its GPUs."""

    idle_period: str = Field(
        default="5m", max_length=32, pattern=DURATION, json_schema_extra={CEL: [IDLE_RULE]},
        description="How long the metric must show no load before the last replica goes (KEDA cooldownPeriod).",
    )  # fmt: skip

    @field_validator("idle_period")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if not 1.0 <= duration_seconds(value) <= MAX_IDLE_SECONDS:
            raise ValueError(str(IDLE_RULE["message"]))
        return value


class Autoscaling(WireModel):
    """A KEDA ScaledObject drives spec.replicas between the bounds from the runtime's own metric."""

    model_config = ConfigDict(json_schema_extra={CEL: [REPLICA_BOUNDS_RULE, KV_TARGET_RULE]})

    min_replicas: int = Field(
        default=1, ge=1, le=1000, description="Replicas while there is load; the plan reserves their GPUs."
    )
    max_replicas: int = Field(
        ge=1, le=1000, description="The most replicas; beyond the plan's pool they burst to the next pools."
    )
    metric: AutoscalingMetric = AutoscalingMetric.REQUESTS_WAITING
    target: str | None = Field(
        default=None, max_length=16, pattern=TARGET, json_schema_extra={CEL: [TARGET_RULE]},
        description="The metric's value per replica to scale at (decimal string); unset: derived from the plan.",
    )  # fmt: skip
    scale_to_zero: ScaleToZero | None = Field(
        default=None, description="Scale to zero replicas when idle; unset: never below minReplicas."
    )

    @field_validator("target")
    @classmethod
    def _positive_target(cls, value: str | None) -> str | None:
        if value is not None and not float(value) > 0:
            raise ValueError(str(TARGET_RULE["message"]))
        return value

    @model_validator(mode="after")
    def _mirror_admission_rules(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError(str(REPLICA_BOUNDS_RULE["message"]))
        if self.metric is AutoscalingMetric.KV_CACHE_USAGE and self.target is not None and float(self.target) > 1:
            raise ValueError(str(KV_TARGET_RULE["message"]))
        return self


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
MAX_NAME = 48
"""A multi-node replica's LeaderWorkerSet names each group's worker StatefulSet after its leader pod,
name-<group index> (up to name-999 at 1,000 replicas), and the StatefulSet controller labels its pods with
controller-revision-hash = that name + '-' + up to 10 characters, which must fit in a label value's 63."""
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_RULE: JsonDict = {
    "rule": f"self.metadata.name.size() <= {MAX_NAME} && self.metadata.name.matches('{NAME_PATTERN}')",
    "message": f"metadata.name must be at most {MAX_NAME} characters, lowercase letters, digits and '-', starting"
    " with a letter: it names the Service (a DNS-1035 label) and a LeaderWorkerSet, whose worker StatefulSets"
    " (name-<replica index>) get a controller-revision-hash label (their name + '-' + 10 characters) that must"
    " fit in 63",
    "reason": "FieldValueInvalid",
}


def _tp_allowed(tp: int, architecture: dict[str, JsonValue]) -> bool:
    """TP_RULE: attention heads are split evenly across TP ranks; without them, only the usual powers of two."""
    if "num_attention_heads" not in architecture:
        return tp in POWERS_OF_TWO
    heads = architecture["num_attention_heads"]
    return type(heads) is int and heads % tp == 0


S3_NEEDS_CACHE_RULE: JsonDict = {
    "rule": "!has(self.model.source) || !has(self.model.source.s3)"
    " || (has(self.modelCache) && has(self.modelCache.managed))",
    "message": "spec.model.source.s3 needs spec.modelCache.managed: the servers cannot read S3 themselves, a"
    " download Job fills the cache",
    "fieldPath": ".modelCache",
    "reason": "FieldValueInvalid",
}
WORKLOAD_FITS_RULE: JsonDict = {
    "rule": "!has(self.workload) || self.workload.inputTokens + self.workload.outputTokens <= self.maxModelLen",
    "message": "spec.workload.inputTokens + outputTokens must be at most spec.maxModelLen: a request must fit the"
    " context the servers are started with",
    "fieldPath": ".workload",
    "reason": "FieldValueInvalid",
}
SLO_NEEDS_WORKLOAD_RULE: JsonDict = {
    "rule": "!has(self.slo) || has(self.workload)",
    "message": "spec.slo needs spec.workload (inputTokens, outputTokens): latency depends on the request's lengths",
    "fieldPath": ".slo",
    "reason": "FieldValueRequired",
}
LOCAL_SOURCE_RULE: JsonDict = {
    "rule": "!has(self.model.source) || !(has(self.model.source.pvc) || has(self.model.source.image))"
    " || !has(self.modelCache)",
    "message": "spec.model.source.pvc and .image are already local to the servers: remove spec.modelCache",
    "fieldPath": ".modelCache",
    "reason": "FieldValueInvalid",
}


class ModelDeploymentSpec(WireModel):
    model_config = ConfigDict(json_schema_extra={CEL: [TP_RULE, PRE_QUANTIZED_RULE, S3_NEEDS_CACHE_RULE,
                                                        LOCAL_SOURCE_RULE, WORKLOAD_FITS_RULE,
                                                        SLO_NEEDS_WORKLOAD_RULE]})  # fmt: skip

    model: ModelSource
    quantization: Quantization = Quantization.AUTO
    kv_cache_dtype: KvCacheDtype = KvCacheDtype.AUTO
    runtime: Runtime = Runtime.VLLM
    max_model_len: int = Field(ge=1, le=MAX_MODEL_LEN, description="Longest sequence (prompt + output).")
    max_concurrency: int = Field(
        default=1, ge=1, le=65536, description="Sequences at full maxModelLen the KV cache must hold at once."
    )
    replicas: int = Field(default=1, ge=0, le=1000)
    autoscaling: Autoscaling | None = Field(
        default=None, description="Let KEDA drive spec.replicas from the serving runtime's metrics."
    )
    workload: Workload | None = Field(
        default=None, description="A typical request and its rate; unset: half maxModelLen in, half out."
    )
    slo: ServiceLevelObjective | None = Field(default=None, description="Latency targets; needs workload.")
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
    network: NetworkSpec | None = None
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="The serving API key, from a Secret: clients send it as a Bearer token."
    )
    pod_template: PodTemplate | None = None

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
        source, cache = self.model.source, self.model_cache
        if source is not None and source.s3 is not None and (cache is None or cache.managed is None):
            raise ValueError(str(S3_NEEDS_CACHE_RULE["message"]))
        if source is not None and (source.pvc is not None or source.image is not None) and cache is not None:
            raise ValueError(str(LOCAL_SOURCE_RULE["message"]))
        workload = self.workload
        if workload is not None and workload.input_tokens + workload.output_tokens > self.max_model_len:
            raise ValueError(str(WORKLOAD_FITS_RULE["message"]))
        if self.slo is not None and workload is None:
            raise ValueError(str(SLO_NEEDS_WORKLOAD_RULE["message"]))
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
