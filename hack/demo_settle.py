"""Wait until the operator is done with every ModelDeployment of `make demo`, then print what it decided.

"Done" is what tests/e2e/test_lifecycle.py's `_settled` means: the Planned condition is of the latest
generation, and the deployment was refused (Planned=False) or is Ready (multi-node ones too: the cluster runs
the LeaderWorkerSet controller). One deadline for all; short watches, so an operator that died is
noticed within seconds rather than at the deadline. On timeout, the ones that did not settle are listed.

Usage: python -m hack.demo_settle TIMEOUT OPERATOR_PID_FILE OPERATOR_LOG VENV
"""

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

RESOURCE = ("modelplane.dev", "v1alpha1", "modeldeployments")
Object = dict[str, Any]


def key(md: Object) -> str:
    return f"{md['metadata']['namespace']}/{md['metadata']['name']}"


def conditions(md: Object) -> dict[str, Object]:
    return {c["type"]: c for c in (md.get("status") or {}).get("conditions") or []}


def nodes_per_replica(md: Object) -> int:
    return int(((md.get("status") or {}).get("plan") or {}).get("nodesPerReplica") or 1)


def settled(md: Object) -> bool:
    planned, ready = conditions(md).get("Planned"), conditions(md).get("Ready")
    if planned is None or planned.get("observedGeneration") != md["metadata"]["generation"]:
        return False
    return planned["status"] == "False" or (ready or {}).get("status") == "True"


def operator_alive(pid_file: Path, log: Path) -> bool:
    """The operator that `make demo` started still runs: its pid's stdout is the demo's log."""
    pid = pid_file.read_text().strip()
    stdout = Path(f"/proc/{pid}/fd/1")
    return stdout.exists() and os.path.samefile(stdout, log)


def row(md: Object, venv: str) -> list[str]:
    plan, found = (md.get("status") or {}).get("plan") or {}, conditions(md)
    planned, ready = found["Planned"], found.get("Ready") or {"status": "-", "reason": "-"}
    note = ""
    if planned["status"] == "False":
        name, namespace = md["metadata"]["name"], md["metadata"]["namespace"]
        note = f"{planned['reason']}: {venv}/bin/modelplane explain md/{name} -n {namespace}"
    elif ready["reason"] == "PlanOnly":
        note = "planned only: nothing created"
    elif nodes_per_replica(md) > 1:
        note = f"{nodes_per_replica(md)} nodes per replica: a LeaderWorkerSet"
    shape = f"TP{plan['tensorParallel']}×PP{plan['pipelineParallel']}" if plan else "-"
    gpus = f"{plan['gpusPerReplica']}×{plan['replicas']}" if plan else "-"
    estimates = plan.get("estimates") or {}
    return [key(md), plan.get("pool", "-"), plan.get("gpu", "-"), plan.get("quantization", "-"), shape, gpus,
            str(estimates.get("decodeTokensPerSecond") or "-"), estimates.get("costPerHour") or "-",
            ready["status"], ready["reason"], note]  # fmt: skip


def show(items: dict[str, Object], venv: str) -> None:
    rows = [["DEPLOYMENT", "POOL", "GPU", "QUANT", "SHAPE", "GPUS", "TOK/S", "$/H", "READY", "REASON", ""]]
    rows += [row(md, venv) for _, md in sorted(items.items())]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    print("\nWhat the operator decided (status.plan and the Ready condition of each ModelDeployment):")
    for cells in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())


def wait(timeout: float, alive: Callable[[], bool]) -> dict[str, Object]:
    """The ModelDeployments as last seen, once all settled, the deadline passed or the operator exited."""
    api = client.CustomObjectsApi()
    deadline = time.monotonic() + timeout
    while True:
        listed = api.list_cluster_custom_object(*RESOURCE)
        items = {key(md): md for md in listed["items"]}
        remaining = deadline - time.monotonic()
        if all(map(settled, items.values())) or remaining <= 0 or not alive():
            return items
        try:
            for event in watch.Watch().stream(api.list_cluster_custom_object, *RESOURCE,
                                              resource_version=listed["metadata"]["resourceVersion"],
                                              timeout_seconds=max(1, min(10, round(remaining)))):  # fmt: skip
                items[key(event["object"])] = event["object"]
                if all(map(settled, items.values())):
                    return items
        except client.ApiException as error:
            if error.status != 410:  # 410: our resourceVersion was compacted away; list again
                raise


def main(argv: list[str]) -> int:
    timeout, pid_file, log, venv = float(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    config.load_kube_config()
    alive = functools.partial(operator_alive, pid_file, log)
    items = wait(timeout, alive)
    pending = [name for name, md in sorted(items.items()) if not settled(md)]
    if not pending:
        show(items, venv)
        return 0
    for name in pending:
        now = "; ".join(f"{kind}={c['status']} ({c['reason']})" for kind, c in conditions(items[name]).items()
                        if kind in ("Planned", "Ready"))  # fmt: skip
        print(f"  {name}: {now or 'no status yet'}", file=sys.stderr)
    print("the operator exited" if not alive() else f"not settled after {timeout:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
