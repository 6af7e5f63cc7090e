"""Who reaches a serving pod: the NetworkPolicy rendered for every deployment, and the API key from a Secret."""

from typing import Any

import pytest

from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import ModelDeployment
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_deployment
from modelplane.render.errors import RenderError
from tests.support import MULTI_NODE, SINGLE, deployment

KEY = {"name": "chat-api-key", "key": "api-key"}
MEMBERS = {"podSelector": {"matchLabels": {"modelplane.dev/deployment": "chat"}}}
SERVING_PORT = [{"port": 8000, "protocol": "TCP"}]


def render(md: ModelDeployment) -> list[dict[str, Any]]:
    plan = plan_deployment(md, offers_for([])).plan
    assert plan is not None
    return render_deployment(md, plan)


def policy(**spec: Any) -> dict[str, Any]:
    objects = render(deployment(**spec))
    assert objects[0]["kind"] == "NetworkPolicy", "the policy is applied before any pod exists"
    found: dict[str, Any] = objects[0]["spec"]
    return found


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [container for obj in objects for pod in pod_specs(obj) for container in pod["containers"]]


def test_by_default_only_pods_of_the_namespace_reach_the_serving_port() -> None:
    assert policy(**SINGLE) == {**MEMBERS, "policyTypes": ["Ingress"],
                                "ingress": [{"from": [{"podSelector": {}}], "ports": SERVING_PORT}]}  # fmt: skip


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_a_service_exposed_outside_the_cluster_is_open_to_any_source_by_default(service_type: str) -> None:
    """The Service already admits whoever reaches a node or the load balancer; a same-namespace rule would
    silently drop that traffic. The port is still the only one open."""
    assert policy(**SINGLE, serviceType=service_type)["ingress"] == [{"ports": SERVING_PORT}]


def test_allowed_clients_replace_the_default_verbatim() -> None:
    allowed = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
         "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["prometheus"]}]}},
        {"namespaceSelector": {}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
    ]  # fmt: skip
    ingress = policy(**SINGLE, serviceType="LoadBalancer", network={"allowFrom": allowed})["ingress"]
    assert ingress == [{"from": allowed, "ports": SERVING_PORT}]


def test_ray_and_worker_ports_of_a_multi_node_replica_are_open_to_its_own_pods_only() -> None:
    ingress = policy(**MULTI_NODE)["ingress"]
    assert ingress == [{"from": [{"podSelector": {}}], "ports": SERVING_PORT}, {"from": [MEMBERS]}]


def test_the_policy_selects_every_pod_of_the_workload_and_nothing_else() -> None:
    objects = render(deployment(**MULTI_NODE))
    selector = objects[0]["spec"]["podSelector"]["matchLabels"]
    templates = objects[-1]["spec"]["leaderWorkerTemplate"]
    for template in (templates["leaderTemplate"], templates["workerTemplate"]):
        assert selector.items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("peer", "problem"),
    [({}, "a peer is an ipBlock alone"),
     ({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}, "a peer is an ipBlock alone"),
     ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "values must be non-empty"),
     ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}},
      "empty for Exists"),
     ({"ipBlock": {"cidr": "everywhere"}}, "cidr"),
     ({"ipBlock": {"cidr": "10.0.0.0/33"}}, "each except entry a CIDR strictly inside"),
     ({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}, "strictly inside"),
     ({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}, "strictly inside"),
     ({"ipBlock": {"cidr": "::/0", "except": ["10.0.0.0/8"]}}, "strictly inside")],
)  # fmt: skip
def test_malformed_clients_are_refused_as_the_api_server_refuses_them(peer: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidObjectError, match=problem):
        deployment(**SINGLE, network={"allowFrom": [peer]})


def test_an_empty_client_list_is_refused_rather_than_read_as_everyone() -> None:
    """A NetworkPolicy rule with an empty `from` admits every source; an empty allowFrom must not turn into it."""
    with pytest.raises(InvalidObjectError, match="allowFrom"):
        deployment(**SINGLE, network={"allowFrom": []})


def test_vllm_reads_the_api_key_from_the_secret_in_its_environment_never_in_args() -> None:
    server = containers(render(deployment(**SINGLE, apiKeySecretRef=KEY)))[0]
    assert {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": KEY}} in server["env"]
    assert not [arg for arg in server["args"] if "api-key" in arg or "chat-api-key" in arg]


def test_workers_of_a_multi_node_replica_do_not_get_the_api_key() -> None:
    leader, worker = containers(render(deployment(**MULTI_NODE, apiKeySecretRef=KEY)))
    assert "VLLM_API_KEY" in [var["name"] for var in leader["env"]]
    assert "VLLM_API_KEY" not in [var["name"] for var in worker["env"]]


def test_tensorrt_llm_has_no_api_key_and_says_so() -> None:
    with pytest.raises(RenderError) as caught:
        render(deployment(**SINGLE, runtime="tensorrt-llm", apiKeySecretRef=KEY))
    assert caught.value.field == "spec.apiKeySecretRef"
    assert "trtllm-serve 1.2.1 has no API-key option" in caught.value.problem
    assert "spec.network.allowFrom" in caught.value.problem


def test_env_may_not_set_the_api_key_variable_next_to_the_secret() -> None:
    with pytest.raises(RenderError) as caught:
        render(deployment(**SINGLE, apiKeySecretRef=KEY, env=[{"name": "VLLM_API_KEY", "value": "plaintext"}]))
    assert caught.value.field == "spec.env[0].name"
    assert "spec.apiKeySecretRef" in caught.value.problem


@pytest.mark.parametrize("extra_args", [["--api-key", "plaintext"], ["--api_key=plaintext"]])
def test_the_api_key_flag_is_refused_in_extra_args(extra_args: list[str]) -> None:
    with pytest.raises(RenderError) as caught:
        render(deployment(**SINGLE, extraArgs=extra_args))
    assert caught.value.field == "spec.extraArgs[0]"
    assert "in plain text; use spec.apiKeySecretRef" in caught.value.problem
