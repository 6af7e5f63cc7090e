"""spec.podTemplate: what real clusters need of the serving pods, without reaching what the plan decides."""

from typing import Any

import pytest

from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import ModelDeployment
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_deployment
from modelplane.render.errors import RenderError
from tests.support import MULTI_NODE, SINGLE, deployment, pool

NON_ROOT = {"securityContext": {"runAsNonRoot": True}}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "gpu.memory", "operator": "Gt",
                                                                 "values": ["40000"]}]}}],
    },
    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]},
}  # fmt: skip
EVERYTHING = {**NON_ROOT, "runtimeClassName": "nvidia", "priorityClassName": "inference",
              "imagePullSecrets": [{"name": "mirror"}], "affinity": AFFINITY}  # fmt: skip
TAINTED = [pool("h100", "H100-SXM-80GB", 8, 2, tolerations=[{"key": "gpu", "operator": "Exists"}])]


def pods(md: ModelDeployment, pools: list[Any] | None = None) -> list[dict[str, Any]]:
    plan = plan_deployment(md, offers_for(pools or [])).plan
    assert plan is not None
    return [pod for obj in render_deployment(md, plan) for pod in pod_specs(obj)]


@pytest.mark.parametrize("spec", [SINGLE, MULTI_NODE], ids=["single", "multi-node"])
def test_overrides_reach_every_pod(spec: dict[str, Any]) -> None:
    for pod in pods(deployment(**spec, podTemplate=EVERYTHING)):
        assert pod["affinity"] == AFFINITY
        assert (pod["runtimeClassName"], pod["priorityClassName"]) == ("nvidia", "inference")
        assert pod["imagePullSecrets"] == [{"name": "mirror"}]


def test_without_overrides_the_pod_has_none_of_their_fields() -> None:
    (pod,) = pods(deployment(**SINGLE))
    assert not {"affinity", "runtimeClassName", "priorityClassName", "imagePullSecrets"} & set(pod)


@pytest.mark.parametrize("spec", [SINGLE, MULTI_NODE], ids=["single", "multi-node"])
def test_overrides_leave_what_the_plan_decides_alone(spec: dict[str, Any]) -> None:
    """GPUs, the pool's nodeSelector and tolerations, the command: identical with and without every override."""
    planned = ("nodeSelector", "tolerations", "automountServiceAccountToken")
    for plain, custom in zip(pods(deployment(**spec), TAINTED), pods(deployment(**spec, podTemplate=EVERYTHING),
                                                                       TAINTED), strict=True):  # fmt: skip
        assert {key: plain[key] for key in planned} == {key: custom[key] for key in planned}
        for before, after in zip(plain["containers"], custom["containers"], strict=True):
            for key in ("image", "command", "args", "resources", "ports", "securityContext"):
                assert before[key] == after[key], key


@pytest.mark.parametrize("spec", [SINGLE, MULTI_NODE], ids=["single", "multi-node"])
def test_non_root_mode_meets_pod_security_restricted(spec: dict[str, Any]) -> None:
    """The fields the "restricted" profile checks (kubernetes.io/docs/concepts/security/pod-security-standards);
    tests/e2e/test_pod_security.py has the API server's own admission judge the same pods."""
    for pod in pods(deployment(**spec, podTemplate=NON_ROOT)):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 1000
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {kind for volume in pod["volumes"] for kind in volume if kind != "name"} <= {
            "emptyDir", "persistentVolumeClaim", "configMap", "secret", "projected", "downwardAPI", "csi",
            "ephemeral"}  # fmt: skip
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_non_root_mode_gives_the_images_writable_home_and_tmp() -> None:
    (pod,) = pods(deployment(**SINGLE, podTemplate=NON_ROOT))
    (container,) = pod["containers"]
    assert {"name": "home", "emptyDir": {}} in pod["volumes"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert (mounts["/home/modelplane"], mounts["/tmp"]) == ("home", "tmp")
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert (env["HOME"], env["USER"]) == ("/home/modelplane", "modelplane")


def test_chosen_ids_are_used_and_the_group_follows_the_user() -> None:
    (pod,) = pods(deployment(**SINGLE, podTemplate={"securityContext": {"runAsNonRoot": True, "runAsUser": 5000}}))
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (5000, 5000, 5000)
    assert context["fsGroupChangePolicy"] == "OnRootMismatch", "a model cache is not chowned file by file"


def test_the_default_mode_stays_as_the_upstream_images_run() -> None:
    (pod,) = pods(deployment(**SINGLE))
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert [volume["name"] for volume in pod["volumes"]] == ["shm"]


def test_non_root_mode_moves_the_default_cache_mount_out_of_root() -> None:
    (pod,) = pods(deployment(**SINGLE, podTemplate=NON_ROOT, modelCache={"pvcName": "hf"}))
    (container,) = pod["containers"]
    path = "/home/modelplane/.cache/huggingface"
    assert {"name": "model-cache", "mountPath": path} in container["volumeMounts"]
    assert {"name": "HF_HOME", "value": path} in container["env"]


@pytest.mark.parametrize("path", ["/root/.cache/huggingface", "/root"])
def test_non_root_mode_refuses_a_cache_the_user_cannot_enter(path: str) -> None:
    md = deployment(**SINGLE, podTemplate=NON_ROOT, modelCache={"pvcName": "hf", "mountPath": path})
    with pytest.raises(RenderError) as caught:
        pods(md)
    assert caught.value.field == "spec.modelCache.mountPath"
    assert "non-root user cannot enter" in caught.value.problem


@pytest.mark.parametrize("path", ["/home/modelplane", "/home", "/tmp/hf", "/"])
def test_non_root_mode_refuses_a_cache_over_its_writable_directories(path: str) -> None:
    md = deployment(**SINGLE, podTemplate=NON_ROOT, modelCache={"pvcName": "hf", "mountPath": path})
    with pytest.raises(RenderError, match="is, contains or lies inside"):
        pods(md)


@pytest.mark.parametrize("name", ["HOME", "USER"])
def test_env_may_not_replace_the_non_root_directories(name: str) -> None:
    with pytest.raises(RenderError) as caught:
        pods(deployment(**SINGLE, podTemplate=NON_ROOT, env=[{"name": name, "value": "/root"}]))
    assert caught.value.field == "spec.env[0].name"
    assert "non-root mode" in caught.value.problem


@pytest.mark.parametrize(
    ("template", "problem"),
    [({"securityContext": {"runAsUser": 1000}}, "belong to the non-root mode"),
     ({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, "runAsUser"),
     ({"runtimeClassName": "Not A Name"}, "runtimeClassName"),
     ({"imagePullSecrets": [{"name": ""}]}, "imagePullSecrets"),
     ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
      "nodeSelectorTerms"),
     ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
         {"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1", "2"]}]}}]}}},
      "one integer for Gt and Lt"),
     ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}},
      "topologyKey"),
     ({"nodeSelector": {"a": "b"}}, "nodeSelector"),
     ({"containers": []}, "containers")],
)  # fmt: skip
def test_malformed_or_plan_owned_pod_fields_are_refused(template: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidObjectError, match=problem):
        deployment(**SINGLE, podTemplate=template)
