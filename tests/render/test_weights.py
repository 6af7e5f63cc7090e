"""How servers get their weights: one managed cache per (model, revision, source, pool), read-only mounts, the Hub
token only where the Hub is read, ephemeral storage without a cache, probe budgets by where the bytes come from."""

from typing import Any

import pytest

from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import ModelDeployment
from modelplane.api.plan import Plan
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_with_cache
from modelplane.render.errors import RenderError
from modelplane.render.weights import CacheObjects
from tests.support import deployment, pool

POOLS = [pool("h100-a", "H100-SXM-80GB"), pool("h100-b", "H100-SXM-80GB", cost="3.00")]
LLAMA_8B_SAFETENSORS_BYTES = 16_060_522_496
"""meta-llama/Llama-3.1-8B-Instruct's four safetensors files, as its model card lists them (16.1 GB)."""
MANAGED = {"managed": {"storageClassName": "shared"}}
GIB = 1024**3


def planned(md: ModelDeployment, pools: list[Any] | None = None) -> Plan:
    plan = plan_deployment(md, offers_for(pools or POOLS)).plan
    assert plan is not None
    return plan


def render(md: ModelDeployment, pools: list[Any] | None = None) -> tuple[list[dict[str, Any]], CacheObjects | None]:
    return render_with_cache(md, planned(md, pools))


def server(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workload = next(obj for obj in objects if obj["kind"] == "Deployment")
    container: dict[str, Any] = pod_specs(workload)[0]["containers"][0]
    return container


def quantity_bytes(text: str) -> int:
    assert text.endswith("Gi"), text
    return int(text[:-2]) * GIB


def test_two_deployments_of_one_model_on_one_pool_share_one_cache() -> None:
    first = render(deployment("a", modelCache=MANAGED))[1]
    second = render(deployment("b", replicas=2, modelCache=MANAGED))[1]
    assert first is not None
    assert second is not None
    assert first.name == second.name
    assert first.pvc == second.pvc


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "revision": "v2"}},
        {"placement": {"pools": ["h100-b"]}},
        {"modelCache": {"managed": {"storageClassName": "other"}}},
    ],
)
def test_another_revision_pool_or_storage_is_another_cache(change: dict[str, Any]) -> None:
    base = render(deployment("a", modelCache=MANAGED))[1]
    other = render(deployment("b", **{"modelCache": MANAGED, **change}))[1]
    assert base is not None
    assert other is not None
    assert base.name != other.name


def test_managed_cache_is_mounted_read_only_and_served_offline() -> None:
    objects, cache = render(deployment(hfTokenSecretRef={"name": "hf"}, modelCache=MANAGED))
    assert cache is not None
    container = server(objects)
    pod = pod_specs(next(obj for obj in objects if obj["kind"] == "Deployment"))[0]
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": cache.name, "readOnly": True}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert container["args"][0] == mount["mountPath"]
    assert container["args"][1:3] == ["--served-model-name", "meta-llama/Llama-3.1-8B-Instruct"]
    env = {var["name"]: var for var in container["env"]}
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    assert "HF_TOKEN" not in env, "servers reading a local copy never get the Hub token"
    job_env = {var["name"]: var for var in cache.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job_env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert "ephemeral-storage" not in container["resources"]["requests"]


def test_default_cache_size_holds_the_checkpoint_with_a_margin() -> None:
    cache = render(deployment(modelCache=MANAGED))[1]
    assert cache is not None
    size = quantity_bytes(cache.pvc["spec"]["resources"]["requests"]["storage"])
    assert LLAMA_8B_SAFETENSORS_BYTES < size <= LLAMA_8B_SAFETENSORS_BYTES * 12 // 10 + 2 * GIB
    assert cache.pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert cache.pvc["spec"]["storageClassName"] == "shared"


def test_given_cache_size_wins() -> None:
    cache = render(deployment(modelCache={"managed": {"size": "500Gi"}}))[1]
    assert cache is not None
    assert cache.pvc["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert "storageClassName" not in cache.pvc["spec"]


def test_download_job_runs_on_the_pool_and_fetches_the_pinned_revision() -> None:
    md = deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "revision": "abc123",
                           "source": {"hub": {"endpoint": "http://mirror.internal:8080"}}},
                    modelCache=MANAGED)  # fmt: skip
    plan = planned(md)
    _, cache = render_with_cache(md, plan)
    assert cache is not None
    pod = cache.job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] + container["args"] == [
        "hf",
        "download",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--revision",
        "abc123",
        "--local-dir",
        "/weights",
    ]
    assert {"name": "HF_ENDPOINT", "value": "http://mirror.internal:8080"} in container["env"]
    assert pod["nodeSelector"] == {"modelplane.dev/pool": plan.pool}
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert cache.job["spec"]["activeDeadlineSeconds"] > 0


