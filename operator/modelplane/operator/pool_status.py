"""GPUNodePool status, written by the operator from a snapshot: the pool-status key of the work queue."""

from typing import Any

from kubernetes import client

from modelplane.kube.custom import patch_status
from modelplane.kube.errors import KubeError
from modelplane.kube.objects import is_subset
from modelplane.operator.state import Snapshot


def write_pool_status(api: client.ApiClient, snapshot: Snapshot) -> bool:
    """GPUNodePool status: its nodes and free GPUs (allocatable minus requested, on Ready uncordoned nodes).

    Returns whether GPUs came free. A failed write raises once every pool was tried, so the key is retried.
    Written by the operator itself rather than from a kopf timer: kopf guards timers with a finalizer on every
    pool, which would be a write (and a permission) the operator does not otherwise need.
    """
    states = snapshot.pool_states
    freed = False
    failed: list[tuple[str, KubeError]] = []
    for body in snapshot.gpu_pools:
        name = body["metadata"]["name"]
        state = states.get(name)
        if state is None:
            continue
        wanted: dict[str, Any] = {
            "observedGeneration": int(body["metadata"].get("generation") or 0),
            "readyNodes": sum(1 for node in state.nodes if node.ready),
            "totalGpus": state.allocatable,
            "freeGpus": state.free,
            "nodes": [
                {"name": node.name, "allocatableGpus": node.allocatable_gpus,
                 "requestedGpus": state.requested_by_node.get(node.name, 0)}
                for node in state.nodes
            ],
        }  # fmt: skip
        current = dict(body.get("status") or {})
        if is_subset(wanted, current):
            continue
        freed = freed or wanted["freeGpus"] > int(current.get("freeGpus", wanted["freeGpus"]))
        try:
            patch_status(api, "gpunodepools", None, name, wanted)
        except KubeError as error:
            failed.append((name, error))
    if failed:
        causes = "; ".join(f"{name}: {error}" for name, error in failed)
        raise KubeError(f"could not update the status of pools: {causes}", failed[0][1].status)
    return freed
