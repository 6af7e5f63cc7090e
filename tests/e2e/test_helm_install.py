"""`helm install` of the chart, for real, on the local control plane: one command for every documented
combination of replicas, watchNamespaces and the ServiceMonitor.

The chart's image cannot be pulled here, so the operator runs as local processes with exactly what the installed
release gives its pods: the arguments of the installed Deployment and the token of the installed ServiceAccount
(so the release's own ClusterRole, Roles and peering objects are what is tested).
"""

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelplane.operator.settings import PEERING_NAME
from tests.e2e.conftest import POOLS_FILE, LocalCluster, kubectl
from tests.e2e.operator_support import (
    CHART,
    Cluster,
    OperatorProcess,
    model_deployment,
    operator_process,
    token_kubeconfig,
    wait_for,
)
from tests.e2e.test_peering import acting, handled
from tests.tools import helm_binary

RELEASE = "helm-e2e"
RELEASE_NAMESPACE = "helm-e2e-system"
FULLNAME = f"{RELEASE}-modelplane"
ACCOUNT = f"system:serviceaccount:{RELEASE_NAMESPACE}:{FULLNAME}"
OUR_CRDS = ("modeldeployments.modelplane.dev", "gpunodepools.modelplane.dev")
SERVICE_MONITOR_CRD = {
    # A stand-in with the Prometheus Operator's group, kind and scope (its schema is not vendored here): what the
    # chart checks for is that the cluster serves the kind, and what the install needs is that it accepts the object.
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


@dataclass(frozen=True)
class Release:
    cluster: LocalCluster
    kube: Cluster
    directory: Path

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(helm_binary()), f"--kubeconfig={self.cluster.kubeconfig}", *args],
                              capture_output=True, text=True)  # fmt: skip

    def install(self, *values: str) -> subprocess.CompletedProcess[str]:
        flags = [arg for value in (*crd_values(self.cluster), *values) for arg in ("--set", value)]
        return self.helm("install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, *flags)

    def deployment(self) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.apps.read_namespaced_deployment(FULLNAME, RELEASE_NAMESPACE).to_dict()
        return found

    def operator_args(self) -> list[str]:
        """The installed Deployment's arguments, with the liveness endpoint moved to a free local port."""
        args: list[str] = self.deployment()["spec"]["template"]["spec"]["containers"][0]["args"]
        return [arg for arg in args if not arg.startswith("--liveness=")]

    def service_account_kubeconfig(self) -> Path:
        """Credentials of the installed ServiceAccount: what the chart's pods would run with."""
        token = kubectl(self.cluster, "create", "token", FULLNAME, "-n", RELEASE_NAMESPACE, "--duration=1h").stdout
        return token_kubeconfig(self.cluster.kubeconfig, token, FULLNAME, self.directory / "operator-kubeconfig")

    @contextmanager
    def replicas(self, count: int) -> Iterator[list[Path]]:
        """`count` operator processes run as the release's pods would; yields their logs once all are live."""
        kubeconfig, args = self.service_account_kubeconfig(), self.operator_args()
        logs = [self.cluster.logs / f"operator-helm-{index}.log" for index in range(count)]
        with ExitStack() as stack:
            for log in logs:
                log.unlink(missing_ok=True)
                stack.enter_context(operator_process(kubeconfig, log, args))
            yield logs
        denied = [line for log in logs for line in log.read_text().splitlines() if "forbidden: User" in line]
        assert not denied, f"the release's RBAC denied the operator: {denied[:3]}"


def crd_values(cluster: LocalCluster) -> tuple[str, ...]:
    """`crds.enabled=false` when another test's fixture applied our CRDs (they are not Helm's to adopt then):
    on a fresh cluster, and for this module's own earlier releases (kept on uninstall), the chart installs them."""
    for name in OUR_CRDS:
        found = kubectl(cluster, "get", "crd", name, "-o", "json", check=False)
        if found.returncode == 0:
            annotations = json.loads(found.stdout)["metadata"].get("annotations") or {}
            if annotations.get("meta.helm.sh/release-name") != RELEASE:
                return ("crds.enabled=false",)
    return ()


@pytest.fixture
def release(local_cluster: LocalCluster, kube: Cluster, tmp_path: Path,
            operator: OperatorProcess) -> Iterator[Release]:  # fmt: skip
    """An empty release namespace; whatever the test installed there is uninstalled afterwards.

    The session's own operator (cluster-wide, every namespace) is stopped meanwhile: the release's operators
    must be the only ones acting, or "left alone" and "planned by one replica" would see its work.
    """
    operator.stop()
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=RELEASE_NAMESPACE)))
    remove_unowned_cluster_peering(kube)
    installed = Release(local_cluster, kube, tmp_path)
    try:
        yield installed
    finally:
        installed.helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait")
        delete_namespaces(kube, [RELEASE_NAMESPACE])
        operator.start()


