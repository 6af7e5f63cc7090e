"""Model resolution for real: safetensors files written by the safetensors library, a pre-populated HF cache read
with HF_HUB_OFFLINE=1, and the real huggingface_hub client against a local stand-in of the Hub (hub_standin.py).

The CLI runs as a subprocess wherever huggingface_hub's environment variables matter: it reads them at import.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.architecture import parse_architecture
from modelplane.catalog.checkpoint import TensorHeader, summarize
from modelplane.catalog.errors import CatalogError, UnknownModelError, UnsupportedArchitectureError
from modelplane.catalog.models import ModelEntry, find_model
from modelplane.catalog.resolve import (
    HubCache,
    ModelResolver,
    catalog_configmap,
    catalog_entries,
    read_model_directory,
)
from modelplane.planning.estimate import estimate_model
from modelplane.planning.parameters import count_parameters
from modelplane.planning.planner import _Planner
from tests.catalog.checkpoints import TINY_LLAMA, llama_tensors, nbytes, write_model, write_safetensors
from tests.catalog.hub_standin import COMMIT, hub_stand_in
from tests.support import deployment

MODELPLANE = str(Path(sys.executable).with_name("modelplane"))
DEPLOYMENT = """apiVersion: modelplane.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: tiny, namespace: ns}}
spec: {{model: {{name: {model}}}, maxModelLen: 4096}}
"""


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    return subprocess.run([MODELPLANE, *args], env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def entry_of(configmap_yaml: str) -> ModelEntry:
    entries = catalog_entries(configmap_yaml, "out")
    assert len(entries) == 1
    return entries[0]


def test_the_tensor_summary_adds_up_to_what_the_planner_counts_from_config_json(tmp_path: Path) -> None:
    tensors = llama_tensors(TINY_LLAMA)
    entry = read_model_directory(write_model(tmp_path / "tiny", TINY_LLAMA, tensors), "acme/tiny")
    assert entry.tensors is not None
    assert entry.tensors.total_bytes == sum(nbytes(*spec) for spec in tensors.values())
    parameters = count_parameters(parse_architecture(TINY_LLAMA, "test")).total
    assert entry.tensors.total_bytes == 2 * parameters  # bf16: the headers and the arithmetic agree
    roles = {group.role: group for group in entry.tensors.groups}
    q_proj = roles["model.layers.*.self_attn.q_proj.weight"]
    assert (q_proj.dtype, q_proj.shape, q_proj.count, q_proj.layers) == ("BF16", (64, 64), 2, (0, 1))
    assert roles["lm_head.weight"].layers == ()
    per_layer = entry.tensors.layer_bytes()
    assert set(per_layer) == {0, 1}
    assert sum(per_layer.values()) + entry.tensors.outside_layers_bytes() == entry.tensors.total_bytes


def test_bytes_come_from_the_header_offsets_when_the_header_gives_them() -> None:
    expert = "model.layers.{}.mlp.experts.{}.w.weight"
    summary = summarize([TensorHeader(expert.format(0, 3), "U8", (8, 4), 32),
                         TensorHeader(expert.format(1, 0), "U8", (8, 4), 32),
                         TensorHeader(expert.format(1, 0) + "_scale", "F8_E4M3", (8, 1))], "t")  # fmt: skip
    packed = summary.groups[0]
    assert (packed.role, packed.count, packed.layers, packed.bytes) == ("model.layers.*.mlp.experts.*.w.weight", 2,
                                                                       (0, 1), 64)  # fmt: skip
    assert summary.groups[1].bytes == 8


def test_a_sharded_hub_model_is_read_through_range_requests_of_the_headers_only(tmp_path: Path) -> None:
    model = write_model(tmp_path / "repo", TINY_LLAMA, llama_tensors(TINY_LLAMA), shards=2)
    with hub_stand_in({"acme/tiny": model}) as hub:
        result = run(["catalog", "add", "acme/tiny"], {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "c")})
        shards = [request for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
                  for request in hub.requests_for(name)]  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    configmap = yaml.safe_load(result.stdout)
    assert configmap["metadata"] == {
        "name": "model-catalog-acme-tiny",
        "labels": {"modelplane.dev/model-catalog": "true"},
    }
    entry = entry_of(result.stdout)
    assert entry.config == TINY_LLAMA
    assert entry.config_source == f"{hub.url}/acme/tiny/resolve/{COMMIT}/config.json"
    assert entry.tensors == read_model_directory(model, "acme/tiny").tensors
    assert len(shards) == 2
    assert all(request.method == "GET" and request.range == "bytes=0-100000" for request in shards)


def test_a_mirror_serving_hf_quant_config_json_gets_it_into_the_entry(tmp_path: Path) -> None:
    quant = {"producer": {"name": "modelopt", "version": "0.19.0"},
             "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8",
                              "exclude_modules": ["lm_head"]}}  # fmt: skip
    model = write_model(tmp_path / "repo", TINY_LLAMA, llama_tensors(TINY_LLAMA), quant_config=quant)
    with hub_stand_in({"acme/tiny-fp8": model}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "c")}
        result = run(["catalog", "add", "acme/tiny-fp8", "-o", "json"], env)
    assert result.returncode == 0, result.stderr
    assert entry_of(json.dumps(json.loads(result.stdout))).quant_config == quant


def test_a_model_the_hub_does_not_have_is_one_line_naming_it(tmp_path: Path) -> None:
    with hub_stand_in({}) as hub:
        result = run(["catalog", "add", "acme/none"], {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "c")})
    assert result.returncode == 1
    assert result.stderr.startswith("modelplane: error: the Hub has no model 'acme/none'")
    assert len(result.stderr.splitlines()) == 1


def test_plan_with_hub_sizes_a_model_only_the_hub_knows(tmp_path: Path) -> None:
    model = write_model(tmp_path / "repo", TINY_LLAMA, llama_tensors(TINY_LLAMA))
    (tmp_path / "md.yaml").write_text(DEPLOYMENT.format(model="acme/tiny"))
    with hub_stand_in({"acme/tiny": model}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "c")}
        without = run(["plan", str(tmp_path / "md.yaml")], env)
        planned = run(["plan", str(tmp_path / "md.yaml"), "--hub", "-o", "json"], env)
    assert without.returncode == 1
    assert "catalog add acme/tiny" in without.stderr
    assert "--hub" in without.stderr
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)[0]["plan"]["quantization"] == "bf16"


def _populate_hf_cache(cache: Path, repo_id: str, model: Path) -> None:
    """The HF cache layout (`hf download` on a connected machine, then copied over): refs and a snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for file in model.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())


