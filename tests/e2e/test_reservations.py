"""A burst of deployments against a pool too small for all of them: the queue never gives one GPU twice."""

from collections import Counter
from typing import Any

from tests.e2e.operator_support import GROUP, VERSION, Cluster, OperatorProcess, model_deployment, wait_for

POOL = "l4-cloud"  # 8 nodes of 1 GPU (examples/pools/hybrid.yaml)
POOL_GPUS = 8
BURST = 2 * POOL_GPUS


def _pool_free(kube: Cluster) -> int:
    pool = kube.custom.get_cluster_custom_object(GROUP, VERSION, "gpunodepools", POOL)
    return int((pool.get("status") or {}).get("freeGpus", -1))


def test_a_burst_twice_the_pool_gets_exactly_the_pool(kube: Cluster, namespace: str,
                                                       operator: OperatorProcess) -> None:  # fmt: skip
    # Earlier tests' deployments go with their namespaces: wait until none holds a pod or a plan on the pool.
    wait_for(lambda: _pool_free(kube) == POOL_GPUS and operator.reserved_gpus(POOL) == 0, 180,
             f"{POOL} to be free of other tests' pods and plans")  # fmt: skip
    names = [f"burst-{n:02d}" for n in range(BURST)]
    for name in names:
        kube.create_md(model_deployment(name, namespace, placement={"pools": [POOL]}))

    def settled() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = kube.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments")["items"]  # fmt: skip
        reasons = [next((c.get("reason") for c in (md.get("status") or {}).get("conditions") or []
                         if c["type"] == "Planned"), None) for md in items]  # fmt: skip
        return items if len(items) == BURST and all(reasons) else None

    items = wait_for(settled, 120, "every deployment of the burst to have a Planned condition")
    reasons = Counter(next(c["reason"] for c in md["status"]["conditions"] if c["type"] == "Planned") for md in items)
    assert reasons == {"Planned": POOL_GPUS, "InsufficientCapacity": BURST - POOL_GPUS}
    held = sum(md["status"]["plan"]["gpusPerReplica"] * md["status"]["plan"]["replicas"]
               for md in items if "plan" in md["status"])  # fmt: skip
    assert held == POOL_GPUS, "no GPU is held twice"
    assert operator.reserved_gpus(POOL) == POOL_GPUS

    def scheduled() -> bool:
        pods = kube.core.list_namespaced_pod(namespace).items
        return len(pods) == POOL_GPUS and all(pod.spec.node_name for pod in pods)

    wait_for(scheduled, 120, f"exactly {POOL_GPUS} serving pods, every one scheduled (none Pending for want of a GPU)")
