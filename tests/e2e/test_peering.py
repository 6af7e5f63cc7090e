"""Two operator replicas with peering (as the chart runs them with replicas > 1): only one acts."""

import subprocess
from pathlib import Path

from tests.e2e.conftest import LocalCluster, kubectl
from tests.e2e.operator_support import CHART, Cluster, OperatorProcess, model_deployment, running_operator, wait_for
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
        with running_operator(chart_rbac_kubeconfig, logs[0], ("--peering=modelplane",)), \
                running_operator(chart_rbac_kubeconfig, logs[1], ("--peering=modelplane",)):  # fmt: skip
            wait_for(lambda: any("Pausing operations in favour of" in log.read_text() for log in logs), 90,
                     "one replica to pause in favour of the other")  # fmt: skip
            kube.create_md(model_deployment("peered", namespace))
            kube.wait_condition(namespace, "peered", "Planned", "True", timeout=90)
            acted = [log for log in logs if f"[{namespace}/peered] Handler 'model_deployment_event'" in log.read_text()]
            assert len(acted) == 1, [log.name for log in acted]
            paused = [log for log in logs if "Pausing operations in favour of" in log.read_text()]
            assert paused != acted
    finally:
        operator.start()