def test_air_gapped_the_pre_populated_hf_cache_is_read_with_hf_hub_offline(tmp_path: Path) -> None:
    model = write_model(tmp_path / "download", TINY_LLAMA, llama_tensors(TINY_LLAMA), shards=2)
    _populate_hf_cache(tmp_path / "hub", "acme/tiny", model)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run(["catalog", "add", "acme/tiny"], env)
    assert result.returncode == 0, result.stderr
    (tmp_path / "catalog.yaml").write_text(result.stdout)
    assert entry_of(result.stdout).tensors == read_model_directory(model, "acme/tiny").tensors
    (tmp_path / "md.yaml").write_text(DEPLOYMENT.format(model="acme/tiny"))
    planned = run(["plan", str(tmp_path / "md.yaml"), "--catalog", str(tmp_path / "catalog.yaml"), "-o", "json"])
    assert planned.returncode == 0, planned.stderr
    missing = run(["catalog", "add", "acme/other"], env)
    assert missing.returncode == 1
    assert "the HF cache (HF_HUB_OFFLINE) has no model 'acme/other'" in missing.stderr


def test_catalog_add_reads_a_local_model_directory_and_render_takes_the_catalog(tmp_path: Path) -> None:
    model = write_model(tmp_path / "my-model", TINY_LLAMA, llama_tensors(TINY_LLAMA))
    result = run(["catalog", "add", str(model), "--name", "acme/local-tiny"])
    assert result.returncode == 0, result.stderr
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "tiny.yaml").write_text(result.stdout)
    (tmp_path / "md.yaml").write_text(DEPLOYMENT.format(model="acme/local-tiny"))
    rendered = run(["render", str(tmp_path / "md.yaml"), "--catalog", str(tmp_path / "catalog"), "-o", "-"])
    assert rendered.returncode == 0, rendered.stderr
    kinds = {document["kind"] for document in yaml.safe_load_all(rendered.stdout)}
    assert "Deployment" in kinds


