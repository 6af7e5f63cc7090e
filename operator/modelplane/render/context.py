"""The one validated object templates receive: every name, number and list already decided."""

import hashlib
import json
import posixpath
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelplane.api.contract import (
    DEPLOYMENT_LABEL,
    ENDPOINT,
    ENDPOINT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PLAN_HASH_ANNOTATION,
    POOL_LABEL,
    RESERVED_LABEL_PREFIXES,
)
from modelplane.api.model_deployment import (
    MAX_NAME,
    NAME_PATTERN,
    ModelCache,
    ModelDeployment,
    PodSecurity,
    ServiceType,
)
from modelplane.api.plan import Plan
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.catalog.runtimes import RuntimeSpec, runtime_spec
from modelplane.planning.autoscaling import ScalingRule, scaling_rule
from modelplane.planning.service import checkpoint_bytes
from modelplane.render.args import CommandLine, server_command, worker_command
from modelplane.render.errors import RenderError
from modelplane.render.weights import CacheObjects, Weights, weights

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
NON_ROOT_HOME = "/home/modelplane"
NON_ROOT_USER = "modelplane"
NON_ROOT_ID = 1000
TMP_PATH = "/tmp"
"""The non-root mode's writable directories, each an emptyDir: HOME holds ~/.cache (Hugging Face, vLLM, FlashInfer,
torch), ~/.triton, ~/.config and ~/.nv; /tmp holds Ray's session and torch's inductor cache. USER is set because
getpass.getuser(), which torch's inductor cache calls, fails for a user ID with no /etc/passwd entry otherwise."""
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


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
    workload_name: str
    """The serving workload's name: the deployment's own on the plan's pool, `burst_name` on a pool it bursts to."""
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
    affinity: dict[str, Any] | None
    runtime_class_name: str | None
    priority_class_name: str | None
    image_pull_secrets: list[dict[str, str]]
    network_policy: dict[str, Any]
    volumes: list[dict[str, Any]]
    pod_security_context: dict[str, Any]
    container_security_context: dict[str, Any]
    termination_grace_period_seconds: int
    server: Container
    worker: Container | None
    model_cache: CacheObjects | None
    scaling: ScalingRule | None = None
    """KEDA's ScaledObject for spec.autoscaling, on the plan's own pool's render only."""
    prometheus_address: str = ""
    """The managed cache the servers read, rendered apart: it is shared, not a child of this deployment alone."""


def plan_hash(plan: Plan) -> str:
    """A short, stable digest of the plan: pods roll when, and only when, the plan changes.

    The estimates are left out: they predict how the pods will serve and change with the performance model's
    calibration, never what the pods run. So are the replicas: scaling adds or removes pods, it rolls none.
    """
    wire = plan.to_wire()
    wire.pop("estimates", None)
    wire.pop("replicas", None)
    canonical = json.dumps(wire, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _non_root(deployment: ModelDeployment) -> PodSecurity | None:
    template = deployment.spec.pod_template
    security = template.security_context if template else None
    return security if security is not None and security.run_as_non_root else None


def _cache_path(deployment: ModelDeployment) -> str | None:
    """Where the model cache is mounted. The non-root user cannot enter /root, so its default lies under HOME."""
    cache = deployment.spec.model_cache
    if cache is None or cache.pvc_name is None:
        return None
    if _non_root(deployment) is None:
        return cache.mount_path
    if "mount_path" not in cache.model_fields_set:
        return f"{NON_ROOT_HOME}/.cache/huggingface"
    if posixpath.normpath(cache.mount_path) == "/root" or _inside(cache.mount_path, "/root"):
        raise RenderError("spec.modelCache.mountPath", f"{cache.mount_path} lies in /root, which the non-root "
                          f"user cannot enter; leave mountPath unset ({NON_ROOT_HOME}/.cache/huggingface)")  # fmt: skip
    return cache.mount_path


def _secret_env(name: str, ref_name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref_name, "key": key}}}


def _api_key_env(deployment: ModelDeployment, runtime: RuntimeSpec) -> list[dict[str, Any]]:
    """The serving API key as the runtime reads it from its environment; a runtime without one is refused."""
    ref = deployment.spec.api_key_secret_ref
    if ref is None:
        return []
    if runtime.api_key.env is None:
        raise RenderError("spec.apiKeySecretRef", f"{runtime.api_key.unsupported}")
    return [_secret_env(runtime.api_key.env, ref.name, ref.key)]


