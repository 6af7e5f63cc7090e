"""Two operator replicas with peering (as the chart runs them with replicas > 1): only one acts, and the other
takes over when it goes away."""

import re
import subprocess
import urllib.request
from pathlib import Path

from modelplane.operator.settings import MAX_PRIORITY
from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import (
    CHART,
    Cluster,
    OperatorProcess,
    denied_by_the_chart,
    free_port,
    model_deployment,
    running_operator,
    wait_for,
)
from tests.tools import helm_binary

TOP = MAX_PRIORITY + 1


def test_only_one_of_two_replicas_acts(local_cluster: LocalCluster, kube: Cluster, namespace: str,
                                       operator: OperatorProcess, chart_rbac_kubeconfig: Path) -> None:  # fmt: skip
    command = [str(helm_binary()), "template", "modelplane", str(CHART), "--set", "replicas=2",
               "--show-only", "templates/peering.yaml"]  # fmt: skip
    peering = subprocess.run(command, check=True, capture_output=True, text=True)
    # kopf's peering CRDs come from the chart's crds/ directory, which helm applies before the templates.
    kubectl(local_cluster, "apply", "--server-side", "-f", str(CHART / "crds"))
    kubectl(local_cluster, "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    kubectl(local_cluster, "apply", "--server-side", "-f", "-", input=peering.stdout)
    operator.stop()
    logs = [local_cluster.logs / f"operator-peer-{index}.log" for index in range(2)]
    for log in logs:
        log.unlink(missing_ok=True)
    ports = [free_port(), free_port()]
    envs = [{"MODELPLANE_METRICS_PORT": str(port)} for port in ports]
    try:
        # Replica 0 runs as the chart runs it (a priority drawn at start); replica 1 outranks any draw, so which
        # one acts is known. It starts second: replica 0 must then step back.
        with running_operator(chart_rbac_kubeconfig, logs[0], ("--peering=modelplane",), envs[0]):
            wait_for(lambda: acting(logs[0]), 90, "the first replica to act")
            wait_for(lambda: queue_paused(ports[0]) == 0, 30, "the first replica's work queue to run")
            with running_operator(chart_rbac_kubeconfig, logs[1], ("--peering=modelplane", f"--priority={TOP}"),
                                  envs[1]) as second:  # fmt: skip
                wait_for(lambda: acting(logs[1]) and not acting(logs[0]), 90, "the first to pause for the second")
                # kopf stopped the first one's watches; its own work queue stops too, and says so.
                wait_for(lambda: (queue_paused(ports[0]), queue_paused(ports[1])) == (1, 0), 30,
                         "the paused replica's queue to stop and the acting one's to run")  # fmt: skip
                kube.create_md(model_deployment("peered", namespace))
                kube.wait_condition(namespace, "peered", "Planned", "True", timeout=90)
                assert [handled(log, namespace, "peered") for log in logs] == [False, True]
                # The acting replica goes away (a rollout, a drained node): the other takes over.
                second.terminate()
                second.wait(timeout=30)
            wait_for(lambda: acting(logs[0]), 90, "the first replica to resume")
            wait_for(lambda: queue_paused(ports[0]) == 0, 30, "the first replica's queue to run again")
            kube.create_md(model_deployment("taken-over", namespace))
            kube.wait_condition(namespace, "taken-over", "Planned", "True", timeout=120)
            assert handled(logs[0], namespace, "taken-over")
    finally:
        operator.start()
    denied = [line for log in logs for line in log.read_text().splitlines()
              if "forbidden: User" in line and denied_by_the_chart(line)]  # fmt: skip
    assert not denied, f"the chart's RBAC denied a peered replica: {denied[:3]}"


def acting(log: Path) -> bool:
    """Whether kopf's last word on peering in this log is that it resumed (it starts paused when mandatory)."""
    lines = [line for line in log.read_text().splitlines()
             if "Resuming operations after the pause" in line or "Pausing operations" in line]  # fmt: skip
    return bool(lines) and "Resuming" in lines[-1]


def queue_paused(port: int) -> int:
    """The replica's `modelplane_work_queue_paused` gauge."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(r"^modelplane_work_queue_paused (\S+)$", text, re.M)
    assert found, "no modelplane_work_queue_paused gauge"
    return int(float(found.group(1)))


def handled(log: Path, namespace: str, name: str) -> bool:
    return f"[{namespace}/{name}] Handler 'model_deployment_event'" in log.read_text()
