"""GPUNodePool: a named set of identical GPU nodes the planner may place replicas on."""

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from modelplane.api.base import CEL, JsonDict, ObjectMeta, WireModel

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


class Toleration(WireModel):
    """A pod toleration, copied onto every serving pod placed in the pool."""

    key: str | None = Field(default=None, max_length=317)
    operator: TolerationOperator = TolerationOperator.EQUAL
    value: str | None = Field(default=None, max_length=63)
    effect: TaintEffect | None = None
    toleration_seconds: int | None = Field(default=None, ge=0)


def immutable(what: str) -> JsonDict:
    return {CEL: [{"rule": "self == oldSelf", "message": f"{what} is immutable: create a new pool instead"}]}


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
    node_selector: dict[str, str] = Field(
        default_factory=dict, max_length=20, description="Labels that select the pool's nodes."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=20, description="Tolerations for the pool's taints."
    )
    available_gpus: int | None = Field(
        default=None, ge=0, description="Free GPUs the planner may use; default: every GPU of the pool."
    )

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
