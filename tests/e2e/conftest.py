"""Session fixtures for end-to-end tests on the real local control plane (hack/cluster/cluster.sh).

The cluster is reused when already up (make cluster-up), else started for the session and stopped after.
Every test gets a fresh namespace; CRDs are applied once. Waiting is polling on conditions, never sleeps.
"""

import json
import os
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.e2e.operator_support import (
    Cluster,
    OperatorProcess,
    PrometheusStandIn,
    chart_service_account_kubeconfig,
    denied_by_the_chart,
    wait_for,
)
from tests.tools import module_crd

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "hack" / "cluster" / "cluster.sh"
POOLS_FILE = REPO / "examples" / "pools" / "hybrid.yaml"


LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class LocalCluster:
    kubeconfig: Path
    logs: Path

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> dict[str, str]:
        """The last lines of every component's log (the audit log excepted), by file name."""
        return {
            log.name: "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in sorted(self.logs.glob("*.log"))
            if log.name != "audit.log"
        }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed cluster test reports the tail of every component's log next to its own output."""
    report = yield
    cluster = getattr(item, "funcargs", {}).get("local_cluster")
    if report.failed and isinstance(cluster, LocalCluster):
        for name, tail in cluster.log_tails().items():
            report.sections.append((f"{name} (last {LOG_TAIL_LINES} lines)", tail))
    return report


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def kubectl(cluster: LocalCluster, *args: str, input: str | None = None, check: bool = True,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run kubectl against the local cluster; with check, a failure raises KubectlError."""
    result = subprocess.run(["kubectl", f"--kubeconfig={cluster.kubeconfig}", *args], input=input, text=True,
                            capture_output=True)  # fmt: skip
    if check and result.returncode:
        raise KubectlError(result.returncode, result.args, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    state = Path(os.environ.get("MODELPLANE_CLUSTER_DIR", "/tmp/modelplane-cluster"))
    cluster = LocalCluster(state / "kubeconfig", state / "logs")
    reuse = subprocess.run([str(CLUSTER_SCRIPT), "status"], capture_output=True).returncode == 0
    if not reuse:
        started = subprocess.run([str(CLUSTER_SCRIPT), "up"], capture_output=True, text=True)
        if started.returncode:
            tails = "\n".join(f"--- {name}\n{tail}" for name, tail in cluster.log_tails().items())
            pytest.fail(f"cluster.sh up failed:\n{started.stderr}\n{tails}", pytrace=False)
    try:
        yield cluster
    finally:
        if not reuse:
            subprocess.run([str(CLUSTER_SCRIPT), "down"], check=False)


@pytest.fixture(scope="session")
def api_client(local_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(local_cluster.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture(scope="session")
def crds(local_cluster: LocalCluster) -> None:
    """Our CRDs and KEDA's ScaledObject CRD (from its pinned Go module, hack/keda-crd.sh), applied once and
    Established (cluster.sh up installs the LeaderWorkerSet CRD with its controller)."""
    names = []
    for path in [*sorted((REPO / "crds").glob("*.yaml")), module_crd("keda-crd.sh")]:
        applied = kubectl(local_cluster, "apply", "--server-side", "--force-conflicts", "-o", "name", "-f", str(path))
        names += applied.stdout.split()

    def established(name: str) -> bool:
        crd = json.loads(kubectl(local_cluster, "get", name, "-o", "json").stdout)
        return any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"].get("conditions", []))

    for name in names:
        wait_for(lambda: established(name), 60, f"{name} Established")  # noqa: B023 (called before the loop moves on)


@pytest.fixture(scope="session")
def pools_file() -> Path:
    return POOLS_FILE


@pytest.fixture(scope="session")
def pools(local_cluster: LocalCluster, crds: None, pools_file: Path) -> None:
    kubectl(local_cluster, "apply", "--server-side", "-f", str(pools_file))


@pytest.fixture(scope="session")
def kube(api_client: client.ApiClient) -> Cluster:
    return Cluster(api_client)


@pytest.fixture
def namespace(kube: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{abs(hash(request.node.nodeid)) % 10**8:08d}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    kube.core.delete_namespace(name)


@pytest.fixture(scope="session")
def chart_rbac_kubeconfig(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Credentials of the chart's ServiceAccount, bound to exactly the chart's ClusterRole."""
    return chart_service_account_kubeconfig(local_cluster.kubeconfig, tmp_path_factory.mktemp("rbac"))


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusStandIn]:
    stand_in = PrometheusStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="session")
def operator(local_cluster: LocalCluster, crds: None, pools: None, chart_rbac_kubeconfig: Path,
             prometheus: PrometheusStandIn) -> Iterator[OperatorProcess]:  # fmt: skip
    """The operator as a process, running with exactly the Helm chart's RBAC (its ServiceAccount's token); its
    ScaledObjects query the Prometheus stand-in."""
    log = local_cluster.logs / "operator-e2e.log"
    log.unlink(missing_ok=True)
    process = OperatorProcess(chart_rbac_kubeconfig, log, prometheus.address)
    process.start()
    yield process
    process.stop()
    denied = [line for line in log.read_text().splitlines()
              if "forbidden: User" in line and denied_by_the_chart(line)]  # fmt: skip
    assert not denied, f"the chart's RBAC denied the operator: {denied[:3]}"


def node_names(kube: Cluster, selector: str) -> list[str]:
    return [node.metadata.name for node in kube.core.list_node(label_selector=selector).items]


__all__ = ["LocalCluster", "kubectl", "node_names", "wait_for"]