def _env(
    deployment: ModelDeployment,
    multi_node: bool,
    cache_path: str | None,
    api_key: list[dict[str, Any]],
    weights_env: list[dict[str, Any]],
    reads_hub: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The server's and the workers' variables: the renderer's own, then the user's, which may not name one of them
    (the later would win). Only the server gets the API key: workers serve no requests. The Hub token only goes
    to servers that read the Hub themselves; with a local copy of the weights only the download Job has it."""
    spec = deployment.spec
    env: list[dict[str, Any]] = []
    owners: dict[str, str] = {}
    if spec.hf_token_secret_ref is not None and reads_hub:
        ref = spec.hf_token_secret_ref
        env.append(_secret_env("HF_TOKEN", ref.name, ref.key))
        owners["HF_TOKEN"] = "set from spec.hfTokenSecretRef"
    if cache_path is not None:
        env.append({"name": "HF_HOME", "value": cache_path})
        owners["HF_HOME"] = "set to spec.modelCache.mountPath (in the non-root mode, by default under HOME)"
    env += weights_env
    owners.update(dict.fromkeys((var["name"] for var in weights_env), "set from spec.model.source and spec.modelCache"))
    if _non_root(deployment) is not None:
        env += [{"name": "HOME", "value": NON_ROOT_HOME}, {"name": "USER", "value": NON_ROOT_USER}]
        owners.update(dict.fromkeys(("HOME", "USER"), "set for the non-root mode"))
    owners.update(dict.fromkeys((var["name"] for var in api_key), "set from spec.apiKeySecretRef"))
    if multi_node:
        owners.update(dict.fromkeys(LWS_ENV, "set by the LeaderWorkerSet controller for the multi-node command"))
    for index, var in enumerate(spec.env):
        if var.name in owners:
            raise RenderError(f"spec.env[{index}].name", f"{var.name} is {owners[var.name]}; remove it from spec.env")
    user = [{"name": var.name, "value": var.value} for var in spec.env]
    return [*env, *api_key, *user], [*env, *user]


def _resources(
    deployment: ModelDeployment, plan: Plan, resource_name: str, ephemeral_storage: str | None
) -> dict[str, dict[str, str]]:
    """CPU and memory per GPU unless given; the ephemeral storage a server downloading into its own filesystem
    fills (requested only: the kubelet evicts a pod past its limit, and the size is an estimate)."""
    gpus = plan.gpus_per_pod
    extras = deployment.spec.resources
    cpu = extras.cpu if extras and extras.cpu else str(CPU_PER_GPU * gpus)
    memory = extras.memory if extras and extras.memory else f"{HOST_MEMORY_GIB_PER_GPU * gpus}Gi"
    storage = {"ephemeral-storage": ephemeral_storage} if ephemeral_storage else {}
    return {
        "requests": {"cpu": cpu, "memory": memory, **storage, resource_name: str(gpus)},
        "limits": {"memory": memory, resource_name: str(gpus)},
    }


def _probes(runtime: RuntimeSpec, startup_seconds: int) -> dict[str, dict[str, Any]]:
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


def _inside(path: str, directory: str) -> bool:
    """Whether `path` lies strictly below `directory`."""
    first, second = posixpath.normpath(path), posixpath.normpath(directory)
    return first != second and posixpath.commonpath([first, second]) == second


def _volumes(
    deployment: ModelDeployment, plan: Plan, cache_path: str | None, loaded: Weights
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shm = f"{SHM_GIB_PER_GPU * plan.gpus_per_pod}Gi"
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": SHM_PATH}]
    if _non_root(deployment) is not None:
        volumes += [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
        mounts += [{"name": "home", "mountPath": NON_ROOT_HOME}, {"name": "tmp", "mountPath": TMP_PATH}]
    cache = deployment.spec.model_cache
    if cache is not None and cache_path is not None:
        for mount in mounts:
            # A mount inside the non-root HOME is meant: it is where the cache goes by default in that mode.
            nested_in_home = mount["name"] == "home" and _inside(cache_path, NON_ROOT_HOME)
            if _overlaps(cache_path, mount["mountPath"]) and not nested_in_home:
                raise RenderError("spec.modelCache.mountPath", f"{cache_path} is, contains or lies inside "
                                  f"{mount['mountPath']}, where the {mount['name']} volume is mounted; mount the "
                                  f"cache elsewhere, e.g. at the default {DEFAULT_CACHE_PATH}")  # fmt: skip
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": cache.pvc_name}})
        mounts.append({"name": "model-cache", "mountPath": cache_path})
    return [*volumes, *loaded.volumes], [*mounts, *loaded.mounts]


def _pod_security_context(deployment: ModelDeployment) -> dict[str, Any]:
    """RuntimeDefault seccomp always; the non-root mode adds what Pod Security "restricted" asks of a pod."""
    context: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    security = _non_root(deployment)
    if security is not None:
        user = security.run_as_user or NON_ROOT_ID
        group = security.run_as_group if security.run_as_group is not None else user
        context.update(runAsNonRoot=True, runAsUser=user, runAsGroup=group,
                       fsGroup=security.fs_group if security.fs_group is not None else group,
                       fsGroupChangePolicy="OnRootMismatch")  # fmt: skip
    return context


def _network_policy(deployment: ModelDeployment, port: int, multi_node: bool) -> dict[str, Any]:
    """Ingress to the serving port from the allowed clients only; between a multi-node replica's pods, any port
    (Ray's head on 6379, its workers' ports, NCCL), from this deployment's pods only."""
    spec = deployment.spec
    members = {"podSelector": {"matchLabels": {DEPLOYMENT_LABEL: deployment.metadata.name}}}
    serving: dict[str, Any] = {"ports": [{"port": port, "protocol": "TCP"}]}
    allowed = spec.network.allow_from if spec.network else None
    if allowed is not None:
        serving["from"] = [peer.model_dump(mode="json", by_alias=True, exclude_defaults=True) for peer in allowed]
    elif spec.service_type is ServiceType.CLUSTER_IP:
        serving["from"] = [{"podSelector": {}}]
    return {
        **members,
        "policyTypes": ["Ingress"],
        "ingress": [serving, *([{"from": [members]}] if multi_node else [])],
    }


def _container(
    name: str,
    line: CommandLine,
    deployment: ModelDeployment,
    plan: Plan,
    runtime: RuntimeSpec,
    resource_name: str,
    mounts: list[dict[str, Any]],
    env: list[dict[str, Any]],
    loaded: Weights,
    serves: bool,
) -> Container:
    return Container(
        name=name,
        command=line.command,
        args=line.args,
        env=env,
        ports=[{"name": "http", "containerPort": runtime.port, "protocol": "TCP"}] if serves else [],
        resources=_resources(deployment, plan, resource_name, loaded.ephemeral_storage),
        volume_mounts=mounts,
        probes=_probes(runtime, loaded.startup_seconds) if serves else None,
    )


def _user_labels(deployment: ModelDeployment) -> dict[str, str]:
    return {key: value for key, value in deployment.metadata.labels.items()
            if not key.startswith(RESERVED_LABEL_PREFIXES)}  # fmt: skip


def burst_name(name: str, pool: str) -> str:
    """The workload of a deployment's replicas on a pool it bursts to: `name-pool` when that is a DNS label within
    MAX_NAME characters (a LeaderWorkerSet's limit), else the name cut short and a digest of the pool."""
    joined = f"{name}-{pool}"
    if len(joined) <= MAX_NAME and re.fullmatch(NAME_PATTERN, joined):
        return joined
    digest = hashlib.sha256(pool.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1]}-{digest}"


