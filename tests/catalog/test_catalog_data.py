"""Sanity checks of the catalog data files themselves, read with PyYAML only (independent of the loaders)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parents[2] / "operator" / "modelplane" / "catalog" / "data"
MODELS = sorted((DATA / "models").glob("*.yaml"))

REQUIRED_GPUS = (
    "H100-SXM-80GB",
    "H100-PCIE-80GB",
    "H200-SXM-141GB",
    "B200-SXM-180GB",
    "A100-SXM-80GB",
    "A100-SXM-40GB",
    "L40S-48GB",
    "L4-24GB",
    "A10G-24GB",
    "RTX-4090-24GB",
    "RTX-6000-ADA-48GB",
    "V100-SXM-32GB",
    "T4-16GB",
    "MI300X-192GB",
    "MI325X-256GB",
)
GPU_KEYS = {
    "id",
    "vendor",
    "displayName",
    "architecture",
    "computeCapability",
    "gfxArch",
    "memoryBytes",
    "memoryBandwidthGBps",
    "bf16DenseTflops",
    "fp8DenseTflops",
    "int8DenseTops",
    "interconnect",
    "interconnectGBps",
    "pcieGeneration",
    "resourceName",
    "productLabels",
    "precisions",
    "gpusPerServer",
    "sources",
}
GPU_OPTIONAL_KEYS = {"note"}
GPU_NUMERIC = (
    "memoryBytes",
    "memoryBandwidthGBps",
    "bf16DenseTflops",
    "fp8DenseTflops",
    "int8DenseTops",
    "interconnectGBps",
    "pcieGeneration",
    "gpusPerServer",
)
GPU_NULLABLE = {"fp8DenseTflops", "int8DenseTops", "pcieGeneration"}
ARCHITECTURES = {"hopper", "ampere", "ada-lovelace", "blackwell", "volta", "turing", "cdna3", "cdna4"}
PRECISIONS = {"fp32", "tf32", "fp16", "bf16", "fp8", "fp6", "fp4", "int8", "int4"}

MODEL_KEYS = {"name", "aliases", "configSource", "officialParameters", "parametersSource", "preQuantized", "config"}
MODEL_OPTIONAL_KEYS = {"parametersRounding", "note"}
CONFIG_KEYS = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
PRE_QUANTIZED = {None, "awq", "gptq", "fp8", "mxfp4"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _gpus() -> list[dict[str, Any]]:
    document = _load(DATA / "gpus.yaml")
    assert isinstance(document, dict)
    assert document.get("schemaVersion") == 1
    gpus = document["gpus"]
    assert isinstance(gpus, list)
    return gpus


GPUS = _gpus()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_every_required_gpu_is_present_once() -> None:
    ids = [gpu["id"] for gpu in GPUS]
    assert len(ids) == len(set(ids)), "duplicate GPU ids"
    missing = [gpu_id for gpu_id in REQUIRED_GPUS if gpu_id not in ids]
    assert not missing, f"missing GPUs: {missing}"


@pytest.mark.parametrize("gpu", GPUS, ids=[str(gpu.get("id")) for gpu in GPUS])
def test_gpu_entry_shape(gpu: dict[str, Any]) -> None:
    keys = set(gpu)
    assert keys >= GPU_KEYS, f"missing keys: {sorted(GPU_KEYS - keys)}"
    assert keys <= GPU_KEYS | GPU_OPTIONAL_KEYS, f"unknown keys: {sorted(keys - GPU_KEYS - GPU_OPTIONAL_KEYS)}"
    assert gpu["architecture"] in ARCHITECTURES
    assert set(gpu["precisions"]) <= PRECISIONS
    assert gpu["productLabels"]
    assert all(isinstance(label, str) and label for label in gpu["productLabels"])
    for field in GPU_NUMERIC:
        value = gpu[field]
        if value is None:
            assert field in GPU_NULLABLE, f"{field} may not be null"
            continue
        assert _is_int(value), f"{field} must be an integer, got {value!r}"
        assert value > 0, f"{field} must be positive, got {value!r}"
    if gpu["vendor"] == "nvidia":
        assert gpu["resourceName"] == "nvidia.com/gpu"
        assert gpu["gfxArch"] is None
        assert isinstance(gpu["computeCapability"], str)
        assert re.fullmatch(r"\d+\.\d+", gpu["computeCapability"])
        assert gpu["interconnect"] in {"nvlink", "pcie"}
    else:
        assert gpu["vendor"] == "amd"
        assert gpu["resourceName"] == "amd.com/gpu"
        assert gpu["computeCapability"] is None
        assert isinstance(gpu["gfxArch"], str)
        assert re.fullmatch(r"gfx[0-9a-f]+", gpu["gfxArch"])
        assert gpu["interconnect"] in {"infinity-fabric", "pcie"}
    # What the driver reports is below the marketed capacity in decimal GB ceiling and above 90% of it.
    marketed_gb = int(re.findall(r"(\d+)GB", gpu["id"])[-1])
    assert 0.9 * marketed_gb * 10**9 < gpu["memoryBytes"] <= marketed_gb * 2**30 * 1.1
    if gpu["fp8DenseTflops"] is not None:
        assert "fp8" in gpu["precisions"]
        assert gpu["fp8DenseTflops"] >= gpu["bf16DenseTflops"]
    else:
        assert "fp8" not in gpu["precisions"]


@pytest.mark.parametrize("gpu", GPUS, ids=[str(gpu.get("id")) for gpu in GPUS])
def test_every_gpu_number_has_a_source(gpu: dict[str, Any]) -> None:
    sources = gpu["sources"]
    assert isinstance(sources, dict)
    needed = [field for field in GPU_NUMERIC if gpu[field] is not None]
    needed += ["productLabels", "computeCapability" if gpu["vendor"] == "nvidia" else "gfxArch"]
    missing = [field for field in needed if not sources.get(field)]
    assert not missing, f"no source for {missing}"
    assert all(isinstance(text, str) and text.strip() for text in sources.values())
    assert set(sources) <= set(gpu), f"sources for unknown fields: {sorted(set(sources) - set(gpu))}"


def test_there_are_enough_models() -> None:
    assert len(MODELS) >= 22


@pytest.mark.parametrize("path", MODELS, ids=[path.stem for path in MODELS])
def test_model_file_shape(path: Path) -> None:
    entry = _load(path)
    assert isinstance(entry, dict)
    keys = set(entry)
    assert keys >= MODEL_KEYS, f"missing keys: {sorted(MODEL_KEYS - keys)}"
    assert keys <= MODEL_KEYS | MODEL_OPTIONAL_KEYS, f"unknown keys: {sorted(keys - MODEL_KEYS - MODEL_OPTIONAL_KEYS)}"
    name = entry["name"]
    assert isinstance(name, str)
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", name)
    assert path.stem == name.replace("/", "--"), "file name must be the repo id with / replaced by --"
    assert entry["configSource"] == f"https://huggingface.co/{name}/blob/main/config.json"
    assert entry["preQuantized"] in PRE_QUANTIZED
    assert isinstance(entry["parametersSource"], str)
    assert entry["parametersSource"].strip()
    official = entry["officialParameters"]
    assert official is None or (_is_int(official) and official > 0)
    if "parametersRounding" in entry:
        rounding = entry["parametersRounding"]
        assert official is not None
        assert _is_int(rounding)
        assert rounding > 1
        assert official % rounding == 0, "a rounded total must be a multiple of its rounding unit"
    config = entry["config"]
    assert isinstance(config, dict)
    for key in CONFIG_KEYS:
        assert key in config, f"config lacks {key}"
    assert isinstance(config["architectures"], list)
    assert config["architectures"]
    quantization = config.get("quantization_config")
    if entry["preQuantized"] is None:
        assert quantization is None, "a checkpoint with a quantization_config is pre-quantized"
    else:
        assert isinstance(quantization, dict)
        assert str(quantization["quant_method"]).lower() in {entry["preQuantized"], "compressed-tensors"}


def test_model_names_and_aliases_are_unique_and_lowercase() -> None:
    names: list[str] = []
    aliases: list[str] = []
    for path in MODELS:
        entry = _load(path)
        names.append(entry["name"].lower())
        entry_aliases = entry["aliases"]
        assert isinstance(entry_aliases, list)
        for alias in entry_aliases:
            assert isinstance(alias, str)
            assert alias == alias.lower()
            assert alias.strip() == alias
            assert alias
            aliases.append(alias)
    assert len(names) == len(set(names)), "duplicate model names"
    assert len(aliases) == len(set(aliases)), "duplicate aliases"
    assert not set(aliases) & set(names), "an alias shadows another model's name"
