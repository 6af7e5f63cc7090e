"""Strings from a ModelDeployment never change the structure of what is rendered; they round-trip exactly.

Every user-supplied string the schema admits is fuzzed at once, through the CLI (YAML file in, YAML stream
out) and through the operator (API body in, objects out). Each rendering is compared with one of the same
deployment whose strings are plain placeholders: same documents, same keys, same list lengths.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import nodes
from typer.testing import CliRunner

from modelplane.api.base import DNS_SUBDOMAIN
from modelplane.api.contract import REPLAN_ANNOTATION, RESERVED_LABEL_PREFIXES
from modelplane.api.labels import LABEL_KEY, LABEL_VALUE, is_label_key, is_label_value
from modelplane.api.model_deployment import ENV_NAME
from modelplane.catalog.models import find_model
from modelplane.cli import app
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for
from modelplane.render.context import Container, RenderContext
from modelplane.render.engine import environment, pod_specs

runner = CliRunner()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _architecture() -> dict[str, Any]:
    """A catalog model's config.json, so any fuzzed model name plans like it."""
    entry = find_model("meta-llama/Llama-3.1-8B-Instruct")
    assert entry is not None
    return dict(entry.config)


ARCHITECTURE = _architecture()
RENDERER_ENV = {"HF_TOKEN", "HF_HOME", "VLLM_API_KEY"}
"""Set by the renderer for hfTokenSecretRef, modelCache and apiKeySecretRef, which every fuzzed deployment has."""
VALUE_FLAGS = ("--seed", "--download-dir", "--root-path")
"""vLLM flags that take one free-form value and that the plan does not set."""

TEXT = st.text(max_size=40)
# Every image reference spec.image admits: printable ASCII without spaces (quotes, braces, YAML and shell
# metacharacters included).
IMAGE_REFERENCES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
MODEL_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}(/[A-Za-z0-9][A-Za-z0-9._-]{0,30})?", fullmatch=True)
DNS_NAMES = st.from_regex(DNS_SUBDOMAIN, fullmatch=True).filter(lambda name: len(name) <= 253)
# Lone surrogates excluded, as everywhere else: no JSON or YAML document can carry one.
PATH_PART = st.text(st.characters(exclude_characters="\x00/", exclude_categories=["Cs"]), min_size=1, max_size=30)
# The deployment's own metadata as the API server admits it (label and annotation keys, label values).
METADATA_KEYS = st.from_regex(LABEL_KEY, fullmatch=True).filter(is_label_key)
LABEL_KEYS = METADATA_KEYS.filter(lambda key: not key.startswith(RESERVED_LABEL_PREFIXES))
LABEL_VALUES = st.from_regex(LABEL_VALUE, fullmatch=True).filter(is_label_value)
ANNOTATION_KEYS = METADATA_KEYS.filter(lambda key: not key.startswith(("modelplane.dev/", "prometheus.io/")))


@dataclass(frozen=True)
class UserStrings:
    """Every string of a ModelDeployment that reaches the rendered objects (and the annotations, which must not)."""

    model: str = "org/model"
    image: str = "image"
    mount_path: str = "/cache/x"
    pvc_name: str = "cache"
    secret_name: str = "secret"
    secret_key: str = "token"
    env: tuple[tuple[str, str], ...] = ()
    extra_values: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    client_labels: dict[str, str] = field(default_factory=dict)
    topology_key: str = "zone"
    pull_secret: str = "pull"
    runtime_class: str = "runtime"

    def placeholders(self) -> "UserStrings":
        """The same keys and list lengths, with plain values."""
        return dataclasses.replace(
            UserStrings(),
            env=tuple((name, "x") for name, _ in self.env),
            extra_values=tuple("x" for _ in self.extra_values),
            labels=dict.fromkeys(self.labels, "x"),
            annotations=dict.fromkeys(self.annotations, "x"),
            client_labels=dict.fromkeys(self.client_labels, "x"),
        )

    def extra_args(self) -> list[str]:
        return [token for index, value in enumerate(self.extra_values) for token in (VALUE_FLAGS[index], value)]

    def body(self) -> dict[str, Any]:
        spec = {
            "model": {"name": self.model, "architecture": ARCHITECTURE},
            "maxModelLen": 4096,
            "image": self.image,
            "modelCache": {"pvcName": self.pvc_name, "mountPath": self.mount_path},
            "hfTokenSecretRef": {"name": self.secret_name, "key": self.secret_key},
            "env": [{"name": name, "value": value} for name, value in self.env],
            "extraArgs": self.extra_args(),
            "apiKeySecretRef": {"name": self.secret_name, "key": "api-key"},
            "network": {"allowFrom": [{"podSelector": {"matchLabels": self.client_labels}}]},
            "podTemplate": {
                "runtimeClassName": self.runtime_class,
                "imagePullSecrets": [{"name": self.pull_secret}],
                "affinity": {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"topologyKey": self.topology_key, "labelSelector": {"matchLabels": self.client_labels}}
                        ]
                    }
                },
            },
        }
        metadata = {"name": "chat", "namespace": "ns", "generation": 1, "uid": "u",
                    "labels": self.labels, "annotations": self.annotations}  # fmt: skip
        return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment", "metadata": metadata, "spec": spec}