DEFAULT_PROMETHEUS_ADDRESS = "http://prometheus-operated.monitoring.svc:9090"
"""Where KEDA's trigger queries Prometheus unless the operator is told otherwise (MODELPLANE_PROMETHEUS_ADDRESS,
the chart's autoscaling.prometheusAddress): the Service prometheus-operator creates for every Prometheus, in
the namespace kube-prometheus-stack installs to by convention."""


def build_context(
    deployment: ModelDeployment,
    plan: Plan,
    resolver: ModelResolver = PACKAGED,
    *,
    burst: bool = False,
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS,
) -> RenderContext:
    """Decide every value of the rendered objects from the deployment and its plan (`resolver` knows the model,
    whose checkpoint size the cache and the probes depend on). With `burst`, the plan is for a pool the deployment
    bursts to: its workload gets its own name and a selector that tells its pods from the plan's pool's."""
    spec = deployment.spec
    name = deployment.metadata.name
    namespace = deployment.metadata.namespace or "default"
    runtime = runtime_spec(plan.runtime.value)
    gpu = get_gpu(plan.gpu)
    multi_node = plan.nodes_per_replica > 1
    digest = plan_hash(plan)
    selector = {DEPLOYMENT_LABEL: name, "app.kubernetes.io/component": "server"}
    workload_selector = {**selector, POOL_LABEL: plan.pool} if burst else selector
    labels = {
        **_user_labels(deployment),
        "app.kubernetes.io/name": plan.runtime.value,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "server",
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/part-of": "modelplane",
        DEPLOYMENT_LABEL: name,
    }
    pod_labels = {**labels, POOL_LABEL: plan.pool}
    cache_path = _cache_path(deployment)
    pool_selector = {POOL_LABEL: plan.pool}
    template = spec.pod_template
    image = spec.image or runtime.image_for(gpu.vendor.value)
    pod_security_context = _pod_security_context(deployment)
    shared_with_download: dict[str, Any] = {
        "securityContext": pod_security_context,
        "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
        "nodeSelector": plan.node_selector or pool_selector,
        "tolerations": [toleration.to_wire() for toleration in plan.tolerations],
        "imagePullSecrets": [secret.to_wire() for secret in template.image_pull_secrets] if template else [],
    }
    loaded = weights(deployment, plan, checkpoint_bytes(deployment, resolver), shared_with_download, image)
    volumes, mounts = _volumes(deployment, plan, cache_path, loaded)
    server_env, worker_env = _env(deployment, multi_node, cache_path, _api_key_env(deployment, runtime), loaded.env,
                                  reads_hub=loaded.model_path is None)  # fmt: skip
    server = _container(
        plan.runtime.value,
        server_command(spec, plan, runtime, loaded.model_path),
        deployment,
        plan,
        runtime,
        gpu.resource_name,
        mounts,
        server_env,
        loaded,
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
            worker_env,
            loaded,
            serves=False,
        )
        if multi_node
        else None
    )
    affinity = template.affinity if template else None
    plan_annotation = {PLAN_HASH_ANNOTATION: digest}
    return RenderContext(
        name=name,
        workload_name=burst_name(name, plan.pool) if burst else name,
        namespace=namespace,
        runtime=plan.runtime.value,
        image=image,
        replicas=plan.replicas,
        multi_node=multi_node,
        group_size=plan.nodes_per_replica,
        port=runtime.port,
        labels=labels,
        annotations=plan_annotation,
        selector_labels=workload_selector,
        pod_labels={**pod_labels, ENDPOINT_LABEL: ENDPOINT},
        leader_labels={**pod_labels, "app.kubernetes.io/component": "leader", ENDPOINT_LABEL: ENDPOINT},
        worker_labels={**pod_labels, "app.kubernetes.io/component": "worker"},
        pod_annotations={
            **plan_annotation,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(runtime.port),
            "prometheus.io/path": runtime.metrics_path,
        },
        worker_annotations=plan_annotation,
        service_selector={DEPLOYMENT_LABEL: name, ENDPOINT_LABEL: ENDPOINT},
        service_type=spec.service_type.value,
        pdb_max_unavailable=spec.pod_disruption_budget.max_unavailable if spec.pod_disruption_budget else None,
        pdb_selector={DEPLOYMENT_LABEL: name} if multi_node else selector,
        deployment_strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        node_selector=shared_with_download["nodeSelector"],
        tolerations=shared_with_download["tolerations"],
        affinity=affinity.model_dump(mode="json", by_alias=True, exclude_defaults=True) if affinity else None,
        runtime_class_name=template.runtime_class_name if template else None,
        priority_class_name=template.priority_class_name if template else None,
        image_pull_secrets=shared_with_download["imagePullSecrets"],
        network_policy=_network_policy(deployment, runtime.port, multi_node),
        volumes=volumes,
        pod_security_context=pod_security_context,
        container_security_context=CONTAINER_SECURITY_CONTEXT,
        termination_grace_period_seconds=60,
        server=server,
        worker=worker,
        model_cache=loaded.cache,
        scaling=None if burst else scaling_rule(deployment, plan),
        prometheus_address=prometheus_address,
    )
