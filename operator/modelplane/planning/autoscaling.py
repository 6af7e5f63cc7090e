"""What KEDA scales a ModelDeployment on: the serving runtime's own Prometheus series, a per-replica target and
the replica bounds. Pure.

The trigger is KEDA's `prometheus` scaler with its default metric type, AverageValue: the HPA KEDA creates
divides the query's value by the current replicas and sizes for `target` per replica. So the query sums the
series over every serving pod of the deployment (on every pool) and the target is per replica:

    sum(<series>{namespace="<ns>", modelplane_dev_deployment="<name>"})

`modelplane_dev_deployment` is the pod label `modelplane.dev/deployment` as Prometheus's usual pod scrape job
maps pod labels (`labelmap` of `__meta_kubernetes_pod_label_(.+)`, the `kubernetes-pods` job of the
prometheus-community chart); the pods also carry `prometheus.io/scrape`, `/port` and `/path` for that job.

The target, first that applies:

1. `spec.autoscaling.target`;
2. the plan's operating point, where the performance model made one (a spec.workload): for running-requests,
   `sequencesPerReplica`, the batch one replica serves at the workload's rate within the SLO; for
   kv-cache-usage, the share of the KV cache those sequences fill at their mean context (prompt plus half the
   output), kept within 0.1-0.9;
3. the runtime catalog's documented default (catalog/data/runtimes.yaml `defaultTarget`: vLLM requests-waiting
   1, kv-cache-usage 0.8); for running-requests the plan's maxConcurrency, the sequences the KV cache holds.
"""

from pydantic import BaseModel, ConfigDict

from modelplane.api.model_deployment import AutoscalingMetric, ModelDeployment, duration_seconds
from modelplane.api.plan import Plan
from modelplane.catalog.runtimes import runtime_spec

DEPLOYMENT_SERIES_LABEL = "modelplane_dev_deployment"
KV_TARGET_BOUNDS = (0.1, 0.9)


class ScalingRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    series: str
    query: str
    target: str
    target_from: str
    """Where the target came from: "spec", "operating point" or "default"."""
    min_replicas: int
    max_replicas: int
    idle_seconds: int | None
    """Seconds without load before the last replica goes; None: never below minReplicas."""


def _decimal(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _operating_point(metric: AutoscalingMetric, deployment: ModelDeployment, plan: Plan) -> str | None:
    workload, estimates = deployment.spec.workload, plan.estimates
    sequences = estimates.sequences_per_replica if estimates is not None else None
    if workload is None or not sequences:
        return None
    if metric is AutoscalingMetric.RUNNING_REQUESTS:
        return _decimal(max(1.0, sequences))
    if metric is AutoscalingMetric.KV_CACHE_USAGE and plan.memory.kv_cache_tokens > 0:
        context = workload.input_tokens + workload.output_tokens / 2
        low, high = KV_TARGET_BOUNDS
        return _decimal(min(high, max(low, sequences * context / plan.memory.kv_cache_tokens)))
    return None


def scaling_rule(deployment: ModelDeployment, plan: Plan) -> ScalingRule | None:
    """The ScaledObject's trigger and bounds; None without spec.autoscaling. The planner has refused a runtime
    whose pinned version exports no series for the metric (planner.deployment_reasons)."""
    autoscaling = deployment.spec.autoscaling
    if autoscaling is None:
        return None
    found = runtime_spec(plan.runtime.value).autoscaling_metrics.of(autoscaling.metric.value)
    if found is None:
        raise ValueError(f"{plan.runtime.value} exports no series for {autoscaling.metric.value}")
    if autoscaling.target is not None:
        target, source = autoscaling.target, "spec"
    elif (point := _operating_point(autoscaling.metric, deployment, plan)) is not None:
        target, source = point, "operating point"
    else:
        fallback = found.default_target or str(plan.max_concurrency)
        target, source = fallback, "default"
    name, namespace = deployment.metadata.name, deployment.metadata.namespace or "default"
    query = f'sum({found.series}{{namespace="{namespace}",{DEPLOYMENT_SERIES_LABEL}="{name}"}})'
    idle = autoscaling.scale_to_zero
    return ScalingRule(series=found.series, query=query, target=target, target_from=source,
                       min_replicas=autoscaling.min_replicas, max_replicas=autoscaling.max_replicas,
                       idle_seconds=int(duration_seconds(idle.idle_period)) if idle is not None else None)  # fmt: skip
