"""The operator's `/metrics` on the real cluster agree with what the API server holds."""

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.operator_support import GROUP, VERSION, Cluster, OperatorProcess, model_deployment, wait_for


def scrape(operator: OperatorProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
    }


def test_metrics_report_plans_conditions_and_gpus(kube: Cluster, namespace: str, operator: OperatorProcess) -> None:
    kube.create_md(model_deployment("metered", namespace))
    md = kube.wait_condition(namespace, "metered", "Ready", "True", timeout=120)
    plan = md["status"]["plan"]
    ready = ("modelplane_modeldeployments", frozenset({("condition", "Ready"), ("status", "True")}))
    # The gauge reads the operator's watch of ModelDeployments, which sees the Ready status a moment after the
    # API server does.

    def counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        found = scrape(operator)
        return found if found.get(ready, 0) >= 1 else None

    found = wait_for(counted, 30, "the Ready deployment to show in modelplane_modeldeployments")
    assert found[("modelplane_plans_total", frozenset({("outcome", "Planned")}))] >= 1
    assert found[("modelplane_plan_duration_seconds_count", frozenset())] >= 1
    planned = ("modelplane_planned_gpus", frozenset({("pool", plan["pool"]), ("location", plan["location"])}))
    assert found[planned] >= plan["gpusPerReplica"] * plan["replicas"]

    def free_gpus_agree() -> bool:
        pool = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", plan["pool"])
        free = ("modelplane_pool_free_gpus", frozenset({("pool", plan["pool"]), ("location", plan["location"])}))
        return scrape(operator).get(free) == (pool.get("status") or {}).get("freeGpus")

    # The pool's status is written within seconds of a change, from the same state the gauge reads at scrape time.
    wait_for(free_gpus_agree, 60, "modelplane_pool_free_gpus to equal the GPUNodePool's status.freeGpus")
