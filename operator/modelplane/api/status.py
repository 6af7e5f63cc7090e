"""Status of the custom resources, following the Kubernetes API conventions for conditions."""

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


class ModelDeploymentStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    plan: Plan | None = None
    plan_generation: int | None = Field(default=None, description="The generation the pinned plan was made for.")
    plan_hash: str | None = None
    replan_token: str | None = Field(default=None, description="The last modelplane.dev/replan value acted on.")
    rejected: list[RejectedPool] = Field(default_factory=list)
    replicas: int | None = Field(
        default=None, description="Serving replicas the workload has now: the scale subresource's status.replicas."
    )
    ready_replicas: int | None = None
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
