"""Where a server's weights come from, and the managed cache that holds them: every decision, no I/O.

Without a managed cache the server reads the Hub itself (into its own filesystem, whose size it requests as
ephemeral storage, or into the PVC of spec.modelCache.pvcName). With one, a download Job fills a PVC per
(model, revision, source, pool and cache settings) once, and every server of that pool mounts it read-only at
WEIGHTS_PATH and loads from there with the Hub switched off. A pvc or image source is mounted the same way,
with nothing to download.
"""

import copy
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelplane.api.contract import (
    CACHE_LABEL,
    CHECKPOINT_BYTES_ANNOTATION,
    DELETION_POLICY_ANNOTATION,
    MODEL_ANNOTATION,
    POOL_ANNOTATION,
    REVISION_ANNOTATION,
)
from modelplane.api.model_deployment import CacheAccessMode, ModelDeployment
from modelplane.api.plan import Plan
from modelplane.catalog.weights import weights_constants
from modelplane.render.errors import RenderError

GIB = 1024**3
WEIGHTS_VOLUME = "weights"
WEIGHTS_PATH = "/weights"
DOWNLOAD_CONTAINER = "download"
DOWNLOAD_RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
"""The downloaders stream files to disk: a core and a few GiB of page-cache headroom, whatever the model."""
DOWNLOAD_HOME = "/tmp"
AWS_CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


class CacheObjects(BaseModel):
    """The PVC and the download Job of one managed cache, rendered; both named `name`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    deletion_policy: str
    pvc: dict[str, Any]
    job: dict[str, Any]


class Weights(BaseModel):
    """How the serving pods get their weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    checkpoint_bytes: int
    model_path: str | None
    """The directory the server loads; None: it downloads spec.model.name itself."""
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]
    env: list[dict[str, Any]]
    ephemeral_storage: str | None
    startup_seconds: int
    cache: CacheObjects | None


def _gib_ceil(size: int) -> str:
    return f"{-(-size // GIB)}Gi"


def cache_size(checkpoint_bytes: int) -> str:
    """The checkpoint plus the catalog's margin and one GiB, in whole GiB."""
    margin = weights_constants().cache_margin_percent
    return _gib_ceil(checkpoint_bytes + checkpoint_bytes * margin // 100 + GIB)


def startup_seconds(checkpoint_bytes: int, local: bool) -> int:
    """The startup probe's budget: the base plus reading the checkpoint from a local volume or the network."""
    constants = weights_constants()
    rate = constants.cache_bytes_per_second if local else constants.network_bytes_per_second
    return constants.startup_base_seconds + -(-checkpoint_bytes // rate)


def download_deadline_seconds(checkpoint_bytes: int) -> int:
    constants = weights_constants()
    return constants.download_base_seconds + constants.download_deadline_factor * -(
        -checkpoint_bytes // constants.network_bytes_per_second
    )


def source_kind(deployment: ModelDeployment) -> str:
    source = deployment.spec.model.source
    if source is None or source.hub is not None:
        return "hub"
    return "s3" if source.s3 is not None else "pvc" if source.pvc is not None else "image"


def _hub_env(deployment: ModelDeployment) -> list[dict[str, Any]]:
    source = deployment.spec.model.source
    endpoint = source.hub.endpoint if source is not None and source.hub is not None else None
    return [{"name": "HF_ENDPOINT", "value": endpoint}] if endpoint else []


def cache_name(deployment: ModelDeployment, plan: Plan) -> str:
    """One name per (model, revision, source, pool, cache settings): equal specs share, different ones never do."""
    spec = deployment.spec
    cache = spec.model_cache
    assert cache is not None
    assert cache.managed is not None
    identity = [spec.model.name, spec.model.revision, spec.model.source.to_wire() if spec.model.source else None,
                plan.pool, cache.managed.to_wire()]  # fmt: skip
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"weights-{digest[:16]}"


def _download_command(deployment: ModelDeployment, runtime_image: str) -> tuple[str, list[str], list[str]]:
    """Image, command and args of the downloader: a maintained CLI, never our own HTTP client."""
    model = deployment.spec.model
    source = model.source
    if source is not None and source.s3 is not None:
        target = f"{WEIGHTS_PATH}/"
        uri = source.s3.uri if source.s3.uri.endswith("/") else f"{source.s3.uri}/"
        return weights_constants().s3_image, ["aws"], ["s3", "sync", uri, target, "--no-progress", "--only-show-errors"]
    revision = ["--revision", model.revision] if model.revision else []
    return runtime_image, ["hf"], ["download", model.name, *revision, "--local-dir", WEIGHTS_PATH]


def _download_env(deployment: ModelDeployment) -> list[dict[str, Any]]:
    spec = deployment.spec
    source = spec.model.source
    env: list[dict[str, Any]] = [{"name": "HOME", "value": DOWNLOAD_HOME}]
    if source is not None and source.s3 is not None:
        s3 = source.s3
        if s3.endpoint:
            env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint})
        if s3.region:
            env.append({"name": "AWS_DEFAULT_REGION", "value": s3.region})
        if s3.credentials_secret_ref is None:
            env.append({"name": "AWS_NO_SIGN_REQUEST", "value": "true"})
        else:
            secret = s3.credentials_secret_ref.name
            env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                    for key in AWS_CREDENTIAL_KEYS]  # fmt: skip
        return env
    env += _hub_env(deployment)
    if spec.hf_token_secret_ref is not None:
        ref = spec.hf_token_secret_ref
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return env