@pytest.fixture
def watched(kube: Cluster) -> Iterator[list[str]]:
    """Two namespaces to watch (they must exist before the install) and one the operator must leave alone."""
    names = ["helm-e2e-team-a", "helm-e2e-team-b", "helm-e2e-other"]
    for name in names:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield names[:2]
    delete_namespaces(kube, names)


def delete_namespaces(kube: Cluster, names: list[str]) -> None:
    """Deleted and gone, so that the next test can create them again."""
    for name in names:
        kube.core.delete_namespace(name)
    for name in names:
        wait_for(lambda: not kube.exists(lambda: kube.core.read_namespace(name)), 120,  # noqa: B023 (called at once)
                 f"namespace {name} gone")  # fmt: skip


def remove_unowned_cluster_peering(kube: Cluster) -> None:
    """A ClusterKopfPeering of the same name applied by hand (test_peering.py does) fails a `replicas` > 1 install,
    as Helm adopts nothing it did not create (the chart's README says so to users): removed first."""
    try:
        found = peering(kube, None)
    except client.ApiException as error:
        if error.status == 404:
            return
        raise
    if (found["metadata"].get("annotations") or {}).get("meta.helm.sh/release-name") != RELEASE:
        kube.custom.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", PEERING_NAME)


def installed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def pools(cluster: LocalCluster) -> None:
    """The example GPUNodePools, once the release has installed their CRD."""
    kubectl(cluster, "wait", "--for=condition=Established", *(f"crd/{name}" for name in OUR_CRDS), "--timeout=60s")
    kubectl(cluster, "apply", "--server-side", "-f", str(POOLS_FILE))


def peering(kube: Cluster, namespace: str | None) -> dict[str, Any]:
    """The release's peering object: cluster-wide, or the one in `namespace`."""
    if namespace is None:
        found: dict[str, Any] = kube.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings",
                                                                      PEERING_NAME)  # fmt: skip
    else:
        found = kube.custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", PEERING_NAME)
    return found


def peers(kube: Cluster, namespace: str | None) -> set[str]:
    """The operator identities registered (alive) in a peering object."""
    return {identity for identity, peer in (peering(kube, namespace).get("status") or {}).items()
            if peer and peer.get("lifetime")}  # fmt: skip


def one_acts(kube: Cluster, logs: list[Path], peering_namespaces: list[str | None]) -> int:
    """Wait until every replica registered with every peering object and exactly one acts; its index."""
    for namespace in peering_namespaces:
        wait_for(lambda: len(peers(kube, namespace)) == len(logs), 60,  # noqa: B023 (called before the loop moves on)
                 f"{len(logs)} peers in {namespace or 'the cluster'}'s peering")  # fmt: skip
    wait_for(lambda: [acting(log) for log in logs].count(True) == 1, 90, "exactly one acting replica",
             lambda: [acting(log) for log in logs])  # fmt: skip
    return [acting(log) for log in logs].index(True)


def planned_by_one(kube: Cluster, logs: list[Path], namespace: str, name: str) -> None:
    kube.create_md(model_deployment(name, namespace))
    kube.wait_condition(namespace, name, "Planned", "True", timeout=120)
    assert [handled(log, namespace, name) for log in logs].count(True) == 1


def can_i(cluster: LocalCluster, verb: str, resource: str, namespace: str | None) -> bool:
    """What the release's ServiceAccount may do, by the API server's own authorizer (`resource/status` form too)."""
    resource, _, subresource = resource.partition("/")
    scope = ["-n", namespace] if namespace else []
    extra = [f"--subresource={subresource}"] if subresource else []
    result = kubectl(cluster, "auth", "can-i", verb, resource, f"--as={ACCOUNT}", *scope, *extra, check=False)
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize("replicas", [1, 2])
def test_cluster_wide(release: Release, local_cluster: LocalCluster, kube: Cluster, namespace: str,
                      replicas: int) -> None:  # fmt: skip
    installed(release.install(f"replicas={replicas}"))
    pools(local_cluster)
    assert release.deployment()["spec"]["replicas"] == replicas
    assert kube.exists(lambda: peering(kube, None)) == (replicas > 1)
    assert can_i(local_cluster, "create", "deployments.apps", namespace)
    with release.replicas(replicas) as logs:
        if replicas > 1:
            one_acts(kube, logs, [None])
        planned_by_one(kube, logs, namespace, "cluster-wide")


