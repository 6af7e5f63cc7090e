"""KEDA's trigger from the plan: the runtime's own series, the target's precedence, the refusal of a runtime
version with no such series."""

from typing import Any

from modelplane.planning.autoscaling import scaling_rule
from modelplane.planning.service import offers_for, plan_deployment
from tests.planning.test_placement import deployment
from tests.support import pool

H100 = [pool("h100", "H100-SXM-80GB", 8, 2, location="on-prem", cost="1.60")]


def rule(**autoscaling: Any) -> Any:
    extra = autoscaling.pop("spec", {})
    md = deployment(autoscaling={"maxReplicas": 6, **autoscaling}, **extra)
    result = plan_deployment(md, offers_for(H100))
    assert result.plan is not None, result.reasons
    return scaling_rule(md, result.plan), result.plan


def test_the_query_sums_the_runtimes_series_over_the_deployments_pods() -> None:
    found, _ = rule(metric="running-requests")
    assert found.query == 'sum(vllm:num_requests_running{namespace="ns",modelplane_dev_deployment="chat"})'
    assert (found.min_replicas, found.max_replicas, found.idle_seconds) == (1, 6, None)


def test_a_spec_target_wins_then_the_operating_point_then_the_default() -> None:
    assert rule(metric="requests-waiting", target="3")[0].target == "3"
    workload = {"workload": {"inputTokens": 2000, "outputTokens": 300, "requestsPerSecond": "1"}}
    at_point, plan = rule(metric="running-requests", spec=workload)
    assert at_point.target_from == "operating point"
    assert float(at_point.target) == round(max(1.0, plan.estimates.sequences_per_replica), 3)
    default, _ = rule(metric="kv-cache-usage")
    assert (default.target, default.target_from) == ("0.8", "default")
    waiting, _ = rule(metric="requests-waiting", scaleToZero={"idlePeriod": "10m"})
    assert (waiting.target, waiting.idle_seconds) == ("1", 600)


def test_autoscaling_tensorrt_llm_1_2_1_is_refused_with_the_reason() -> None:
    md = deployment(runtime="tensorrt-llm", autoscaling={"maxReplicas": 4})
    result = plan_deployment(md, offers_for(H100))
    assert not result.feasible
    [reason] = [reason for reason in result.reasons if reason.code.value == "RuntimeUnsupported"]
    assert "spec.autoscaling" in reason.message
    assert "exports no Prometheus gauge" in reason.message