def test_s3_download_uses_the_aws_cli_with_the_secret_and_endpoint() -> None:
    md = deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "source": {"s3": {
        "uri": "s3://models/llama-8b", "endpoint": "http://minio.storage:9000",
        "credentialsSecretRef": {"name": "s3-creds"}}}}, modelCache=MANAGED)  # fmt: skip
    objects, cache = render(md)
    assert cache is not None
    container = cache.job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] + container["args"][:4] == ["aws", "s3", "sync", "s3://models/llama-8b/", "/weights/"]
    env = {var["name"]: var for var in container["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert not any(var["name"].startswith("AWS_") for var in server(objects)["env"])


def test_s3_without_a_managed_cache_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidObjectError, match=r"modelCache\.managed"):
        deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "source": {"s3": {"uri": "s3://models/x"}}})


def test_read_write_once_is_refused_when_the_plan_may_span_nodes() -> None:
    md = deployment(replicas=2, modelCache={"managed": {"accessMode": "ReadWriteOnce"}})
    with pytest.raises(RenderError) as caught:
        render(md)
    assert caught.value.field == "spec.modelCache.managed.accessMode"
    single = render(deployment(modelCache={"managed": {"accessMode": "ReadWriteOnce"}}))[1]
    assert single is not None
    assert single.pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_without_a_cache_servers_request_the_ephemeral_storage_of_their_download() -> None:
    objects, cache = render(deployment())
    assert cache is None
    requests = server(objects)["resources"]["requests"]
    assert quantity_bytes(requests["ephemeral-storage"]) > LLAMA_8B_SAFETENSORS_BYTES
    with_pvc = server(render(deployment(modelCache={"pvcName": "mine"}))[0])
    assert "ephemeral-storage" not in with_pvc["resources"]["requests"]


def startup_budget(container: dict[str, Any]) -> int:
    probe = container["startupProbe"]
    return int(probe["failureThreshold"] * probe["periodSeconds"])


def test_startup_budget_grows_with_the_checkpoint_and_shrinks_with_a_local_copy() -> None:
    network_small = startup_budget(server(render(deployment())[0]))
    network_large = startup_budget(server(render(deployment(model={"name": "meta-llama/Llama-3.1-70B-Instruct"},
                                                            quantization="fp8"))[0]))  # fmt: skip
    cached_small = startup_budget(server(render(deployment(modelCache=MANAGED))[0]))
    assert network_large > network_small > cached_small
    # 16 GB over the network at the catalog's 250 MB/s is about 64 s more than from a 1 GiB/s cache.
    assert 40 <= network_small - cached_small <= 80


@pytest.mark.parametrize(
    ("source", "volume"),
    [
        (
            {"pvc": {"claimName": "staged", "path": "llama"}},
            {"name": "weights", "persistentVolumeClaim": {"claimName": "staged", "readOnly": True}},
        ),
        (
            {"image": {"reference": "models/llama:1", "path": "llama"}},
            {"name": "weights", "image": {"reference": "models/llama:1", "pullPolicy": "IfNotPresent"}},
        ),
    ],
)
def test_local_sources_are_mounted_without_a_download(source: dict[str, Any], volume: dict[str, Any]) -> None:
    objects, cache = render(deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "source": source}))
    assert cache is None
    pod = pod_specs(next(obj for obj in objects if obj["kind"] == "Deployment"))[0]
    assert volume in pod["volumes"]
    assert server(objects)["args"][0] == "/weights/llama"


def test_local_sources_refuse_a_model_cache() -> None:
    with pytest.raises(InvalidObjectError, match=r"remove spec\.modelCache"):
        deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "source": {"pvc": {"claimName": "x"}}},
                   modelCache=MANAGED)  # fmt: skip


def test_pinned_revision_is_passed_to_a_server_that_reads_the_hub() -> None:
    objects, _ = render(deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "revision": "abc123"}))
    args = server(objects)["args"]
    assert args[args.index("--revision") + 1] == "abc123"
    with pytest.raises(RenderError, match="set by the plan"):
        render(deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct", "revision": "abc123"},
                          extraArgs=["--revision", "other"]))  # fmt: skip