@pytest.mark.parametrize("replicas", [1, 2])
def test_namespace_scoped(release: Release, local_cluster: LocalCluster, kube: Cluster, watched: list[str],
                          replicas: int) -> None:  # fmt: skip
    installed(release.install(f"replicas={replicas}", f"watchNamespaces={{{','.join(watched)}}}"))
    pools(local_cluster)
    other = "helm-e2e-other"
    for namespace in watched:
        assert can_i(local_cluster, "create", "deployments.apps", namespace)
        assert can_i(local_cluster, "patch", "modeldeployments.modelplane.dev/status", namespace)
    assert not can_i(local_cluster, "create", "deployments.apps", other)
    assert not can_i(local_cluster, "list", "pods", other)
    assert not can_i(local_cluster, "list", "modeldeployments.modelplane.dev", None)
    assert can_i(local_cluster, "patch", "gpunodepools.modelplane.dev/status", None)
    for namespace in watched:
        assert kube.exists(lambda: peering(kube, namespace)) == (replicas > 1)  # noqa: B023 (called at once)
    assert not kube.exists(lambda: peering(kube, None))
    with release.replicas(replicas) as logs:
        if replicas > 1:
            one_acts(kube, logs, list(watched))
        for namespace in watched:
            planned_by_one(kube, logs, namespace, "scoped")
        kube.create_md(model_deployment("unwatched", other))
        kube.wait_condition(watched[-1], "scoped", "Planned", "True")
    assert not kube.md(other, "unwatched").get("status")
    assert not any(handled(log, other, "unwatched") for log in logs)


def test_service_monitor_without_its_crd_fails_before_creating_anything(release: Release, kube: Cluster) -> None:
    result = release.install("metrics.serviceMonitor.enabled=true")
    assert result.returncode != 0
    assert "metrics.serviceMonitor.enabled" in result.stderr
    assert "monitoring.coreos.com/v1" in result.stderr
    assert release.helm("status", RELEASE, "--namespace", RELEASE_NAMESPACE).returncode != 0
    assert not kube.apps.list_namespaced_deployment(RELEASE_NAMESPACE).items


@pytest.fixture
def service_monitor_crd(local_cluster: LocalCluster) -> Iterator[None]:
    kubectl(local_cluster, "apply", "--server-side", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
    kubectl(local_cluster, "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com",
            "--timeout=60s")  # fmt: skip
    yield
    kubectl(local_cluster, "delete", "crd", "servicemonitors.monitoring.coreos.com", "--wait=true")


def test_service_monitor_with_its_crd(release: Release, kube: Cluster, service_monitor_crd: None) -> None:
    installed(release.install("metrics.serviceMonitor.enabled=true", "replicas=2"))
    monitor = kube.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", RELEASE_NAMESPACE,
                                                       "servicemonitors", FULLNAME)  # fmt: skip
    service = kube.core.read_namespaced_service(f"{FULLNAME}-metrics", RELEASE_NAMESPACE)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (service.metadata.labels or {}).items()
    assert monitor["spec"]["endpoints"][0]["port"] == service.spec.ports[0].name


def test_service_monitor_in_namespace_scoped_mode(
    release: Release, local_cluster: LocalCluster, kube: Cluster, watched: list[str], service_monitor_crd: None
) -> None:
    """The last combination of the chart's values: both replicas, watched namespaces and a ServiceMonitor."""
    installed(release.install("metrics.serviceMonitor.enabled=true", "replicas=2",
                              f"watchNamespaces={{{','.join(watched)}}}"))  # fmt: skip
    monitor = kube.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", RELEASE_NAMESPACE,
                                                       "servicemonitors", FULLNAME)  # fmt: skip
    service = kube.core.read_namespaced_service(f"{FULLNAME}-metrics", RELEASE_NAMESPACE)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (service.metadata.labels or {}).items()
    for namespace in watched:
        assert kube.exists(lambda: peering(kube, namespace))  # noqa: B023 (called at once)
    assert not can_i(local_cluster, "list", "modeldeployments.modelplane.dev", None)


def test_admission_policy_limits_model_deployment_authors(release: Release, local_cluster: LocalCluster,
                                                          kube: Cluster, namespace: str) -> None:  # fmt: skip
    installed(release.install("admissionPolicy.enabled=true", "admissionPolicy.maxReplicas=2"))
    kubectl(
        local_cluster, "wait", "--for=condition=Established", *(f"crd/{name}" for name in OUR_CRDS), "--timeout=60s"
    )

    def refused(name: str, **spec: Any) -> str | None:
        """The API server's refusal of this ModelDeployment; None (and nothing left behind) while it admits it."""
        try:
            kube.create_md(model_deployment(name, namespace, **spec))
        except client.ApiException as error:
            return str(error.body)
        kube.delete_md(namespace, name)
        return None

    # The API server loads a new policy and binding within a second or so: wait for the first refusal.
    message = wait_for(
        lambda: refused("exposed", serviceType="LoadBalancer"), 30, "the policy to refuse a LoadBalancer"
    )
    assert "admissionPolicy.allowedServiceTypes" in message
    assert "admissionPolicy.maxReplicas" in (refused("many", replicas=3) or "")
    kube.create_md(model_deployment("allowed", namespace, replicas=2))
