"""Two operator replicas with peering (as the chart runs them with replicas > 1): only one acts, and the other
takes over when it goes away."""

import subprocess
from pathlib import Path

from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import (
    CHART,
    Cluster,
    OperatorProcess,
    chart_rbac,
    denied_by_the_chart,
    model_deployment,
    running_operator,
    wait_for,
)
from tests.tools import helm_binary


def test_only_one_of_two_replicas_acts(local_cluster: LocalCluster, kube: Cluster, namespace: str,
                                       operator: OperatorProcess, chart_rbac_kubeconfig: Path) -> None:  # fmt: skip
    command = [str(helm_binary()), "template", "modelplane", str(CHART), "--set", "replicas=2",
               "--show-only", "templates/peering.yaml"]  # fmt: skip
    peering = subprocess.run(command, check=True, capture_output=True, text=True)
    # The peering CRD and its object arrive together; the object needs the CRD established first.
    kubectl(local_cluster, "apply", "--server-side", "-f", "-", input=peering.stdout, check=False)
    kubectl(local_cluster, "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s")
    kubectl(local_cluster, "apply", "--server-side", "-f", "-", input=peering.stdout)
    operator.stop()
    logs = [local_cluster.logs / f"operator-peer-{index}.log" for index in range(2)]
    for log in logs:
        log.unlink(missing_ok=True)
    try:
        with running_operator(chart_rbac_kubeconfig, logs[0], ("--peering=modelplane",)) as first, \
                running_operator(chart_rbac_kubeconfig, logs[1], ("--peering=modelplane",)) as second:  # fmt: skip
            wait_for(lambda: any("Pausing operations in favour of" in log.read_text() for log in logs), 90,
                     "one replica to pause in favour of the other")  # fmt: skip
            kube.create_md(model_deployment("peered", namespace))
            kube.wait_condition(namespace, "peered", "Planned", "True", timeout=90)
            acted = [index for index, log in enumerate(logs) if handled(log, namespace, "peered")]
            assert len(acted) == 1, acted
            paused = [index for index, log in enumerate(logs) if "Pausing operations in favour of" in log.read_text()]
            assert paused != acted
            # The acting replica goes away (a rollout, a drained node): the other takes over.
            active, standby = (first, 1) if acted == [0] else (second, 0)
            active.terminate()
            active.wait(timeout=30)
            kube.create_md(model_deployment("taken-over", namespace))
            kube.wait_condition(namespace, "taken-over", "Planned", "True", timeout=120)
            assert handled(logs[standby], namespace, "taken-over")
    finally:
        operator.start()
    rules = next(d for d in chart_rbac() if d["kind"] == "ClusterRole")["rules"]
    denied = [line for log in logs for line in log.read_text().splitlines()
              if "forbidden: User" in line and denied_by_the_chart(line, rules)]  # fmt: skip
    assert not denied, f"the chart's RBAC denied a peered replica: {denied[:3]}"


def handled(log: Path, namespace: str, name: str) -> bool:
    return f"[{namespace}/{name}] Handler 'model_deployment_event'" in log.read_text()