def test_a_configmap_without_the_catalog_label_is_refused_by_the_cli_as_the_operator_ignores_it(tmp_path: Path) -> None:
    entry = ModelEntry(name="acme/tiny", config_source="test", config=TINY_LLAMA)
    configmap = catalog_configmap(entry)
    configmap["metadata"]["labels"] = {}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(configmap))
    (tmp_path / "md.yaml").write_text(DEPLOYMENT.format(model="acme/tiny"))
    result = run(["plan", str(tmp_path / "md.yaml"), "--catalog", str(tmp_path / "catalog.yaml")])
    assert result.returncode == 1
    assert "without the label modelplane.dev/model-catalog" in result.stderr


def test_resolution_order_spec_then_packaged_catalog_then_user_entries() -> None:
    llama = find_model("meta-llama/Llama-3.1-8B-Instruct")
    assert llama is not None
    impostor = ModelEntry(name=llama.name, config_source="test", config={**TINY_LLAMA})
    tiny = ModelEntry(name="acme/Tiny", aliases=["tiny"], config_source="test", config=TINY_LLAMA)
    resolver = ModelResolver([impostor, tiny])
    assert resolver.resolve(llama.name, None, "t").architecture.hidden_size == 4096  # packaged wins
    found = resolver.resolve("acme/tiny", None, "t")
    assert (found.origin, found.entry, found.architecture.hidden_size) == ("user catalog", tiny, 64)
    assert resolver.resolve("tiny", None, "t").entry == tiny
    given = resolver.resolve("acme/tiny", {"num_hidden_layers": 4}, "t")
    assert (given.origin, given.architecture.num_layers) == ("spec", 4)
    with pytest.raises(UnknownModelError, match="catalog add acme/other"):
        resolver.resolve("acme/other", None, "t")


def test_the_hub_cache_is_bounded_least_recently_used_first() -> None:
    cache = HubCache(max_models=2)
    entries = [ModelEntry(name=f"acme/m{n}", config_source="t", config=TINY_LLAMA) for n in range(3)]
    cache.put("a", entries[0])
    cache.put("b", entries[1])
    assert cache.get("a") == entries[0]
    cache.put("c", entries[2])
    assert (len(cache), cache.get("b"), cache.get("a"), cache.get("c")) == (2, None, entries[0], entries[2])


