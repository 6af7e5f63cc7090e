"""Real checkpoints for resolution tests: config.json and safetensors files written by the safetensors library.

Small shapes (a 2-layer Llama with hidden size 64), real headers: the same bytes a Hub download would hold.
"""

import ctypes
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import TensorSpec, serialize_file

TINY_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
DTYPE_BYTES = {"bfloat16": 2, "float32": 4, "float8_e4m3fn": 1, "uint8": 1, "int32": 4}


def llama_tensors(
    config: Mapping[str, Any], dtype: str = "bfloat16", prefix: str = "model."
) -> dict[str, tuple[str, list[int]]]:
    """Every tensor of a Llama checkpoint (transformers' LlamaForCausalLM names), as (dtype, shape)."""
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = hidden // heads
    tensors = {f"{prefix}embed_tokens.weight": (dtype, [vocab, hidden]), f"{prefix}norm.weight": (dtype, [hidden]),
               "lm_head.weight": (dtype, [vocab, hidden])}  # fmt: skip
    for layer in range(config["num_hidden_layers"]):
        base = f"{prefix}layers.{layer}."
        tensors.update({
            base + "self_attn.q_proj.weight": (dtype, [heads * head_dim, hidden]),
            base + "self_attn.k_proj.weight": (dtype, [kv_heads * head_dim, hidden]),
            base + "self_attn.v_proj.weight": (dtype, [kv_heads * head_dim, hidden]),
            base + "self_attn.o_proj.weight": (dtype, [hidden, heads * head_dim]),
            base + "mlp.gate_proj.weight": (dtype, [inter, hidden]),
            base + "mlp.up_proj.weight": (dtype, [inter, hidden]),
            base + "mlp.down_proj.weight": (dtype, [hidden, inter]),
            base + "input_layernorm.weight": (dtype, [hidden]),
            base + "post_attention_layernorm.weight": (dtype, [hidden]),
        })  # fmt: skip
    return tensors


def nbytes(dtype: str, shape: list[int]) -> int:
    elements = 1
    for side in shape:
        elements *= side
    return elements * DTYPE_BYTES[dtype]


def write_safetensors(path: Path, tensors: Mapping[str, tuple[str, list[int]]]) -> None:
    """A safetensors file with these tensors (zeros), written by the safetensors library itself."""
    buffers = []
    specs = {}
    for name, (dtype, shape) in tensors.items():
        size = nbytes(dtype, shape)
        buffer = ctypes.create_string_buffer(size)
        buffers.append(buffer)
        specs[name] = TensorSpec(dtype=dtype, shape=shape, data_ptr=ctypes.addressof(buffer), data_len=size)
    serialize_file(specs, str(path), {"format": "pt"})


def write_model(directory: Path, config: Mapping[str, Any], tensors: Mapping[str, tuple[str, list[int]]],
                shards: int = 1, quant_config: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """A model directory as the Hub stores one: config.json, safetensors shards and their index."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if quant_config is not None:
        (directory / "hf_quant_config.json").write_text(json.dumps(quant_config))
    names = list(tensors)
    if shards == 1:
        write_safetensors(directory / "model.safetensors", tensors)
        return directory
    weight_map = {}
    for shard in range(shards):
        filename = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[shard::shards]}
        write_safetensors(directory / filename, part)
        weight_map.update(dict.fromkeys(part, filename))
    total = sum(nbytes(*tensors[name]) for name in names)
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return directory
