"""The one validated object templates receive: every name, number and list already decided."""

import hashlib
import json
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelplane.api.model_deployment import ModelCache, ModelDeployment
from modelplane.api.plan import Plan
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.runtimes import RuntimeSpec, runtime_spec
from modelplane.render.args import CommandLine, server_command, worker_command
from modelplane.render.errors import RenderError

GIB = 1024**3
SHM_GIB_PER_GPU = 2
"""NCCL's shared-memory transport and vLLM's workers exchange tensors through /dev/shm; vLLM asks
for --shm-size or --ipc=host with tensor parallelism. 2 GiB per GPU in the pod covers it."""
SHM_PATH = "/dev/shm"
DEFAULT_CACHE_PATH: str = ModelCache.model_fields["mount_path"].default
LWS_ENV = ("LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE")
"""Set in every container of a LeaderWorkerSet pod by its controller, replacing a value of the same name
(sigs.k8s.io/lws pkg/utils/pod/pod_utils.go AddLWSVariables); the multi-node commands read them."""
CPU_PER_GPU = 2
HOST_MEMORY_GIB_PER_GPU = 16
PROBE_PERIOD_SECONDS = 10
STARTUP_BASE_SECONDS = 300
"""CUDA context, NCCL init, torch.compile and CUDA-graph capture before the first /health."""
LOAD_BYTES_PER_SECOND = 250 * 10**6
"""Weights are downloaded or read from the cache at roughly 2 Gbit/s."""
MANAGED_BY = "modelplane"
PLAN_HASH_ANNOTATION = "modelplane.dev/plan-hash"
DEPLOYMENT_LABEL = "modelplane.dev/deployment"
RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "modelplane.dev/")


