"""The Helm chart: lints, renders every documented combination of values into objects a fresh cluster serves,
refuses unknown and contradictory values, and grants least privilege in both RBAC modes."""

import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.operator.settings import PEERING_NAME
from tests.tools import helm_binary

CHART = Path(__file__).resolve().parents[1] / "charts" / "modelplane"
RELEASE_NAMESPACE = "modelplane-system"
SERVICE_MONITOR = "monitoring.coreos.com/v1/ServiceMonitor"
WATCHED = ["team-a", "team-b"]
WATCH = f"watchNamespaces={{{','.join(WATCHED)}}}"
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "gpunodepools", "gpunodepools/status", "nodes"}
"""What a namespace-scoped operator may hold cluster-wide: kinds that are cluster-scoped by nature."""
BUILT_IN = {
    ("v1", "ServiceAccount"), ("v1", "Service"), ("apps/v1", "Deployment"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    *(("rbac.authorization.k8s.io/v1", kind) for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")),
}  # fmt: skip


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, check=check)


def template_args(values: tuple[str, ...], api_versions: tuple[str, ...]) -> list[str]:
    flags = [arg for value in values for arg in ("--set", value)]
    flags += [arg for version in api_versions for arg in ("--api-versions", version)]
    return ["template", "modelplane", str(CHART), "--namespace", RELEASE_NAMESPACE, *flags]


def render(*values: str, api_versions: tuple[str, ...] = (), include_crds: bool = False) -> list[dict[str, Any]]:
    extra = ["--include-crds"] if include_crds else []
    output = helm(*template_args(values, api_versions), *extra).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def refusal(*values: str, api_versions: tuple[str, ...] = ()) -> str:
    """Helm's error for values the chart must refuse (it must refuse them)."""
    result = helm(*template_args(values, api_versions), check=False)
    assert result.returncode != 0, f"{values} rendered"
    return result.stderr


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def deployment_args(documents: list[dict[str, Any]]) -> list[str]:
    args: list[str] = of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_lint() -> None:
    result = helm("lint", str(CHART), "--strict", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_values_are_refused() -> None:
    assert "replicaz" in refusal("replicaz=2")


def test_crds_follow_the_switches() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in render()}
    assert ("CustomResourceDefinition", "modeldeployments.modelplane.dev") in kinds
    assert not of_kind(render("crds.enabled=false"), "CustomResourceDefinition")
    kept = of_kind(render(), "CustomResourceDefinition")
    assert all(d["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for d in kept)
    dropped = of_kind(render("crds.keep=false"), "CustomResourceDefinition")
    assert all("helm.sh/resource-policy" not in (d["metadata"].get("annotations") or {}) for d in dropped)


def test_kopf_crds_are_in_crds_directory_not_in_the_release() -> None:
    """Helm installs crds/ before the templates and waits for them, so a peering object can be in the release;
    and as crds/ are skipped when present, another kopf operator's copy of them is no conflict."""
    kopf = {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    in_release = {d["metadata"]["name"] for d in of_kind(render("replicas=2"), "CustomResourceDefinition")}
    assert not in_release & kopf
    for switches in [(), ("crds.enabled=false",)]:
        with_crds = of_kind(render("replicas=2", *switches, include_crds=True), "CustomResourceDefinition")
        assert kopf <= {d["metadata"]["name"] for d in with_crds}
    scopes = {d["metadata"]["name"]: d["spec"]["scope"] for d in of_kind(render(include_crds=True),
                                                                         "CustomResourceDefinition")}  # fmt: skip
    assert (scopes["clusterkopfpeerings.kopf.dev"], scopes["kopfpeerings.kopf.dev"]) == ("Cluster", "Namespaced")


def test_chart_crds_are_the_generated_ones() -> None:
    checked_in = {yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())
                  for p in (CHART.parents[1] / "crds").glob("*.yaml")}  # fmt: skip
    for document in render():
        if document["kind"] == "CustomResourceDefinition" and document["metadata"]["name"] in checked_in:
            assert document["spec"] == checked_in[document["metadata"]["name"]]["spec"]


# -- every documented combination --------------------------------------------------------------------------
COMBINATIONS = [
    pytest.param(replicas, watched, monitor, id=f"replicas={replicas}-{'namespaced' if watched else 'cluster'}"
                 f"{'-servicemonitor' if monitor else ''}")
    for replicas, watched, monitor in itertools.product([1, 2], [[], WATCHED], [False, True])
]  # fmt: skip


def render_combination(replicas: int, watched: list[str], monitor: bool) -> list[dict[str, Any]]:
    values = [f"replicas={replicas}", f"metrics.serviceMonitor.enabled={str(monitor).lower()}"]
    if watched:
        values.append(f"watchNamespaces={{{','.join(watched)}}}")
    return render(*values, api_versions=(SERVICE_MONITOR,) if monitor else ())


def served_before_the_release() -> set[tuple[str, str]]:
    """API versions and kinds a fresh cluster serves when Helm builds the release's objects: built-in ones and
    those of the chart's crds/, which Helm applies first. A kind whose CRD is in the templates is not served yet,
    and fails the install ("ensure CRDs are installed first")."""
    served = set(BUILT_IN)
    for path in (CHART / "crds").glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            served |= {(f"{group}/{version['name']}", kind) for version in crd["spec"]["versions"]}
    return served


@pytest.mark.parametrize(("replicas", "watched", "monitor"), COMBINATIONS)
def test_every_combination_renders_only_what_the_cluster_serves(replicas: int, watched: list[str],
                                                                monitor: bool) -> None:  # fmt: skip
    documents = render_combination(replicas, watched, monitor)
    unserved = {(d["apiVersion"], d["kind"]) for d in documents} - served_before_the_release()
    assert unserved == ({("monitoring.coreos.com/v1", "ServiceMonitor")} if monitor else set())


@pytest.mark.parametrize(("replicas", "watched", "monitor"), COMBINATIONS)
def test_every_combination_peers_where_the_operator_looks(replicas: int, watched: list[str],
                                                          monitor: bool) -> None:  # fmt: skip
    """kopf's mandatory peering pauses a replica until it sees its peering object: cluster-wide for
    --all-namespaces, in every served namespace for --namespace (kopf's peering.guess_selectors)."""
    documents = render_combination(replicas, watched, monitor)
    args = deployment_args(documents)
    served = [arg.removeprefix("--namespace=") for arg in args if arg.startswith("--namespace=")]
    assert served == watched
    assert ("--all-namespaces" in args) == (not watched)
    peerings = of_kind(documents, "ClusterKopfPeering") + of_kind(documents, "KopfPeering")
    if replicas == 1:
        assert "--standalone" in args
        assert not peerings
        return
    assert f"--peering={PEERING_NAME}" in args
    assert {d["metadata"]["name"] for d in peerings} == {PEERING_NAME}
    expected: list[tuple[str, str | None]] = [("KopfPeering", namespace) for namespace in watched]
    assert [(d["kind"], d["metadata"].get("namespace")) for d in peerings] == (
        expected or [("ClusterKopfPeering", None)]
    )


@pytest.mark.parametrize(("replicas", "watched", "monitor"), COMBINATIONS)
def test_every_combination_binds_its_roles_to_the_operator(replicas: int, watched: list[str],
                                                           monitor: bool) -> None:  # fmt: skip
    documents = render_combination(replicas, watched, monitor)
    account = of_kind(documents, "ServiceAccount")[0]["metadata"]
    assert account["name"] == of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"]
    bindings = of_kind(documents, "ClusterRoleBinding") + of_kind(documents, "RoleBinding")
    assert [b["subjects"] for b in bindings] == [[{"kind": "ServiceAccount", "name": account["name"],
                                                   "namespace": RELEASE_NAMESPACE}]] * (2 + len(watched))  # fmt: skip
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"])
             for r in of_kind(documents, "ClusterRole") + of_kind(documents, "Role")}  # fmt: skip
    assert {(b["roleRef"]["kind"], b["metadata"].get("namespace"), b["roleRef"]["name"]) for b in bindings} == roles
    assert [r["metadata"]["namespace"] for r in watched_roles(documents)] == watched


def watched_roles(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Roles of watched namespaces; not the one for model catalog ConfigMaps in the release namespace."""
    return [role for role in of_kind(documents, "Role") if not role["metadata"]["name"].endswith(CATALOG_ROLE)]


CATALOG_ROLE = "-model-catalog"


# -- RBAC ----------------------------------------------------------------------------------------------------
def all_rules(*values: str) -> list[dict[str, Any]]:
    documents = render(*values)
    return [rule for role in of_kind(documents, "ClusterRole") + of_kind(documents, "Role") for rule in role["rules"]]


RBAC_MODES = [pytest.param((), id="cluster"), pytest.param((WATCH,), id="namespaced")]


@pytest.mark.parametrize("mode", RBAC_MODES)
@pytest.mark.parametrize("forbidden", ["escalate", "bind", "impersonate", "*"])
def test_roles_grant_no_dangerous_verbs(mode: tuple[str, ...], forbidden: str) -> None:
    for rule in all_rules(*mode):
        assert forbidden not in rule["verbs"], rule


@pytest.mark.parametrize("mode", RBAC_MODES)
def test_roles_have_no_wildcards_and_no_secrets(mode: tuple[str, ...]) -> None:
    for rule in all_rules(*mode):
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"]


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip


def test_namespace_scoped_mode_holds_only_cluster_scoped_kinds_cluster_wide() -> None:
    documents = render(WATCH, "replicas=2")
    cluster_wide = grants(of_kind(documents, "ClusterRole")[0]["rules"])
    assert {resource for _, resource, _ in cluster_wide} == CLUSTER_SCOPED
    writes = {resource for _, resource, verb in cluster_wide if verb not in ("get", "list", "watch")}
    assert writes == {"gpunodepools/status"}
    per_namespace = [grants(role["rules"]) for role in watched_roles(documents)]
    assert per_namespace[0] == per_namespace[1]
    assert not {resource for _, resource, _ in per_namespace[0]} & CLUSTER_SCOPED


@pytest.mark.parametrize("mode", RBAC_MODES)
def test_model_catalog_configmaps_are_read_in_the_release_namespace_only(mode: tuple[str, ...]) -> None:
    documents = render(*mode)
    catalog = [role for role in of_kind(documents, "Role") if role["metadata"]["name"].endswith(CATALOG_ROLE)]
    assert [role["metadata"]["namespace"] for role in catalog] == [RELEASE_NAMESPACE]
    assert grants(catalog[0]["rules"]) == {("", "configmaps", verb) for verb in ("get", "list", "watch")}
    assert not any("configmaps" in rule["resources"] for role in of_kind(documents, "ClusterRole")
                   for rule in role["rules"])  # fmt: skip
    env = {item["name"]: item for item in of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"][
        "containers"][0]["env"]}  # fmt: skip
    assert env["MODELPLANE_CATALOG_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    off = render(*mode, "modelCatalog.enabled=false")
    assert not [role for role in of_kind(off, "Role") if role["metadata"]["name"].endswith(CATALOG_ROLE)]


def test_hub_resolution_mounts_the_token_secret_as_a_file_and_grants_no_secrets() -> None:
    documents = render("hub.enabled=true", "hub.endpoint=https://artifactory.example/api/huggingface",
                       "hub.tokenSecret.name=hf-token", "hub.tokenSecret.key=hf", "hub.offline=true")  # fmt: skip
    pod = of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MODELPLANE_HUB"] == "true"
    assert env["HF_ENDPOINT"] == "https://artifactory.example/api/huggingface"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_TOKEN_PATH"] == "/var/run/secrets/huggingface/token"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["hf-token"]["secret"] == {"secretName": "hf-token", "items": [{"key": "hf", "path": "token"}]}
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/var/cache/huggingface",
                                                                           "/var/run/secrets/huggingface"}  # fmt: skip
    assert not any("secrets" in rule["resources"] for rule in all_rules("hub.enabled=true"))
    assert "HF_ENDPOINT" not in {item["name"] for item in of_kind(render(), "Deployment")[0]["spec"]["template"][
        "spec"]["containers"][0]["env"]}  # fmt: skip
    assert "'/hub/endpoint': 'not a url' does not match" in refusal("hub.endpoint=not a url")


def test_both_modes_grant_the_same_rules_but_peering() -> None:
    """One set of rules, placed differently: a permission the operator needs cannot exist in one mode only."""
    cluster = grants(all_rules())
    namespaced = grants(all_rules(WATCH))
    assert {g for g in cluster if g[1] != "clusterkopfpeerings"} == {g for g in namespaced if g[1] != "kopfpeerings"}
    assert ("kopf.dev", "clusterkopfpeerings", "patch") in cluster - namespaced
    assert ("kopf.dev", "kopfpeerings", "patch") in namespaced - cluster


# -- values checked against each other ---------------------------------------------------------------------
def test_metrics_port_must_differ_from_health_port() -> None:
    message = refusal("metrics.port=8080")
    assert "metrics.port" in message
    assert "health.port" in message
    assert "metrics.port" in refusal("health.port=9191", "metrics.port=9191")
    moved = render("health.port=8181")
    container = of_kind(moved, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--liveness=http://0.0.0.0:8181/healthz" in container["args"]
    assert {"name": "health", "containerPort": 8181} in container["ports"]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert render("metrics.port=0", "health.port=9090")


def test_an_existing_service_account_must_be_named() -> None:
    assert "/serviceAccount/name" in refusal("serviceAccount.create=false")
    assert "/serviceAccount/name" in refusal("serviceAccount.create=false", "serviceAccount.name=")
    documents = render("serviceAccount.create=false", "serviceAccount.name=platform-operator",
                       WATCH)  # fmt: skip
    assert not of_kind(documents, "ServiceAccount")
    assert of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    bindings = of_kind(documents, "ClusterRoleBinding") + of_kind(documents, "RoleBinding")
    assert {b["subjects"][0]["name"] for b in bindings} == {"platform-operator"}


def test_watched_namespaces_are_distinct_names() -> None:
    assert "watchNamespaces" in refusal("watchNamespaces={team-a,team-a}")
    assert "watchNamespaces" in refusal("watchNamespaces={Team_A}")


# -- pod and metrics ---------------------------------------------------------------------------------------
def test_operator_pod_is_locked_down() -> None:
    pod = of_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]


def container_labels(documents: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = of_kind(documents, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    return labels


def test_metrics_port_service_and_optional_service_monitor() -> None:
    documents = render()
    container = of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELPLANE_METRICS_PORT", "value": "9090"} in container["env"]
    assert {"name": "metrics", "containerPort": 9090} in container["ports"]
    service = of_kind(documents, "Service")[0]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    assert service["spec"]["selector"].items() <= container_labels(documents).items()
    assert not of_kind(documents, "ServiceMonitor")

    monitored = render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom",
                       api_versions=(SERVICE_MONITOR,))  # fmt: skip
    monitor = of_kind(monitored, "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def test_service_monitor_without_its_crd_fails_naming_the_value_and_the_fix() -> None:
    """Skipping it would leave Prometheus scraping nothing, with nobody told."""
    message = refusal("metrics.serviceMonitor.enabled=true")
    assert "metrics.serviceMonitor.enabled" in message
    assert "monitoring.coreos.com/v1" in message
    assert "Prometheus Operator" in message
    assert "--api-versions monitoring.coreos.com/v1/ServiceMonitor" in message


def test_metrics_can_be_turned_off() -> None:
    documents = render("metrics.port=0")
    container = of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELPLANE_METRICS_PORT", "value": "0"} in container["env"]
    assert [port["name"] for port in container["ports"]] == ["health"]
    assert not of_kind(documents, "Service")
    message = refusal("metrics.port=0", "metrics.serviceMonitor.enabled=true", api_versions=(SERVICE_MONITOR,))
    assert "metrics.serviceMonitor.enabled" in message
    assert "metrics.port" in message


# -- the example admission policy --------------------------------------------------------------------------
ADMISSION_POLICY = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


def test_admission_policy_is_off_by_default_and_binds_what_it_ships() -> None:
    assert not of_kind(render(api_versions=(ADMISSION_POLICY,)), "ValidatingAdmissionPolicy")
    documents = render("admissionPolicy.enabled=true", "admissionPolicy.maxReplicas=2",
                       "admissionPolicy.allowedServiceTypes={ClusterIP,NodePort}",
                       "admissionPolicy.namespaceSelector.matchLabels.tier=serving",
                       api_versions=(ADMISSION_POLICY,))  # fmt: skip
    policy, binding = (
        of_kind(documents, "ValidatingAdmissionPolicy")[0],
        of_kind(documents, "ValidatingAdmissionPolicyBinding")[0],
    )
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {"matchLabels": {"tier": "serving"}}
    expressions = [validation["expression"] for validation in policy["spec"]["validations"]]
    assert 'object.spec.serviceType in ["ClusterIP","NodePort"]' in expressions[0]
    assert "object.spec.replicas <= 2" in expressions[1]


def test_admission_policy_refuses_values_it_cannot_enforce() -> None:
    assert "--api-versions" in refusal("admissionPolicy.enabled=true")
    assert "allowedServiceTypes" in refusal("admissionPolicy.allowedServiceTypes={ExternalName}")
    assert "allowedServiceTypes" in refusal("admissionPolicy.allowedServiceTypes={}", api_versions=(ADMISSION_POLICY,))
