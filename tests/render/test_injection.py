"""Strings from a ModelDeployment never change the structure of what is rendered; they round-trip exactly."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import nodes

from modelplane.api.plan import Plan
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.context import Container, RenderContext
from modelplane.render.engine import environment, render_deployment
from tests.support import deployment

TEXT = st.text(min_size=0, max_size=60)
BASE_SPEC: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "maxModelLen": 4096}


def _plan() -> Plan:
    plan = plan_deployment(deployment(**BASE_SPEC), offers_for([])).plan
    assert plan is not None
    return plan


PLAN = _plan()


def shape(value: Any) -> Any:
    """The structure of a document with every string replaced by a marker."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def strip_user_values(objects: list[dict[str, Any]]) -> list[Any]:
    return [shape(obj) for obj in objects]


BASELINE = render_deployment(
    deployment(labels={"team": "x"}, env=[{"name": "A", "value": "x"}], extraArgs=["--seed", "x"], **BASE_SPEC), PLAN
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_value=TEXT, arg_value=TEXT.filter(lambda text: not text.startswith("-")), label_value=TEXT)
def test_user_strings_never_restructure_objects(env_value: str, arg_value: str, label_value: str) -> None:
    md = deployment(labels={"team": label_value}, env=[{"name": "A", "value": env_value}],
                    extraArgs=["--seed", arg_value], **BASE_SPEC)  # fmt: skip
    objects = render_deployment(md, PLAN)
    assert strip_user_values(objects) == strip_user_values(BASELINE)
    deployment_obj = next(obj for obj in objects if obj["kind"] == "Deployment")
    container = deployment_obj["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "A", "value": env_value} in container["env"]
    assert container["args"][-2:] == ["--seed", arg_value]
    assert deployment_obj["metadata"]["labels"]["team"] == label_value


def _attributes(owner: str) -> set[str]:
    """Attribute names the templates read from `owner` (ctx or a container c)."""
    env = environment()
    found: set[str] = set()
    loader = env.loader
    assert loader is not None
    for name in ("common/_pod.j2", "common/deployment.yaml.j2", "common/service.yaml.j2",
                 "common/poddisruptionbudget.yaml.j2", "vllm/leaderworkerset.yaml.j2"):  # fmt: skip
        source = loader.get_source(env, name)[0]
        for node in env.parse(source).find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == owner:
                found.add(node.attr)
    return found


def test_templates_only_name_fields_of_the_context() -> None:
    assert _attributes("ctx") <= set(RenderContext.model_fields)
    assert _attributes("c") <= set(Container.model_fields)
    assert _attributes("ctx")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_value=TEXT, label_value=TEXT)
def test_operator_path_keeps_structure(env_value: str, label_value: str) -> None:
    """The operator's own path (API body -> decide -> objects) keeps user strings as values, never structure."""

    def body(env: str, label: str) -> dict[str, Any]:
        metadata = {"name": "chat", "namespace": "ns", "generation": 1, "uid": "u", "labels": {"team": label}}
        spec = {**BASE_SPEC, "env": [{"name": "A", "value": env}], "extraArgs": ["--seed", "x"]}
        return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment", "metadata": metadata,
                "spec": spec}  # fmt: skip

    decision = decide(body(env_value, label_value), lambda: offers_for([]))
    baseline = decide(body("x", "x"), lambda: offers_for([]))
    assert decision.objects is not None
    assert baseline.objects is not None
    assert strip_user_values(decision.objects) == strip_user_values(baseline.objects)
    workload = next(obj for obj in decision.objects if obj["kind"] == "Deployment")
    assert {"name": "A", "value": env_value} in workload["spec"]["template"]["spec"]["containers"][0]["env"]