def _cache_objects(deployment: ModelDeployment, plan: Plan, checkpoint_bytes: int, pod: dict[str, Any],
                   runtime_image: str) -> CacheObjects:  # fmt: skip
    """The managed cache's PVC and the Job that fills it, on the pool's nodes (a ReadWriteOnce volume attaches
    where the servers will run), with the serving pods' security settings."""
    spec = deployment.spec
    assert spec.model_cache is not None
    assert spec.model_cache.managed is not None
    managed = spec.model_cache.managed
    if managed.access_mode is CacheAccessMode.READ_WRITE_ONCE and plan.replicas * plan.nodes_per_replica > 1:
        raise RenderError("spec.modelCache.managed.accessMode", f"a ReadWriteOnce volume attaches to one node, and "
                          f"this plan may span {plan.replicas * plan.nodes_per_replica} nodes; use ReadWriteMany "
                          "(a storage class that offers it) or one replica on one node")  # fmt: skip
    name = cache_name(deployment, plan)
    namespace = deployment.metadata.namespace or "default"
    labels = {"app.kubernetes.io/name": "model-cache", "app.kubernetes.io/component": "model-cache",
              "app.kubernetes.io/managed-by": "modelplane", "app.kubernetes.io/part-of": "modelplane",
              CACHE_LABEL: name}  # fmt: skip
    annotations = {MODEL_ANNOTATION: spec.model.name, POOL_ANNOTATION: plan.pool,
                   DELETION_POLICY_ANNOTATION: managed.deletion_policy.value,
                   CHECKPOINT_BYTES_ANNOTATION: str(checkpoint_bytes),
                   **({REVISION_ANNOTATION: spec.model.revision} if spec.model.revision else {})}  # fmt: skip
    metadata = {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}
    size = managed.size or cache_size(checkpoint_bytes)
    claim: dict[str, Any] = {"accessModes": [managed.access_mode.value], "volumeMode": "Filesystem",
                             "resources": {"requests": {"storage": size}}}  # fmt: skip
    if managed.storage_class_name:
        claim["storageClassName"] = managed.storage_class_name
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": claim}
    image, command, args = _download_command(deployment, runtime_image)
    container = {
        "name": DOWNLOAD_CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
        "args": args, "env": _download_env(deployment), "resources": DOWNLOAD_RESOURCES,
        "volumeMounts": [{"name": WEIGHTS_VOLUME, "mountPath": WEIGHTS_PATH},
                         {"name": "tmp", "mountPath": DOWNLOAD_HOME}],
        "securityContext": pod["containerSecurityContext"],
    }  # fmt: skip
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
        "securityContext": pod["securityContext"], "nodeSelector": pod["nodeSelector"],
        "tolerations": pod["tolerations"],
        "volumes": [{"name": WEIGHTS_VOLUME, "persistentVolumeClaim": {"claimName": name}},
                    {"name": "tmp", "emptyDir": {}}],
        "containers": [container],
    }  # fmt: skip
    if pod["imagePullSecrets"]:
        pod_spec["imagePullSecrets"] = pod["imagePullSecrets"]
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
        "spec": {
            # One retry (a node lost mid-download); evictions and preemptions are not counted at all.
            "backoffLimit": 1,
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
            "activeDeadlineSeconds": download_deadline_seconds(checkpoint_bytes),
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }  # fmt: skip
    return CacheObjects(name=name, deletion_policy=managed.deletion_policy.value, pvc=copy.deepcopy(pvc),
                        job=copy.deepcopy(job))  # fmt: skip