HYBRID_MAMBA = {"model_type": "nemotron_h", "hidden_size": 1024, "num_hidden_layers": 8,
                "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 4096, "intermediate_size": 2048,
                "mamba_num_heads": 16, "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 1, "conv_kernel": 4,
                "hybrid_override_pattern": "M-M*ME-M"}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**TINY_LLAMA, "model_type": "jamba"}, "model_type 'jamba' cannot be sized exactly: modelplane lacks hybrid"
                                                " Mamba layers"),
        ({**HYBRID_MAMBA, "hybrid_override_pattern": "M-M*MX-M"}, "model_type 'nemotron_h' has layers 'X' in"
                                                                  " hybrid_override_pattern, which modelplane does"),
        ({**TINY_LLAMA, "model_type": "phi"}, "model_type 'phi' cannot be sized exactly: modelplane lacks a native"
                                              " vLLM model"),
        ({**TINY_LLAMA, "model_type": "acme_new"}, "model_type 'acme_new' cannot be sized exactly: modelplane lacks"
                                                   " its layer structure"),
        ({key: value for key, value in TINY_LLAMA.items() if key != "model_type"}, "config.json has no model_type"),
        ({**TINY_LLAMA, "model_type": "qwen3", "layer_types": ["linear_attention", "full_attention"]},
         "model_type 'qwen3' has layer_types linear_attention, which modelplane does not model"),
    ],
    ids=["jamba", "nemotron-h-unknown-layer", "phi-2", "unknown-type", "no-model-type",
         "linear-attention-layers"],
)  # fmt: skip
def test_an_architecture_the_planner_does_not_model_is_refused_never_guessed(
    config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(UnsupportedArchitectureError, match="^md.yaml: " + expected.replace("(", r"\(")):
        parse_architecture(config, "md.yaml")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**HYBRID_MAMBA, "hybrid_override_pattern": "M-M*"}, "'hybrid_override_pattern' must be a string of one"
                                                              " character per layer (8), got 'M-M*'"),
        ({**HYBRID_MAMBA, "hybrid_override_pattern": "M-M*MM-M", "ssm_state_size": 0}, "'ssm_state_size' must be a"
                                                                                       " positive integer, got 0"),
        ({**HYBRID_MAMBA, "hybrid_override_pattern": "M-M*MM-M", "mamba_ssm_cache_dtype": "fp8"},
         "'mamba_ssm_cache_dtype' must be one of float32, bfloat16, float16, got 'fp8'"),
        # A list where a name belongs (found by the config fuzzer): refused, never a TypeError.
        ({**HYBRID_MAMBA, "hybrid_override_pattern": "M-M*MM-M", "mamba_ssm_cache_dtype": ["float32"]},
         "'mamba_ssm_cache_dtype' must be one of float32, bfloat16, float16, got"),
        (HYBRID_MAMBA, "'n_routed_experts' must be a positive integer: the E layers of hybrid_override_pattern"),
    ],
    ids=["pattern-length", "no-state", "state-dtype", "state-dtype-list", "moe-layers-without-experts"],
)  # fmt: skip
def test_a_hybrid_config_with_a_bad_field_names_it(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(CatalogError, match=re.escape(f"md.yaml: config field {expected}")):
        parse_architecture(config, "md.yaml")


LLAVA = {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"],
         "text_config": {**TINY_LLAMA}, "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32},
         "tie_word_embeddings": False}  # fmt: skip


def test_a_multimodal_config_is_read_from_text_config_with_the_vision_tower_counted_from_headers(
    tmp_path: Path,
) -> None:
    tensors = {**llama_tensors(TINY_LLAMA, prefix="model.language_model."),
               "model.vision_tower.encoder.layers.0.fc1.weight": ("bfloat16", [128, 32]),
               "model.multi_modal_projector.linear_1.weight": ("bfloat16", [64, 32])}  # fmt: skip
    entry = read_model_directory(write_model(tmp_path / "llava", LLAVA, tensors), "acme/llava")
    arch = entry.architecture
    assert (arch.multimodal, arch.hidden_size, arch.model_type) == (True, 64, "llama")
    vision = 2 * (128 * 32 + 64 * 32)
    assert arch.vision_weight_bytes == vision
    text_only = estimate_model("acme/tiny", TINY_LLAMA, Quantization.BF16, KvCacheDtype.AUTO, "t").weight_bytes
    resolver = ModelResolver([entry])
    estimate = estimate_model("acme/llava", None, Quantization.BF16, KvCacheDtype.AUTO, "t", resolver)
    assert estimate.weight_bytes == text_only + vision
    assert entry.tensors is not None
    assert entry.tensors.total_bytes == text_only + vision


def test_a_multimodal_config_without_headers_is_refused_saying_how_to_get_them() -> None:
    expected = r"vision tower's weights are counted from the checkpoint's safetensors headers.*modelplane catalog add"
    with pytest.raises(UnsupportedArchitectureError, match=expected):
        ModelResolver().resolve("acme/llava", LLAVA, "md.yaml")


def test_a_text_config_missing_a_field_names_text_config() -> None:
    broken = {**LLAVA, "text_config": {"model_type": "llama", "vocab_size": 32064}}
    with pytest.raises(Exception, match=r"md.yaml \(text_config\): config field 'hidden_size'"):
        parse_architecture(broken, "md.yaml")


def test_an_unreadable_safetensors_file_is_one_line_naming_it(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m", TINY_LLAMA, {"x": ("bfloat16", [2])})
    (model / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    result = run(["catalog", "add", str(model)])
    assert result.returncode == 1
    assert result.stderr.startswith(f"modelplane: error: {model / 'model.safetensors'}: not a readable safetensors")


def test_write_safetensors_round_trips_through_the_safetensors_reader(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "x.safetensors", {"a.weight": ("float8_e4m3fn", [4, 4]), "b": ("float32", [3])})
    from safetensors import safe_open

    with safe_open(str(tmp_path / "x.safetensors"), framework="numpy") as handle:
        assert sorted(handle.keys()) == ["a.weight", "b"]
        assert handle.get_slice("a.weight").get_dtype() == "F8_E4M3"


def _modelopt_fp8(tmp_path: Path, excluded: bool) -> ModelEntry:
    """A ModelOpt FP8 tiny Llama whose layer 0 attention is, when `excluded`, left in BF16 (exclude_modules)."""
    tensors = llama_tensors(TINY_LLAMA)
    for name in list(tensors):
        if name.endswith("proj.weight") and not (excluded and ".layers.0.self_attn." in name):
            tensors[name] = ("float8_e4m3fn", tensors[name][1])
            tensors[name.replace(".weight", ".weight_scale")] = ("float32", [])
    quant = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "exclude_modules": [
        "lm_head", *(["model.layers.0.self_attn*"] if excluded else [])]}}  # fmt: skip
    return read_model_directory(write_model(tmp_path / f"fp8-{excluded}", TINY_LLAMA, tensors, quant_config=quant),
                                "acme/tiny-fp8")  # fmt: skip


def test_weights_are_never_below_what_the_safetensors_headers_store(tmp_path: Path) -> None:
    """ModelOpt's exclude_modules keep layers in BF16 that the config's FP8 does not show: the headers do."""
    plain, excluded = _modelopt_fp8(tmp_path, False), _modelopt_fp8(tmp_path, True)
    sizes = {}
    for entry in (plain, excluded):
        estimate = estimate_model("acme/tiny-fp8", None, Quantization.AUTO, KvCacheDtype.AUTO, "t",
                                  ModelResolver([entry]))  # fmt: skip
        assert estimate.weight_format == "fp8"
        assert entry.tensors is not None
        sizes[entry is excluded] = (estimate.weight_bytes, entry.tensors.total_bytes)
    # All-FP8 layers: the byte model's count (1 byte per weight and an fp32 scale per matrix) is what is stored.
    assert sizes[False][0] == sizes[False][1]
    # Layer 0's attention in BF16 adds a byte per weight and drops 4 scales: the estimate follows the headers.
    attention = 2 * 64 * 64 + 2 * 64 * 32  # q, o: 64 × 64; k, v: 32 × 64 (2 KV heads of 16)
    assert sizes[True][1] == sizes[False][1] + attention - 4 * 4
    assert sizes[True][0] == sizes[True][1]
    # The planner sizes the same bytes, and splits layer 0's extra over TP ranks as it splits the layer.
    planner = _Planner(
        "x", "default", deployment(model={"name": "acme/tiny-fp8"}).spec, excluded.architecture, excluded
    )
    assert planner.sizer.weights(Quantization.FP8, 1).stages([range(2)])[0] == sizes[True][1]
    per_rank = planner.sizer.weights(Quantization.FP8, 2).stages([range(2)])[0]
    assert sizes[True][1] // 2 <= per_rank < sizes[True][1]