USER_STRINGS = st.builds(
    UserStrings,
    model=MODEL_NAMES.filter(lambda name: find_model(name) is None),
    image=IMAGE_REFERENCES,
    mount_path=PATH_PART.filter(lambda part: part not in (".", "..")).map(lambda part: f"/cache/{part}"),
    pvc_name=DNS_NAMES,
    secret_name=DNS_NAMES,
    secret_key=st.from_regex(r"[-._a-zA-Z0-9]{1,40}", fullmatch=True),
    env=st.lists(st.tuples(st.from_regex(ENV_NAME, fullmatch=True).filter(lambda name: len(name) <= 256), TEXT),
                 max_size=3, unique_by=lambda var: var[0]).filter(
        lambda env: not RENDERER_ENV & {name for name, _ in env}).map(tuple),
    extra_values=st.lists(TEXT.filter(lambda text: not text.startswith("-")), max_size=len(VALUE_FLAGS)).map(tuple),
    labels=st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=3),
    annotations=st.dictionaries(ANNOTATION_KEYS.filter(lambda key: key != REPLAN_ANNOTATION), TEXT, max_size=3),
    client_labels=st.dictionaries(TEXT, TEXT, max_size=3),
    topology_key=TEXT.filter(bool),
    pull_secret=DNS_NAMES,
    runtime_class=DNS_NAMES,
)  # fmt: skip


def shape(value: Any) -> Any:
    """The structure of a document with every scalar replaced by its type's name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def via_cli(strings: UserStrings) -> list[dict[str, Any]]:
    """`modelplane render - -o -` on the deployment as a YAML file, parsed back from the stream it prints.

    Written as JSON, the YAML subset in which every string is quoted: the CLI reads YAML as kubectl does, where
    an unquoted Y or on is a boolean (PyYAML's dumper quotes only its own YAML 1.1 booleans)."""
    result = runner.invoke(app, ["render", "-", "-o", "-"], input=json.dumps(strings.body()))
    assert result.exit_code == 0, result.output
    return [document for document in yaml.safe_load_all(result.stdout) if document is not None]


def via_operator(strings: UserStrings) -> list[dict[str, Any]]:
    decision = decide(strings.body(), lambda: offers_for([]))
    assert decision.objects is not None, decision.conditions
    return decision.objects


def assert_round_trip(objects: list[dict[str, Any]], strings: UserStrings) -> None:
    """Each string lands, unchanged, where it belongs; the annotations nowhere."""
    workload = next(obj for obj in objects if obj["kind"] == "Deployment")
    pod = pod_specs(workload)[0]
    container = pod["containers"][0]
    args = container["args"]
    assert args[0] == strings.model
    assert args[args.index("--served-model-name") + 1] == strings.model
    assert args[len(args) - len(strings.extra_args()) :] == strings.extra_args()
    assert container["image"] == strings.image
    assert {"name": "model-cache", "mountPath": strings.mount_path} in container["volumeMounts"]
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": strings.pvc_name}} in pod["volumes"]
    secret = {"secretKeyRef": {"name": strings.secret_name, "key": strings.secret_key}}
    env = container["env"]
    api_key = {"secretKeyRef": {"name": strings.secret_name, "key": "api-key"}}
    assert env[: len(RENDERER_ENV)] == [{"name": "HF_TOKEN", "valueFrom": secret},
                                        {"name": "HF_HOME", "value": strings.mount_path},
                                        {"name": "VLLM_API_KEY", "valueFrom": api_key}]  # fmt: skip
    selector = {"matchLabels": strings.client_labels} if strings.client_labels else {}
    policy = next(obj for obj in objects if obj["kind"] == "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": selector}]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {"topologyKey": strings.topology_key, "labelSelector": selector}
    ]
    assert (pod["imagePullSecrets"], pod["runtimeClassName"]) == ([{"name": strings.pull_secret}],
                                                                   strings.runtime_class)  # fmt: skip
    assert env[len(RENDERER_ENV) :] == [{"name": name, "value": value} for name, value in strings.env]
    for metadata in [obj["metadata"] for obj in objects] + [workload["spec"]["template"]["metadata"]]:
        assert {key: metadata["labels"][key] for key in strings.labels} == strings.labels
        assert not set(strings.annotations) & set(metadata["annotations"])


@FUZZ
@given(strings=USER_STRINGS)
def test_cli_render_keeps_user_strings_as_values(strings: UserStrings) -> None:
    objects = via_cli(strings)
    assert [shape(obj) for obj in objects] == [shape(obj) for obj in via_cli(strings.placeholders())]
    assert_round_trip(objects, strings)


@FUZZ
@given(strings=USER_STRINGS)
def test_operator_render_keeps_user_strings_as_values(strings: UserStrings) -> None:
    objects = via_operator(strings)
    assert [shape(obj) for obj in objects] == [shape(obj) for obj in via_operator(strings.placeholders())]
    assert_round_trip(objects, strings)


def test_placeholders_render_what_the_fuzzed_strings_are_compared_with() -> None:
    """The comparison is not vacuous: a deployment's user strings do show up in its objects."""
    strings = UserStrings(env=(("A", "1"),), extra_values=("7",), labels={"team": "search"}, annotations={"a": "b"})
    objects = via_cli(strings)
    assert_round_trip(objects, strings)
    assert [obj["kind"] for obj in objects] == ["NetworkPolicy", "Service", "Deployment"]


def _attributes(owner: str) -> set[str]:
    """Attribute names the templates read from `owner` (ctx or a container c)."""
    env = environment()
    found: set[str] = set()
    loader = env.loader
    assert loader is not None
    for name in ("common/_pod.j2", "common/deployment.yaml.j2", "common/service.yaml.j2",
                 "common/poddisruptionbudget.yaml.j2", "common/networkpolicy.yaml.j2",
                 "vllm/leaderworkerset.yaml.j2"):  # fmt: skip
        source = loader.get_source(env, name)[0]
        for node in env.parse(source).find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == owner:
                found.add(node.attr)
    return found


def test_templates_only_name_fields_of_the_context() -> None:
    assert _attributes("ctx") <= set(RenderContext.model_fields)
    assert _attributes("c") <= set(Container.model_fields)
    assert _attributes("ctx")
