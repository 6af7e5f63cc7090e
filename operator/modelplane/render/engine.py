"""Jinja environment and the render entry point shared by the CLI and the operator.

Templates see one RenderContext and pass every value through `tojson`; the output is parsed back
with YAML's safe loader and checked against the plan before anyone can apply or print it.
"""

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jinja2 import Environment, FunctionLoader, StrictUndefined

from modelplane.api.contract import CHILD_KIND_ORDER, DEPLOYMENT, LEADER_WORKER_SET, WORKLOAD_KINDS
from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import Plan
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS, RenderContext, build_context
from modelplane.render.errors import TemplateOutputError
from modelplane.render.weights import CacheObjects

"""The policy first: no serving pod exists before the policy that limits who reaches it."""


SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def tojson(value: Any) -> str:
    """JSON that is also valid YAML for every string: PyYAML cannot join JSON's surrogate-pair escapes,
    so characters beyond the BMP become YAML's 8-digit \\U escapes."""

    def join(match: re.Match[str]) -> str:
        high, low = int(match.group(2), 16), int(match.group(3), 16)
        return f"{match.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return SURROGATE_PAIR.sub(join, json.dumps(value, ensure_ascii=True, sort_keys=True))


def _load_template(name: str) -> str:
    return resources.files("modelplane").joinpath("templates", name).read_text()


@cache
def environment() -> Environment:
    """StrictUndefined: a name missing from the context is an error, never an empty string."""
    env = Environment(
        loader=FunctionLoader(_load_template),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = tojson
    return env


def template_names(context: RenderContext) -> list[str]:
    """Which object kinds this context needs, in apply order."""
    names = ["networkpolicy", "service", "deployment" if not context.multi_node else "leaderworkerset"]
    if context.pdb_max_unavailable is not None:
        names.insert(2, "poddisruptionbudget")
    scaler = ["common/scaledobject.yaml.j2"] if context.scaling is not None else []
    return [f"{context.runtime}/{name}.yaml.j2" for name in names] + scaler


# libyaml's parser under PyYAML's safe constructor and resolver: the same objects as yaml.SafeLoader, and
# parsing was 30 % of the operator's CPU with the pure-Python one (BENCHMARKS.md, operator at scale). PyYAML
# built without libyaml has no CSafeLoader; then the pure-Python loader does the same work, slower.
SAFE_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


def render_context(context: RenderContext) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for name in template_names(context):
        text = environment().get_template(name).render(ctx=context)
        objects.extend(document for document in yaml.load_all(text, Loader=SAFE_LOADER) if document is not None)
    return objects


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates inside a rendered workload (none for a Service or PDB)."""
    if obj["kind"] == DEPLOYMENT:
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == LEADER_WORKER_SET:
        template = obj["spec"]["leaderWorkerTemplate"]
        return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]
    return []


def check_objects(objects: list[dict[str, Any]], context: RenderContext, plan: Plan) -> None:
    """Invariants that must hold by construction: identity, and GPUs per group equal to TP × PP."""
    resource = get_gpu(plan.gpu).resource_name
    for obj in objects:
        metadata = obj.get("metadata", {})
        name = context.workload_name if obj.get("kind") in WORKLOAD_KINDS else context.name
        if metadata.get("name") != name or metadata.get("namespace") != context.namespace:
            raise TemplateOutputError(f"{obj.get('kind')} has the wrong name or namespace")
        gpus_in_group = 0
        for pod in pod_specs(obj):
            for container in pod["containers"]:
                limits = container["resources"]["limits"]
                if limits.get(resource) != str(plan.gpus_per_pod):
                    raise TemplateOutputError(f"{obj['kind']} requests {limits.get(resource)} {resource}")
        if obj["kind"] == DEPLOYMENT:
            gpus_in_group = plan.gpus_per_pod
        elif obj["kind"] == LEADER_WORKER_SET:
            gpus_in_group = plan.gpus_per_pod * obj["spec"]["leaderWorkerTemplate"]["size"]
        if gpus_in_group and gpus_in_group != plan.tensor_parallel * plan.pipeline_parallel:
            raise TemplateOutputError(f"{obj['kind']} holds {gpus_in_group} GPUs per replica, plan needs TP × PP")


def render_with_cache(
    deployment: ModelDeployment,
    plan: Plan,
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> tuple[list[dict[str, Any]], CacheObjects | None]:
    """The serving objects of one deployment, validated, in apply order (NetworkPolicy first, KEDA's
    ScaledObject last), and the managed model cache its servers read (None without one)."""
    context = build_context(deployment, plan, resolver, prometheus_address=prometheus_address)
    objects = render_context(context)
    check_objects(objects, context, plan)
    return sorted(objects, key=lambda obj: CHILD_KIND_ORDER.index(obj["kind"])), context.model_cache


def render_deployment(
    deployment: ModelDeployment,
    plan: Plan,
    resolver: ModelResolver = PACKAGED,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> list[dict[str, Any]]:
    """The serving objects of one deployment, validated, in apply order (NetworkPolicy first)."""
    return render_with_cache(deployment, plan, resolver, prometheus_address)[0]


def render_burst(deployment: ModelDeployment, plan: Plan, resolver: ModelResolver = PACKAGED) -> dict[str, Any]:
    """The serving workload of the replicas a deployment bursts to `plan`'s pool, validated. The Service, the
    NetworkPolicy and the PodDisruptionBudget of the plan's own pool select its pods too."""
    context = build_context(deployment, plan, resolver, burst=True)
    objects = [obj for obj in render_context(context) if obj["kind"] in WORKLOAD_KINDS]
    check_objects(objects, context, plan)
    (workload,) = objects
    return workload
