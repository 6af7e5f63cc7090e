"""Status of the custom resources, following the Kubernetes API conventions for conditions."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field
from pydantic.alias_generators import to_camel

from modelplane.api.base import WireModel
from modelplane.api.plan import Plan, ReasonCode


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    type: str = Field(max_length=316, pattern=r"^[A-Z][A-Za-z0-9]*$")
    status: ConditionStatus
    reason: str = Field(max_length=1024, pattern=r"^[A-Z][A-Za-z0-9]*$")
    message: str = Field(default="", max_length=32768)
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: str


class RejectedPool(WireModel):
    pool: str
    codes: list[ReasonCode]


class PoolPlacement(WireModel):
    """Replicas placed on one pool, with the shape they run there and the workload that runs them."""

    pool: str
    gpu: str
    location: str
    tensor_parallel: int
    pipeline_parallel: int
    gpus_per_replica: int
    replicas: int
    workload: str = Field(description="The serving workload of this pool: kind/name.")


class ModelDeploymentStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    plan: Plan | None = None
    plan_generation: int | None = Field(default=None, description="The generation the pinned plan was made for.")
    plan_hash: str | None = None
    plan_inputs: str | None = Field(
        default=None,
        description="Digest of the spec the plan was made for, replica counts left out: scaling keeps the plan.",
    )
    replan_token: str | None = Field(default=None, description="The last modelplane.dev/replan value acted on.")
    rejected: list[RejectedPool] = Field(default_factory=list)
    replicas: int | None = Field(
        default=None, description="Serving replicas the workload has now: the scale subresource's status.replicas."
    )
    ready_replicas: int | None = None
    placements: list[PoolPlacement] = Field(
        default_factory=list,
        description="Where the desired replicas run: the plan's pool first, then the pools they burst to.",
    )
    waiting_replicas: int | None = Field(
        default=None, description="Desired replicas no pool has free GPUs for: not created until some come free."
    )
    selector: str | None = Field(
        default=None, description="Label selector of the serving pods: the scale subresource's, read by HPA."
    )

    def written_fields(self) -> dict[str, Any]:
        """The fields this status was given, in wire form: what the operator merge-patches into status.

        A field left unset is one the operator no longer claims, so the merge patch removes it (`merge_patch`
        nulls keys that are stored but not written); unset is not the same as a default value here.
        """
        wire = self.to_wire()
        return {alias: wire[alias] for alias in map(to_camel, sorted(self.model_fields_set)) if alias in wire}


def held_gpus(status: Mapping[str, Any]) -> dict[str, int]:
    """GPUs per pool that a stored status (wire form) holds: its placements', or, as written before placements
    existed, every replica of its plan on the plan's pool. Nothing without a plan."""
    plan = status.get("plan")
    if not plan:
        return {}
    if "placements" in status:
        held: dict[str, int] = {}
        for placed in status.get("placements") or []:
            held[str(placed["pool"])] = held.get(str(placed["pool"]), 0) + int(placed["gpusPerReplica"]) * int(
                placed["replicas"]
            )
        return held
    return {str(plan["pool"]): int(plan["gpusPerReplica"]) * int(plan["replicas"])}
