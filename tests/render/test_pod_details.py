"""The serving pod's details that come from arithmetic or from the pool, checked against values worked out by hand.

Constants from modelplane.render.context: the startup probe allows 300 s plus the replica's weight bytes at
250 MB/s, in 10 s periods; /dev/shm is a memory-backed emptyDir of 2 GiB per GPU in the pod.
"""

from typing import Any

import pytest

from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import pod_specs, render_deployment
from tests.support import deployment, pool

# Parameters from the catalog's config.json fields (untied embeddings: embedding and LM head both counted).
LLAMA_8B_PARAMETERS = (
    32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 2 * 128256 * 4096 + 4096
)  # = 8_030_261_248
LLAMA_70B_PARAMETERS = (
    80 * (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192) + 2 * 128256 * 8192 + 8192
)  # = 70_553_706_496
H100_NODES = [pool("h100", "H100-SXM-80GB", 8, 2)]
LLAMA_8B = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "quantization": "bf16"}
LLAMA_70B = {"model": {"name": "meta-llama/Llama-3.1-70B-Instruct"}, "quantization": "bf16"}
LLAMA_405B = {"model": {"name": "meta-llama/Llama-3.1-405B-Instruct"}, "quantization": "bf16"}


def render(spec: dict[str, Any], pools: list[GPUNodePool], tp: int, pp: int = 1) -> list[dict[str, Any]]:
    md = deployment(**spec, parallelism={"tensorParallel": tp, "pipelineParallel": pp})
    result = plan_deployment(md, offers_for(pools))
    assert result.plan is not None, result.reasons
    assert (result.plan.tensor_parallel, result.plan.pipeline_parallel) == (tp, pp)
    return render_deployment(md, result.plan)


def pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod for obj in objects for pod in pod_specs(obj)]


def server(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = pods(objects)[0]["containers"][0]
    return container


# -- startup probe ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "tp", "weight_bytes", "failure_threshold"),
    [
        # 300 + 16_060_522_496 // 250_000_000 = 300 + 64 = 364 s: ceil(364 / 10) = 37 periods.
        (LLAMA_8B, 1, 2 * LLAMA_8B_PARAMETERS, 37),
        # Over 4 GPUs (35_276_853_248 bytes each, no remainder):
        # 300 + 141_107_412_992 // 250_000_000 = 300 + 564 = 864 s: ceil(864 / 10) = 87 periods.
        (LLAMA_70B, 4, 2 * LLAMA_70B_PARAMETERS, 87),
    ],
    ids=["8b-tp1", "70b-tp4"],
)
def test_startup_probe_allows_300_s_plus_the_weights_at_250_mb_per_s(
    spec: dict[str, Any], tp: int, weight_bytes: int, failure_threshold: int
) -> None:
    assert -(-(300 + weight_bytes // 250_000_000) // 10) == failure_threshold
    startup = server(render(spec, H100_NODES, tp))["startupProbe"]
    assert startup == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": failure_threshold,
        "timeoutSeconds": 5,
    }


# -- /dev/shm ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "tp", "pp", "size"),
    [
        (LLAMA_8B, 1, 1, "2Gi"),  # 2 GiB × 1 GPU
        (LLAMA_70B, 8, 1, "16Gi"),  # 2 GiB × 8 GPUs
        (LLAMA_405B, 8, 2, "16Gi"),  # per pod: two pods of 8 GPUs, not 2 GiB × 16
    ],
    ids=["tp1", "tp8", "tp8-pp2-per-pod"],
)
def test_dev_shm_is_2_gib_of_memory_per_gpu_in_the_pod(spec: dict[str, Any], tp: int, pp: int, size: str) -> None:
    objects = render(spec, H100_NODES, tp, pp)
    assert len(pods(objects)) == (2 if pp > 1 else 1)  # a LeaderWorkerSet's leader and worker templates
    for pod in pods(objects):
        assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": size}} in pod["volumes"]
        for container in pod["containers"]:
            assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]


# -- the pool's placement -----------------------------------------------------------------------------------
NODE_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb", "team": "inference"}
TOLERATIONS = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoExecute", "tolerationSeconds": 300},
]
TAINTED = [pool("tainted", "H100-SXM-80GB", 8, 2, nodeSelector=NODE_SELECTOR, tolerations=TOLERATIONS)]


@pytest.mark.parametrize(("spec", "tp", "pp"), [(LLAMA_8B, 1, 1), (LLAMA_405B, 8, 2)], ids=["single", "multi-node"])
def test_pool_node_selector_and_tolerations_reach_every_pod(spec: dict[str, Any], tp: int, pp: int) -> None:
    for pod in pods(render(spec, TAINTED, tp, pp)):
        assert pod["nodeSelector"] == NODE_SELECTOR
        assert pod["tolerations"] == TOLERATIONS


def test_pool_without_a_node_selector_is_selected_by_its_pool_label() -> None:
    [pod] = pods(render(LLAMA_8B, H100_NODES, 1))
    assert pod["nodeSelector"] == {"modelplane.dev/pool": "h100"}
    assert pod["tolerations"] == []


def test_amd_pool_asks_for_amd_gpus() -> None:
    resources = server(render(LLAMA_8B, [pool("mi300x", "MI300X-192GB", 8, 1)], 2))["resources"]
    assert resources["limits"]["amd.com/gpu"] == resources["requests"]["amd.com/gpu"] == "2"
    assert not any(name.startswith("nvidia.com/") for part in resources.values() for name in part)


# -- health probes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["vllm", "tensorrt-llm"])
def test_liveness_and_readiness_probe_health_on_the_serving_port(runtime: str) -> None:
    container = server(render({**LLAMA_8B, "runtime": runtime}, H100_NODES, 1))
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    health = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 5}
    assert container["readinessProbe"] == {**health, "periodSeconds": 10, "failureThreshold": 3}
    assert container["livenessProbe"] == {**health, "periodSeconds": 20, "failureThreshold": 3}


def test_only_the_leader_of_a_multi_node_replica_serves_and_is_probed() -> None:
    leader, worker = pods(render(LLAMA_405B, H100_NODES, 8, 2))
    assert leader["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"
    [worker_container] = worker["containers"]
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(worker_container)
    assert worker_container["ports"] == []
