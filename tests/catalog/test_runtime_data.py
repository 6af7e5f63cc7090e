"""Sanity checks of runtimes.yaml, hardware_support.yaml and overhead.yaml, read with PyYAML only."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parents[2] / "operator" / "modelplane" / "catalog" / "data"
FLAG = re.compile(r"^--?[a-z0-9][a-z0-9_-]*$")
CAPABILITY = re.compile(r"^\d+\.\d+$")

# Flags modelplane's renderer emits (modelplane/render/args.py), per runtime.
RENDERED = {
    "vllm": (
        "--served-model-name", "--host", "--port", "--tensor-parallel-size", "--pipeline-parallel-size",
        "--max-model-len", "--gpu-memory-utilization", "--quantization", "--dtype", "--kv-cache-dtype",
        "--distributed-executor-backend",
    ),
    "tensorrt-llm": (
        "--host", "--port", "--backend", "--tp_size", "--pp_size", "--max_seq_len",
        "--kv_cache_free_gpu_memory_fraction",
    ),
}  # fmt: skip
# Flags users plausibly pass in extraArgs that must be recognised.
COMMON_VLLM = (
    "--download-dir", "--max-num-seqs", "--trust-remote-code", "--enable-prefix-caching",
    "--no-enable-prefix-caching", "--enforce-eager", "--max-num-batched-tokens", "--enable-chunked-prefill",
    "--seed", "--disable-log-requests", "--enable-log-requests", "--disable-log-stats", "--api-key",
    "--enable-expert-parallel", "--nnodes", "--node-rank", "--master-addr", "--headless",
)  # fmt: skip


def _load(name: str) -> Any:
    return yaml.safe_load((DATA / name).read_text())


def _runtimes() -> dict[str, Any]:
    runtimes: dict[str, Any] = _load("runtimes.yaml")["runtimes"]
    return runtimes


def test_runtimes_schema_and_pins() -> None:
    data = _load("runtimes.yaml")
    assert data["schemaVersion"] == 1
    runtimes = _runtimes()
    assert set(runtimes) == {"vllm", "tensorrt-llm"}
    assert runtimes["vllm"]["image"] == f"vllm/vllm-openai:v{runtimes['vllm']['version']}"
    assert runtimes["vllm"]["imageAmd"] == f"vllm/vllm-openai-rocm:v{runtimes['vllm']['version']}"
    trt_version = runtimes["tensorrt-llm"]["version"]
    assert runtimes["tensorrt-llm"]["image"] == f"nvcr.io/nvidia/tensorrt-llm/release:{trt_version}"
    for name, runtime in runtimes.items():
        assert isinstance(runtime["port"], int), name
        assert 0 < runtime["port"] < 65536, name
        assert runtime["healthPath"] == "/health", name
        assert runtime["command"], name
        assert all(isinstance(part, str) for part in runtime["command"]), name
        for key in ("versionSource", "imageSource", "flagsChecked"):
            assert isinstance(runtime[key], str), (name, key)
            assert runtime[key].strip(), (name, key)


@pytest.mark.parametrize("runtime", ["vllm", "tensorrt-llm"])
def test_every_flag_is_well_formed_unique_and_sourced(runtime: str) -> None:
    flags = _runtimes()[runtime]["flags"]
    names = [flag["name"] for flag in flags]
    assert len(names) == len(set(names)), "duplicate flags"
    for flag in flags:
        assert set(flag) - {"aliasOf"} == {"name", "source"}, flag
        assert FLAG.match(flag["name"]), flag
        assert isinstance(flag["source"], str), flag
        assert flag["source"].strip(), flag
        if "aliasOf" in flag:
            assert flag["aliasOf"] in names, flag
            assert flag["aliasOf"] != flag["name"], flag


@pytest.mark.parametrize("runtime", ["vllm", "tensorrt-llm"])
def test_rendered_flags_exist_in_pinned_version(runtime: str) -> None:
    names = {flag["name"] for flag in _runtimes()[runtime]["flags"]}
    missing = [flag for flag in RENDERED[runtime] if flag not in names]
    assert not missing, f"renderer flags missing from {runtime}: {missing}"


def test_vllm_common_flags_and_removed_flags() -> None:
    vllm = _runtimes()["vllm"]
    names = {flag["name"] for flag in vllm["flags"]}
    assert not [flag for flag in COMMON_VLLM if flag not in names]
    assert "--swap-space" not in names
    removed = {entry["name"] for entry in vllm["removedFlags"]}
    assert "--swap-space" in removed
    # A full programmatic extraction, not a hand-picked subset.
    assert len(names) > 300


def test_vllm_value_lists() -> None:
    vllm = _runtimes()["vllm"]
    assert {"awq", "gptq", "fp8", "compressed-tensors"} <= set(vllm["quantizationValues"])
    assert "int8" not in vllm["quantizationValues"]
    assert {"auto", "fp8", "fp8_e4m3", "fp8_e5m2"} <= set(vllm["kvCacheDtypeValues"])
    assert vllm["dtypeValues"] == ["auto", "half", "float16", "bfloat16", "float", "float32"]
    assert "ray" in vllm["distributedExecutorBackendValues"]
    for key in ("quantizationValues", "kvCacheDtypeValues", "dtypeValues"):
        assert vllm[f"{key}Source"].strip()
        assert len(vllm[key]) == len(set(vllm[key]))


def test_vllm_batch_defaults_are_integers() -> None:
    tiers = _runtimes()["vllm"]["defaults"]["maxNumBatchedTokensApiServer"]
    assert [tier["value"] for tier in tiers] == [16384, 8192, 2048]
    for tier in tiers:
        assert type(tier["value"]) is int
        assert type(tier["deviceMemoryAtLeastGiB"]) is int


def test_multi_node_decisions() -> None:
    runtimes = _runtimes()
    vllm = runtimes["vllm"]["multiNode"]
    assert vllm["approach"] == "ray-on-leaderworkerset"
    assert "$(LWS_GROUP_SIZE)" in vllm["leaderCommand"]
    assert "--distributed-executor-backend ray" in vllm["leaderCommand"]
    assert "$(LWS_LEADER_ADDRESS)" in vllm["workerCommand"]
    assert vllm["source"].strip()
    trt = runtimes["tensorrt-llm"]["multiNode"]
    assert trt["approach"] == "unsupported-in-planner"
    assert trt["reason"].strip()
    assert trt["sources"]


def test_tensorrt_llm_backend_and_quantization() -> None:
    trt = _runtimes()["tensorrt-llm"]
    assert "pytorch" in trt["backendValues"]
    assert trt["backendValuesSource"].strip()
    assert trt["quantization"]["flag"] == "none"
    assert trt["quantization"]["sources"]
    assert "--quantization" not in {flag["name"] for flag in trt["flags"]}


def test_hardware_support_rules() -> None:
    data = _load("hardware_support.yaml")
    assert data["schemaVersion"] == 1
    seen: set[tuple[str, str]] = set()
    allowed = {"runtime", "quantization", "requiresCheckpoint", "nvidia", "amd", "source", "note"}
    for rule in data["rules"]:
        assert set(rule) <= allowed, rule
        key = (rule["runtime"], rule["quantization"])
        assert key not in seen, key
        seen.add(key)
        assert rule["source"].strip(), key
        assert "nvidia" in rule or "amd" in rule, key
        if "nvidia" in rule:
            nvidia = rule["nvidia"]
            assert CAPABILITY.match(nvidia["minComputeCapability"]), key
            if "weightOnlyFrom" in nvidia:
                assert CAPABILITY.match(nvidia["weightOnlyFrom"]), key
                low = tuple(map(int, nvidia["weightOnlyFrom"].split(".")))
                assert low <= tuple(map(int, nvidia["minComputeCapability"].split("."))), key
        if rule["runtime"] == "tensorrt-llm":
            assert "amd" not in rule, "TensorRT-LLM is NVIDIA-only"
    for runtime in ("vllm", "tensorrt-llm"):
        for quantization in ("bf16", "fp16", "fp8", "int8", "awq", "gptq", "fp8-kv-cache"):
            assert (runtime, quantization) in seen
    rules = {(rule["runtime"], rule["quantization"]): rule for rule in data["rules"]}
    assert rules[("vllm", "bf16")]["nvidia"]["minComputeCapability"] == "8.0"
    assert rules[("vllm", "fp8")]["nvidia"]["minComputeCapability"] == "8.9"
    assert rules[("tensorrt-llm", "fp8")]["nvidia"]["minComputeCapability"] == "8.9"
    assert "weightOnlyFrom" not in rules[("tensorrt-llm", "fp8")]["nvidia"]


def test_overhead_constants_are_sourced_integers() -> None:
    data = _load("overhead.yaml")
    assert data["schemaVersion"] == 1
    for runtime in ("vllm", "tensorrt-llm"):
        constants = data["model"][runtime]
        sources = constants.pop("sources")
        assert constants, runtime
        architectures = constants.pop("stateCheckpointArchitectures", None)
        if architectures is not None:  # GPU architectures, as gpus.yaml names them
            assert set(architectures) <= {gpu["architecture"] for gpu in _load("gpus.yaml")["gpus"]}, runtime
            assert sources["stateCheckpointArchitectures"].strip(), runtime
        for key, value in constants.items():
            rules = value if isinstance(value, list) else [{"value": value}]
            for rule in rules:
                assert all(type(number) is int and number >= 0 for name, number in rule.items()
                           if name != "exceptNames"), (runtime, key)  # fmt: skip
            assert isinstance(sources.get(key), str), (runtime, key)
            assert sources[key].strip(), (runtime, key)
        assert constants["maxNumBatchedTokens"] > 0
    for entry in data["evidence"]:
        assert entry["source"].startswith("https://"), entry
        assert entry["log"].strip(), entry


def test_overhead_activation_fit_matches_quoted_measurement() -> None:
    vllm = _load("overhead.yaml")["model"]["vllm"]
    # Meta-Llama-3-8B: hidden 4096, intermediate 14336; vLLM measured 1.26 GiB at 8192 batched tokens.
    per_token = vllm["activationBytesPerHidden"] * 4096 + vllm["activationBytesPerIntermediate"] * 14336
    modelled = 8192 * per_token
    measured = 1.26 * 2**30
    assert abs(modelled - measured) / measured < 0.05