def weights(deployment: ModelDeployment, plan: Plan, checkpoint_bytes: int, pod: dict[str, Any],
            runtime_image: str) -> Weights:  # fmt: skip
    """Decide how the servers of `plan` get the weights. `pod` holds the serving pods' decided settings the
    download Job shares (securityContext, containerSecurityContext, nodeSelector, tolerations, imagePullSecrets).
    """
    spec = deployment.spec
    kind = source_kind(deployment)
    managed = spec.model_cache is not None and spec.model_cache.managed is not None
    read_only = {"name": WEIGHTS_VOLUME, "mountPath": WEIGHTS_PATH, "readOnly": True}
    offline = [{"name": "HF_HUB_OFFLINE", "value": "1"}]
    source = spec.model.source
    if managed:
        cache = _cache_objects(deployment, plan, checkpoint_bytes, pod, runtime_image)
        volume = {"name": WEIGHTS_VOLUME, "persistentVolumeClaim": {"claimName": cache.name, "readOnly": True}}
        return Weights(source=kind, checkpoint_bytes=checkpoint_bytes, model_path=WEIGHTS_PATH, volumes=[volume],
                       mounts=[read_only], env=offline, ephemeral_storage=None,
                       startup_seconds=startup_seconds(checkpoint_bytes, local=True), cache=cache)  # fmt: skip
    if source is not None and (source.pvc is not None or source.image is not None):
        local = source.pvc or source.image
        assert local is not None
        if source.pvc is not None:
            volume = {"name": WEIGHTS_VOLUME, "persistentVolumeClaim": {"claimName": source.pvc.claim_name,
                                                                        "readOnly": True}}  # fmt: skip
        else:
            assert source.image is not None
            volume = {"name": WEIGHTS_VOLUME, "image": {"reference": source.image.reference,
                                                        "pullPolicy": source.image.pull_policy}}  # fmt: skip
        path = f"{WEIGHTS_PATH}/{local.path}".rstrip("/") if local.path else WEIGHTS_PATH
        return Weights(source=kind, checkpoint_bytes=checkpoint_bytes, model_path=path, volumes=[volume],
                       mounts=[read_only], env=offline, ephemeral_storage=None,
                       startup_seconds=startup_seconds(checkpoint_bytes, local=True), cache=None)  # fmt: skip
    # The Hub, read by the server itself: into the user's PVC, or into its own filesystem.
    ephemeral = None if spec.model_cache is not None else cache_size(checkpoint_bytes)
    return Weights(source=kind, checkpoint_bytes=checkpoint_bytes, model_path=None, volumes=[], mounts=[],
                   env=_hub_env(deployment), ephemeral_storage=ephemeral,
                   startup_seconds=startup_seconds(checkpoint_bytes, local=False), cache=None)  # fmt: skip
