"""The plan contract: what `modelplane plan -o json` prints and what status.plan holds.

Money is a decimal string and throughput an integer, so the same objects can live in a
Kubernetes status without floats.
"""

from enum import StrEnum
from typing import Any

from pydantic import Field

from modelplane.api.base import WireModel
from modelplane.api.gpu_node_pool import Toleration
from modelplane.api.serving import KvCacheDtype, Quantization, Runtime


class ReasonCode(StrEnum):
    """Why a candidate (pool × shape × quantization) cannot serve the deployment."""

    INSUFFICIENT_MEMORY = "InsufficientMemory"
    HEADS_NOT_DIVISIBLE = "HeadsNotDivisible"
    LAYERS_NOT_DIVISIBLE = "LayersNotDivisible"
    EXCEEDS_GPUS_PER_NODE = "ExceedsGpusPerNode"
    EXCEEDS_POOL_NODES = "ExceedsPoolNodes"
    UNSUPPORTED_QUANTIZATION = "UnsupportedQuantization"
    UNSUPPORTED_KV_CACHE_DTYPE = "UnsupportedKvCacheDtype"
    RUNTIME_UNSUPPORTED = "RuntimeUnsupported"
    LOCALITY_POLICY = "LocalityPolicy"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    POOL_NOT_SELECTED = "PoolNotSelected"
    UNKNOWN_GPU = "UnknownGpu"
    MAX_MODEL_LEN_EXCEEDED = "MaxModelLenExceeded"
    NO_POOLS = "NoPools"
    SLO_UNREACHABLE = "SloUnreachable"


class Reason(WireModel):
    code: ReasonCode
    message: str


class MemoryBreakdown(WireModel):
    """Per-GPU memory of one replica, integer bytes."""

    weight_bytes_per_gpu: int
    kv_cache_bytes_per_token: int = Field(description="KV cache of one token on one GPU of the replica.")
    overhead_bytes_per_gpu: int
    kv_cache_tokens: int = Field(
        description='Tokens the KV cache of one replica holds, as vLLM logs it: "GPU KV cache size: N tokens".'
    )
    max_concurrency: float | None = Field(
        default=None,
        description='Requests of maxModelLen tokens the KV cache holds at once, as vLLM logs it: "Maximum '
        'concurrency for N tokens per request: X" (rounded down to 2 decimals).',
    )
    budget_bytes_per_gpu: int = Field(description="GPU memory × gpuMemoryUtilization.")
    gpu_memory_bytes: int


class Estimates(WireModel):
    """The performance model's operating point of one replica (planning/performance.py) and what it costs.

    The operating point is the workload's rate spread over the replicas, or else maxConcurrency sequences served
    at once; latencies are means in seconds.
    """

    decode_tokens_per_second: int = Field(
        description="Aggregate decode tokens/s of one replica at the operating point."
    )
    decode_tokens_per_second_per_sequence: int = Field(description="One sequence's tokens/s: 1 / interTokenLatency.")
    time_to_first_token_seconds: float | None = Field(default=None, description="Mean time to the first token.")
    inter_token_latency_seconds: float | None = Field(
        default=None, description="Mean time between a sequence's tokens."
    )
    sequences_per_replica: float | None = Field(default=None, description="Sequences one replica serves at once.")
    requests_per_second_per_replica: float | None = Field(default=None, description="At the operating point.")
    max_requests_per_second_per_replica: float | None = Field(
        default=None, description="The most requests/s one replica serves within the SLO and its KV cache."
    )
    cost_per_hour: str | None = Field(default=None, description="All replicas, decimal string.")
    cost_per_million_tokens: str | None = Field(
        default=None, description="Dollars per million output tokens at the operating point, decimal string."
    )


class Plan(WireModel):
    pool: str
    gpu: str
    location: str
    tensor_parallel: int
    pipeline_parallel: int
    gpus_per_replica: int
    nodes_per_replica: int
    gpus_per_pod: int
    replicas: int
    quantization: Quantization
    pre_quantized: bool = Field(description="The checkpoint itself is stored in this quantization.")
    kv_cache_dtype: KvCacheDtype
    runtime: Runtime
    max_model_len: int
    max_concurrency: int
    gpu_memory_utilization: int
    node_selector: dict[str, str] = Field(default_factory=dict, description="The pool's node selector.")
    tolerations: list[Toleration] = Field(default_factory=list, description="The pool's tolerations.")
    memory: MemoryBreakdown
    estimates: Estimates
    notes: list[str] = Field(
        default_factory=list,
        description="What to know about how the runtime serves this plan, e.g. fp8 run weight-only below Ada.",
    )

    def to_wire(self) -> dict[str, Any]:
        """Without `notes` when there are none, so a plan's wire form (and the hash of it that rolls the
        serving pods) is what it was before notes existed; `PlanResult.to_wire` always prints the key."""
        wire = super().to_wire()
        if not self.notes:
            wire.pop("notes", None)
        return wire


ESTIMATE_COSTS = ("costPerHour", "costPerMillionTokens")


class Candidate(WireModel):
    pool: str
    gpu: str
    tensor_parallel: int
    pipeline_parallel: int
    quantization: Quantization
    feasible: bool
    reasons: list[Reason] = Field(default_factory=list)
    gpus_per_replica: int
    memory: MemoryBreakdown | None = None
    estimates: Estimates | None = None


class PlanResult(WireModel):
    name: str
    namespace: str
    model: str
    feasible: bool
    plan: Plan | None
    reasons: list[Reason] = Field(default_factory=list, description="Why nothing fits, when infeasible.")
    suggestions: list[str] = Field(default_factory=list, description="What would make it fit.")
    candidates: list[Candidate] = Field(
        default_factory=list, description="Every pool × format × TP tried; built only for a caller that prints them."
    )
    inter_token_latency_target_seconds: float | None = Field(
        default=None, description="The deployment's spec.slo.interTokenLatency in seconds, if it sets one."
    )
    rejected_pools: dict[str, list[str]] = Field(
        default_factory=dict,
        exclude=True,
        description="The why-not list: every pool where no shape is feasible, with its candidates' reason codes, "
        "sorted. Always filled, whether or not candidates were built; not part of the printed JSON.",
    )

    def to_wire(self) -> dict[str, Any]:
        """The `plan -o json` contract: every documented key present, null when there is no value.

        `plan: null` when infeasible; `estimates.costPerHour` and `costPerMillionTokens` null for a pool
        without a price (in the plan and in every candidate); `plan.notes` an empty list when there are none.
        """
        wire = super().to_wire()
        plan = wire.setdefault("plan", None)
        if plan is not None:
            plan.setdefault("notes", [])
            _null_costs(plan["estimates"])
        for candidate in wire.get("candidates", ()):
            if "estimates" in candidate:
                _null_costs(candidate["estimates"])
        return wire


def _null_costs(estimates: dict[str, Any]) -> None:
    for key in ESTIMATE_COSTS:
        estimates.setdefault(key, None)


class ModelEstimate(WireModel):
    """`modelplane estimate -o json`: the model's size independent of any GPU."""

    model: str
    model_type: str
    parameters: int
    active_parameters: int
    weight_format: Quantization
    weight_bytes: int
    kv_cache_bytes_per_token: int = Field(description="Whole model, one token, no parallelism.")
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_position_embeddings: int | None
    attention_layers: int = Field(description="Layers holding a KV cache: all but a hybrid's recurrent and MLP ones.")
    recurrent_state_bytes_per_sequence: int = Field(
        0, description="A hybrid's linear-attention state, all layers, one sequence, no parallelism (0: none)."
    )
