"""GPUNodePool: a named set of identical GPU nodes the planner may place replicas on."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from modelplane.api.base import CEL, JsonDict, ObjectMeta, WireModel
from modelplane.api.labels import (
    LABEL_KEY_HELP,
    LABEL_VALUE,
    LABEL_VALUE_HELP,
    cel_label_key,
    is_label_key,
    is_label_value,
)

DECIMAL_MONEY = r"^[0-9]{1,6}(\.[0-9]{1,4})?$"


class Location(StrEnum):
    ON_PREM = "on-prem"
    CLOUD = "cloud"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


TOLERATION_RULES: list[JsonDict] = [
    {
        "rule": f"!has(self.key) || self.key == '' || ({cel_label_key('self.key')})",
        "message": f"toleration key must be {LABEL_KEY_HELP}",
        "fieldPath": ".key",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "(has(self.key) && self.key != '') || self.operator == 'Exists'",
        "message": "a toleration without a key must have operator Exists (it then tolerates every taint):"
        " set the taint's key, or operator: Exists",
        "fieldPath": ".operator",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.value) || (self.operator == 'Exists' ? self.value == ''"
        f" : self.value.matches('{LABEL_VALUE}'))",
        "message": f"toleration value must be {LABEL_VALUE_HELP}, and empty when operator is Exists",
        "fieldPath": ".value",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "message": "tolerationSeconds needs effect NoExecute (only NoExecute taints evict): set effect: NoExecute"
        " or remove tolerationSeconds",
        "fieldPath": ".tolerationSeconds",
        "reason": "FieldValueInvalid",
    },
]


class Toleration(WireModel):
    """A pod toleration, copied onto every serving pod placed in the pool; checked as the API server checks pods."""

    model_config = ConfigDict(json_schema_extra={CEL: [*TOLERATION_RULES]})

    key: str | None = Field(default=None, max_length=317)
    operator: TolerationOperator = Field(default=TolerationOperator.EQUAL, validate_default=True)
    value: str | None = Field(default=None, max_length=63)
    effect: TaintEffect | None = None
    toleration_seconds: int | None = Field(default=None, ge=0, le=2**31 - 1)
    """Bounded below int64 (the API server's limit) at 68 years: its OpenAPI maximum is a float64."""

    # TOLERATION_RULES one field at a time (fields are validated in order), so errors name the same field.
    @field_validator("key")
    @classmethod
    def _key(cls, key: str | None) -> str | None:
        if key and not is_label_key(key):
            raise ValueError(str(TOLERATION_RULES[0]["message"]))
        return key

    @field_validator("operator")
    @classmethod
    def _operator(cls, operator: TolerationOperator, info: ValidationInfo) -> TolerationOperator:
        if not info.data.get("key") and operator != TolerationOperator.EXISTS:
            raise ValueError(str(TOLERATION_RULES[1]["message"]))
        return operator

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None, info: ValidationInfo) -> str | None:
        exists = info.data.get("operator") == TolerationOperator.EXISTS
        if value is not None and (value != "" if exists else not is_label_value(value)):
            raise ValueError(str(TOLERATION_RULES[2]["message"]))
        return value

    @field_validator("toleration_seconds")
    @classmethod
    def _seconds(cls, seconds: int | None, info: ValidationInfo) -> int | None:
        if seconds is not None and info.data.get("effect") != TaintEffect.NO_EXECUTE:
            raise ValueError(str(TOLERATION_RULES[3]["message"]))
        return seconds


def immutable(what: str) -> JsonDict:
    return {CEL: [{"rule": "self == oldSelf", "message": f"{what} is immutable: create a new pool instead"}]}


NODE_SELECTOR_RULES: list[JsonDict] = [
    {
        "rule": f"self.all(key, {cel_label_key('key')})",
        "message": f"nodeSelector keys must each be {LABEL_KEY_HELP}",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": f"self.all(key, self[key].matches('{LABEL_VALUE}'))",
        "message": f"nodeSelector values must each be {LABEL_VALUE_HELP}",
        "reason": "FieldValueInvalid",
    },
]
AVAILABLE_RULE: JsonDict = {
    "rule": "!has(self.availableGpus) || self.availableGpus <= self.gpusPerNode * self.nodes",
    "message": "availableGpus cannot exceed gpusPerNode × nodes",
    "fieldPath": ".availableGpus",
}


class GPUNodePoolSpec(WireModel):
    """What the pool offers. Costs are decimal strings: the API carries no floats."""

    model_config = ConfigDict(json_schema_extra={CEL: [AVAILABLE_RULE]})

    gpu: str = Field(min_length=1, max_length=63, description="GPU catalog id, e.g. H100-SXM-80GB.",
                     json_schema_extra=immutable("gpu"))  # fmt: skip
    gpus_per_node: int = Field(ge=1, le=16, description="GPUs in each node of the pool.")
    nodes: int = Field(ge=1, le=10000, description="Nodes in the pool.")
    location: Location = Field(
        description="on-prem or cloud; placement.locality filters on it.", json_schema_extra=immutable("location")
    )
    cost_per_gpu_hour: str | None = Field(
        default=None,
        pattern=DECIMAL_MONEY,
        description='Price (cloud) or amortized TCO (on-prem) per GPU-hour as a decimal string, e.g. "2.10".',
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=20,
        description="Labels that select the pool's nodes.",
        json_schema_extra={CEL: [*NODE_SELECTOR_RULES]},
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=20, description="Tolerations for the pool's taints."
    )
    available_gpus: int | None = Field(
        default=None, ge=0, description="Free GPUs the planner may use; default: every GPU of the pool."
    )

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, selector: dict[str, str]) -> dict[str, str]:
        """NODE_SELECTOR_RULES: a selector the API server would refuse on the serving pods."""
        keys_rule, values_rule = (str(rule["message"]) for rule in NODE_SELECTOR_RULES)
        if not all(is_label_key(key) for key in selector):
            raise ValueError(keys_rule)
        if not all(is_label_value(value) for value in selector.values()):
            raise ValueError(values_rule)
        return selector

    @model_validator(mode="after")
    def _available_within_pool(self) -> "GPUNodePoolSpec":
        if self.available_gpus is not None and self.available_gpus > self.gpus_per_node * self.nodes:
            raise ValueError(str(AVAILABLE_RULE["message"]))
        return self


class NodeInventory(WireModel):
    """One node of a pool as discovered from the cluster."""

    name: str
    allocatable_gpus: int = Field(ge=0)
    requested_gpus: int = Field(ge=0)


class GPUNodePoolStatus(WireModel):
    """What the operator found on the cluster for this pool."""

    observed_generation: int | None = None
    ready_nodes: int = Field(default=0, ge=0)
    total_gpus: int = Field(default=0, ge=0)
    free_gpus: int = Field(default=0, ge=0)
    nodes: list[NodeInventory] = Field(default_factory=list)


class GPUNodePool(WireModel):
    api_version: Literal["modelplane.dev/v1alpha1"] = "modelplane.dev/v1alpha1"
    kind: Literal["GPUNodePool"] = "GPUNodePool"
    metadata: ObjectMeta
    spec: GPUNodePoolSpec
    status: GPUNodePoolStatus | None = None
