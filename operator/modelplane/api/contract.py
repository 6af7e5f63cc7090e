"""The names other programs rely on, in one place: labels, annotations, child kinds, condition types and reasons.

Dashboards, policies, GitOps health checks and users' scripts read these; changing one is an API change, so
every module uses these constants instead of literals (as KAITO's `labels.go` and `condition_types.go` do).
"""

from typing import Final

# Labels and annotations modelplane sets or reads.
DOMAIN: Final = "modelplane.dev"
DEPLOYMENT_LABEL: Final = f"{DOMAIN}/deployment"
"""On every child and serving pod: the ModelDeployment's name. Pods with it count against its reservation."""
POOL_LABEL: Final = f"{DOMAIN}/pool"
"""On nodes (set by the platform team or the pool's nodeSelector) and serving pods: the GPUNodePool."""
LOCATION_LABEL: Final = f"{DOMAIN}/location"
ENDPOINT_LABEL: Final = f"{DOMAIN}/endpoint"
ENDPOINT: Final = "true"
"""ENDPOINT_LABEL's value on the pods that serve the API (single-node servers, LeaderWorkerSet leaders), on every
pool a deployment runs on: what its Service selects."""
PLAN_HASH_ANNOTATION: Final = f"{DOMAIN}/plan-hash"
"""On the pod template: a new plan rolls the servers even where the rendered args would not change."""
REPLAN_ANNOTATION: Final = f"{DOMAIN}/replan"
"""Set by a user to a new value to move running servers to a better plan."""
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "modelplane"
"""The value of MANAGED_BY_LABEL on every child: the selector the operator watches its children by."""
CACHE_LABEL: Final = f"{DOMAIN}/model-cache"
"""On a managed model cache's PVC and download Job: the cache's name."""
# On a managed model cache's PVC: what it holds and how it goes, read back by whoever finds the PVC.
MODEL_ANNOTATION: Final = f"{DOMAIN}/model"
REVISION_ANNOTATION: Final = f"{DOMAIN}/revision"
POOL_ANNOTATION: Final = POOL_LABEL
"""The pool whose nodes the cache serves: POOL_LABEL's key, as an annotation."""
DELETION_POLICY_ANNOTATION: Final = f"{DOMAIN}/deletion-policy"
CHECKPOINT_BYTES_ANNOTATION: Final = f"{DOMAIN}/checkpoint-bytes"
RESERVED_LABEL_PREFIXES: Final = ("app.kubernetes.io/", f"{DOMAIN}/")
"""Label prefixes a user's pod labels cannot set: the selectors of our children rely on them."""

# The children of a ModelDeployment, in the order they are applied.
NETWORK_POLICY: Final = "NetworkPolicy"
SERVICE: Final = "Service"
POD_DISRUPTION_BUDGET: Final = "PodDisruptionBudget"
DEPLOYMENT: Final = "Deployment"
LEADER_WORKER_SET: Final = "LeaderWorkerSet"
SCALED_OBJECT: Final = "ScaledObject"
"""KEDA's (keda.sh/v1alpha1): applied last, after the workloads it scales through the ModelDeployment."""
CHILD_KIND_ORDER: Final = (NETWORK_POLICY, SERVICE, POD_DISRUPTION_BUDGET, DEPLOYMENT, LEADER_WORKER_SET,
                           SCALED_OBJECT)  # fmt: skip
WORKLOAD_KINDS: Final = (DEPLOYMENT, LEADER_WORKER_SET)
"""The kinds that run the servers: one per replica shape (single node: Deployment; multi-node: LeaderWorkerSet)."""

# Condition types of a ModelDeployment. New types go last in CONDITION_ORDER: clients that index the list keep
# working. Reconciling and Stalled are kstatus's abnormal-true types (kubernetes-sigs/cli-utils,
# pkg/kstatus/README.md), so Flux and kstatus-based tools read a ModelDeployment without configuration.
PLANNED: Final = "Planned"
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
PLAN_OUTDATED: Final = "PlanOutdated"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
REPLICAS_PLACED: Final = "ReplicasPlaced"
"""True when every desired replica has GPUs on some pool; False (InsufficientCapacity) while some wait."""
AUTOSCALING: Final = "Autoscaling"
"""With spec.autoscaling: True once KEDA's ScaledObject is applied; False (KEDANotInstalled) when the cluster
serves no ScaledObject kind, and then spec.replicas stays where it is."""
CONDITION_ORDER: Final = (READY, PLANNED, PROGRESSING, DEGRADED, PLAN_OUTDATED, RECONCILING, STALLED, REPLICAS_PLACED,
                          AUTOSCALING)  # fmt: skip

# Condition reasons the operator sets itself. A plan that cannot be made gives the planner's first ReasonCode
# (api/plan.py) as the Planned reason.
PLANNED_REASON: Final = "Planned"
INVALID_SPEC: Final = "InvalidSpec"
MODEL_UNKNOWN: Final = "ModelUnknown"
"""Planned=False: no source knows the model (spec, packaged catalog, catalog ConfigMaps, the Hub if enabled)."""
ARCHITECTURE_UNSUPPORTED: Final = "ArchitectureUnsupported"
"""Planned=False: the model's config.json describes layers the planner does not model; refused, not guessed."""
INVALID_SERVING_SPEC: Final = "InvalidServingSpec"
CHILD_CONFLICT: Final = "ChildConflict"
CHILD_REJECTED: Final = "ChildRejected"
CHILD_APPLY_FAILED: Final = "ChildApplyFailed"
BETTER_PLAN_AVAILABLE: Final = "BetterPlanAvailable"
PLAN_CURRENT: Final = "PlanCurrent"
NOT_PLANNED: Final = "NotPlanned"
PLAN_ONLY: Final = "PlanOnly"
AVAILABLE: Final = "Available"
REPLICAS_NOT_READY: Final = "ReplicasNotReady"
SCALED_TO_ZERO: Final = "ScaledToZero"
ROLLING_OUT: Final = "RollingOut"
ROLLOUT_STALLED: Final = "RolloutStalled"
ROLLOUT_COMPLETE: Final = "Complete"
AS_EXPECTED: Final = "AsExpected"
ALL_REPLICAS_PLACED: Final = "AllReplicasPlaced"
SCALED_OBJECT_APPLIED: Final = "ScaledObjectApplied"
KEDA_NOT_INSTALLED: Final = "KEDANotInstalled"
BURST: Final = "Burst"
"""An event: the pools the replicas run on changed (a burst beyond the plan's pool, or back)."""
REPLICAS_WAITING: Final = "ReplicasWaiting"
"""An event: desired replicas that no pool has free GPUs for (ReplicasPlaced=False InsufficientCapacity)."""
REPLANNED: Final = "Replanned"
"""An event, not a condition: a re-plan moved the servers to another shape."""