class Container(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    ports: list[dict[str, Any]]
    resources: dict[str, dict[str, str]]
    volume_mounts: list[dict[str, Any]]
    probes: dict[str, dict[str, Any]] | None


class RenderContext(BaseModel):
    """Everything a template may read. StrictUndefined turns any other name into an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    namespace: str
    runtime: str
    image: str
    replicas: int
    multi_node: bool
    group_size: int
    port: int
    labels: dict[str, str]
    annotations: dict[str, str]
    selector_labels: dict[str, str]
    pod_labels: dict[str, str]
    leader_labels: dict[str, str]
    worker_labels: dict[str, str]
    pod_annotations: dict[str, str]
    worker_annotations: dict[str, str]
    service_selector: dict[str, str]
    service_type: str
    pdb_max_unavailable: int | None
    pdb_selector: dict[str, str]
    """Every pod of a replica: one evicted leader or worker restarts its whole LeaderWorkerSet group."""
    deployment_strategy: dict[str, Any]
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    pod_security_context: dict[str, Any]
    container_security_context: dict[str, Any]
    termination_grace_period_seconds: int
    server: Container
    worker: Container | None


def plan_hash(plan: Plan) -> str:
    """A short, stable digest of the plan: pods roll when, and only when, the plan changes."""
    canonical = json.dumps(plan.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _env(deployment: ModelDeployment, multi_node: bool) -> list[dict[str, Any]]:
    """The renderer's own variables, then the user's, which may not name one of them: the later would win."""
    spec = deployment.spec
    env: list[dict[str, Any]] = []
    owners: dict[str, str] = {}
    if spec.hf_token_secret_ref is not None:
        ref = spec.hf_token_secret_ref
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
        owners["HF_TOKEN"] = "set from spec.hfTokenSecretRef"
    if spec.model_cache is not None:
        env.append({"name": "HF_HOME", "value": spec.model_cache.mount_path})
        owners["HF_HOME"] = "set to spec.modelCache.mountPath"
    if multi_node:
        owners.update(dict.fromkeys(LWS_ENV, "set by the LeaderWorkerSet controller for the multi-node command"))
    for index, var in enumerate(spec.env):
        if var.name in owners:
            raise RenderError(f"spec.env[{index}].name", f"{var.name} is {owners[var.name]}; remove it from spec.env")
    env.extend({"name": var.name, "value": var.value} for var in spec.env)
    return env


def _resources(deployment: ModelDeployment, plan: Plan, resource_name: str) -> dict[str, dict[str, str]]:
    gpus = plan.gpus_per_pod
    extras = deployment.spec.resources
    cpu = extras.cpu if extras and extras.cpu else str(CPU_PER_GPU * gpus)
    memory = extras.memory if extras and extras.memory else f"{HOST_MEMORY_GIB_PER_GPU * gpus}Gi"
    return {
        "requests": {"cpu": cpu, "memory": memory, resource_name: str(gpus)},
        "limits": {"memory": memory, resource_name: str(gpus)},
    }


def _probes(plan: Plan, runtime: RuntimeSpec) -> dict[str, dict[str, Any]]:
    weight_bytes = plan.memory.weight_bytes_per_gpu * plan.gpus_per_replica
    startup_seconds = STARTUP_BASE_SECONDS + weight_bytes // LOAD_BYTES_PER_SECOND
    check = {"httpGet": {"path": runtime.health_path, "port": "http"}, "timeoutSeconds": 5}
    return {
        "startup": {**check, "periodSeconds": PROBE_PERIOD_SECONDS,
                    "failureThreshold": -(-startup_seconds // PROBE_PERIOD_SECONDS)},
        "readiness": {**check, "periodSeconds": PROBE_PERIOD_SECONDS, "failureThreshold": 3},
        "liveness": {**check, "periodSeconds": 2 * PROBE_PERIOD_SECONDS, "failureThreshold": 3},
    }  # fmt: skip


def _overlaps(path: str, other: str) -> bool:
    """Whether one mount would hide the other: the same directory, or one inside the other."""
    first, second = posixpath.normpath(path), posixpath.normpath(other)
    return posixpath.commonpath([first, second]) in (first, second)


def _volumes(deployment: ModelDeployment, plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shm = f"{SHM_GIB_PER_GPU * plan.gpus_per_pod}Gi"
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": SHM_PATH}]
    cache = deployment.spec.model_cache
    if cache is not None:
        for mount in mounts:
            if _overlaps(cache.mount_path, mount["mountPath"]):
                raise RenderError("spec.modelCache.mountPath", f"{cache.mount_path} is, contains or lies inside "
                                  f"{mount['mountPath']}, where the {mount['name']} volume is mounted; mount the "
                                  f"cache elsewhere, e.g. at the default {DEFAULT_CACHE_PATH}")  # fmt: skip
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": cache.pvc_name}})
        mounts.append({"name": "model-cache", "mountPath": cache.mount_path})
    return volumes, mounts


def _container(
    name: str,
    line: CommandLine,
    deployment: ModelDeployment,
    plan: Plan,
    runtime: RuntimeSpec,
    resource_name: str,
    mounts: list[dict[str, Any]],
    serves: bool,
) -> Container:
    return Container(
        name=name,
        command=line.command,
        args=line.args,
        env=_env(deployment, plan.nodes_per_replica > 1),
        ports=[{"name": "http", "containerPort": runtime.port, "protocol": "TCP"}] if serves else [],
        resources=_resources(deployment, plan, resource_name),
        volume_mounts=mounts,
        probes=_probes(plan, runtime) if serves else None,
    )


def _user_labels(deployment: ModelDeployment) -> dict[str, str]:
    return {key: value for key, value in deployment.metadata.labels.items()
            if not key.startswith(RESERVED_LABEL_PREFIXES)}  # fmt: skip


def build_context(deployment: ModelDeployment, plan: Plan) -> RenderContext:
    """Decide every value of the rendered objects from the deployment and its plan."""
    spec = deployment.spec
    name = deployment.metadata.name
    namespace = deployment.metadata.namespace or "default"
    runtime = runtime_spec(plan.runtime)
    gpu = get_gpu(plan.gpu)
    multi_node = plan.nodes_per_replica > 1
    digest = plan_hash(plan)
    selector = {DEPLOYMENT_LABEL: name, "app.kubernetes.io/component": "server"}
    labels = {
        **_user_labels(deployment),
        "app.kubernetes.io/name": plan.runtime,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "modelplane",
        DEPLOYMENT_LABEL: name,
    }
    volumes, mounts = _volumes(deployment, plan)
    server = _container(
        plan.runtime,
        server_command(spec, plan, runtime),
        deployment,
        plan,
        runtime,
        gpu.resource_name,
        mounts,
        serves=True,
    )
    worker = (
        _container(
            f"{plan.runtime}-worker",
            worker_command(),
            deployment,
            plan,
            runtime,
            gpu.resource_name,
            mounts,
            serves=False,
        )
        if multi_node
        else None
    )
    pool_selector = {"modelplane.dev/pool": plan.pool}
    plan_annotation = {PLAN_HASH_ANNOTATION: digest}
    return RenderContext(
        name=name,
        namespace=namespace,
        runtime=plan.runtime,
        image=spec.image or runtime.image_for(gpu.vendor.value),
        replicas=plan.replicas,
        multi_node=multi_node,
        group_size=plan.nodes_per_replica,
        port=runtime.port,
        labels=labels,
        annotations=plan_annotation,
        selector_labels=selector,
        pod_labels=labels,
        leader_labels={**labels, "app.kubernetes.io/component": "leader"},
        worker_labels={**labels, "app.kubernetes.io/component": "worker"},
        pod_annotations={
            **plan_annotation,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(runtime.port),
            "prometheus.io/path": runtime.metrics_path,
        },
        worker_annotations=plan_annotation,
        service_selector={DEPLOYMENT_LABEL: name, "app.kubernetes.io/component": "leader" if multi_node else "server"},
        service_type=spec.service_type.value,
        pdb_max_unavailable=spec.pod_disruption_budget.max_unavailable if spec.pod_disruption_budget else None,
        pdb_selector={DEPLOYMENT_LABEL: name} if multi_node else selector,
        deployment_strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        node_selector=plan.node_selector or pool_selector,
        tolerations=[toleration.to_wire() for toleration in plan.tolerations],
        volumes=volumes,
        pod_security_context={"seccompProfile": {"type": "RuntimeDefault"}},
        container_security_context={
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        termination_grace_period_seconds=60,
        server=server,
        worker=worker,
    )
