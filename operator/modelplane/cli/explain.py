"""`modelplane explain md/NAME`: the live object's plan, memory per GPU and why-not list, from its status."""

from typing import Any

from kubernetes.config import ConfigException
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelplane.api.base import API_GROUP, API_VERSION
from modelplane.api.plan import Plan
from modelplane.cli.output import memory_bar, operating_point
from modelplane.kube.client import make_api_client
from modelplane.kube.objects import request


def fetch(target: str, namespace: str) -> dict[str, Any]:
    """GET the ModelDeployment named like kubectl does: `md/NAME`, `modeldeployment/NAME` or `NAME`."""
    kind, _, name = target.rpartition("/")
    if kind not in ("", "md", "modeldeployment", "modeldeployments"):
        raise ValueError(f"{target}: only ModelDeployments can be explained (md/NAME)")
    try:
        api = make_api_client(pool_size=1)
    except ConfigException as error:
        raise ValueError(f"no cluster to ask: {error} (set KUBECONFIG)") from None
    try:
        path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/modeldeployments/{name}"
        found: dict[str, Any] = request(api, f"get ModelDeployment {namespace}/{name}", "GET", path)
        return found
    finally:
        api.close()


def print_explanation(md: dict[str, Any], console: Console) -> None:
    metadata, status = md["metadata"], md.get("status") or {}
    console.print(Text(f"{metadata['namespace']}/{metadata['name']}  ({md['spec']['model']['name']})", style="bold"))
    conditions = Table(show_header=True, box=None)
    for column in ("CONDITION", "STATUS", "REASON", "MESSAGE"):
        conditions.add_column(column)
    for condition in status.get("conditions") or []:
        conditions.add_row(condition["type"], condition["status"], condition["reason"], condition.get("message", ""))
    console.print(conditions)
    if status.get("plan"):
        plan = Plan.model_validate(status["plan"])
        console.print(f"plan: pool {plan.pool} ({plan.gpu}), TP{plan.tensor_parallel}×PP{plan.pipeline_parallel}, "
                      f"{plan.quantization}, {plan.gpus_per_replica} GPU(s) × {plan.replicas} replica(s), "
                      f"{plan.estimates.decode_tokens_per_second} tok/s, ${plan.estimates.cost_per_hour or '-'}/h",
                      highlight=False)  # fmt: skip
        console.print(Text("  ") + memory_bar(plan.memory, plan.max_model_len, plan.max_concurrency))
        console.print(f"  {operating_point(plan.estimates)}", highlight=False)
    placements = status.get("placements") or []
    if placements:
        table = Table(show_header=True, box=None, title="replicas placed", title_justify="left")
        for column in ("POOL", "GPU", "LOCATION", "TP×PP", "REPLICAS", "WORKLOAD"):
            table.add_column(column)
        for placed in placements:
            table.add_row(placed["pool"], placed["gpu"], placed["location"],
                          f"{placed['tensorParallel']}×{placed['pipelineParallel']}", str(placed["replicas"]),
                          placed["workload"])  # fmt: skip
        console.print(table)
    if status.get("waitingReplicas"):
        console.print(f"waiting: {status['waitingReplicas']} replica(s) have no free GPUs on the pools the placement"
                      " allows (see ReplicasPlaced)", highlight=False)  # fmt: skip
    rejected = status.get("rejected") or []
    if rejected:
        console.print("why not: " + "; ".join(f"{r['pool']}: {', '.join(r['codes'])}" for r in rejected),
                      highlight=False)  # fmt: skip
