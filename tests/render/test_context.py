"""Settings that would collide with what the renderer sets itself are refused, naming the field and the fix."""

from typing import Any

import pytest

from modelplane.api.model_deployment import ModelDeployment
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_deployment
from modelplane.render.errors import RenderError
from tests.support import MULTI_NODE, SINGLE, deployment

CACHE = {"pvcName": "hf-cache"}
TOKEN = {"name": "hf-token"}


def render(md: ModelDeployment) -> list[dict[str, Any]]:
    plan = plan_deployment(md, offers_for([])).plan
    assert plan is not None
    return render_deployment(md, plan)


def env_names(objects: list[dict[str, Any]]) -> list[list[str]]:
    return [[var["name"] for var in container["env"]]
            for obj in objects for pod in pod_specs(obj) for container in pod["containers"]]  # fmt: skip


def test_multi_node_spec_renders_a_leaderworkerset() -> None:
    assert "LeaderWorkerSet" in {obj["kind"] for obj in render(deployment(**MULTI_NODE))}


@pytest.mark.parametrize(
    ("spec", "name", "owner"),
    [
        ({**SINGLE, "hfTokenSecretRef": TOKEN}, "HF_TOKEN", "spec.hfTokenSecretRef"),
        ({**SINGLE, "modelCache": CACHE}, "HF_HOME", "spec.modelCache.mountPath"),
        ({**MULTI_NODE, "hfTokenSecretRef": TOKEN}, "HF_TOKEN", "spec.hfTokenSecretRef"),
        (MULTI_NODE, "LWS_LEADER_ADDRESS", "LeaderWorkerSet controller"),
        (MULTI_NODE, "LWS_GROUP_SIZE", "LeaderWorkerSet controller"),
    ],
)
def test_env_may_not_repeat_a_variable_the_renderer_sets(spec: dict[str, Any], name: str, owner: str) -> None:
    md = deployment(**spec, env=[{"name": "A", "value": "1"}, {"name": name, "value": "plaintext"}])
    with pytest.raises(RenderError) as caught:
        render(md)
    assert caught.value.field == "spec.env[1].name"
    assert name in caught.value.problem
    assert owner in caught.value.problem
    assert "remove it from spec.env" in caught.value.problem


@pytest.mark.parametrize(
    ("spec", "name"), [(SINGLE, "HF_TOKEN"), (SINGLE, "HF_HOME"), (SINGLE, "LWS_GROUP_SIZE"), (MULTI_NODE, "HF_HOME")]
)
def test_env_names_the_renderer_leaves_alone_are_the_users(spec: dict[str, Any], name: str) -> None:
    for names in env_names(render(deployment(**spec, env=[{"name": name, "value": "mine"}]))):
        assert names.count(name) == 1


def test_the_operator_reports_a_repeated_variable_as_an_invalid_serving_spec() -> None:
    body = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "ns", "generation": 1, "uid": "u"},
            "spec": {**SINGLE, "modelCache": CACHE, "env": [{"name": "HF_HOME", "value": "/tmp"}]}}  # fmt: skip
    decision = decide(body, lambda: offers_for([]))
    assert decision.objects is None
    condition = decision.conditions["Planned"]
    assert (condition.status, condition.reason) == ("False", "InvalidServingSpec")
    assert condition.message.startswith("spec.env[0].name: HF_HOME")


@pytest.mark.parametrize("path", ["/dev/shm", "/dev/shm/", "//dev/shm", "/dev/./shm", "/dev/shm/hf", "/dev", "/"])
def test_model_cache_may_not_share_the_shared_memory_mount(path: str) -> None:
    md = deployment(**SINGLE, modelCache={**CACHE, "mountPath": path})
    with pytest.raises(RenderError) as caught:
        render(md)
    assert caught.value.field == "spec.modelCache.mountPath"
    assert caught.value.problem.startswith(f"{path} ")
    assert "/dev/shm" in caught.value.problem


@pytest.mark.parametrize("path", ["/dev/shmem", "/models", "/root/.cache/huggingface"])
def test_model_cache_mounts_beside_shared_memory(path: str) -> None:
    objects = render(deployment(**SINGLE, modelCache={**CACHE, "mountPath": path}))
    container = pod_specs(next(obj for obj in objects if obj["kind"] == "Deployment"))[0]["containers"][0]
    mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
    assert path in mounts
    assert len(set(mounts)) == len(mounts)
