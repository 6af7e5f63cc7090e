"""What a checkpoint's safetensors headers say: every tensor's name, dtype and shape, summarized per layer role.

The headers are read with the `safetensors` library for local files and with `huggingface_hub`'s header reader
(two range requests per file at most) on the Hub; nothing else of the weights is read.

The summary the planner consumes (`TensorSummary`, also the `tensors` field of a catalog entry):

    TensorSummary
      groups: [TensorGroup, ...]          sorted by role, then dtype, then shape
        role:   str                       the tensor name with every index as `*`:
                                          "model.layers.*.mlp.experts.*.down_proj.weight", "lm_head.weight"
        dtype:  str                       the safetensors dtype ("BF16", "F8_E4M3", "U8", "I32", "F32", "F4", ...)
        shape:  [int, ...]                one tensor's shape; tensors of one role, dtype and shape form one group
        count:  int                       tensors in the group (layers × experts)
        layers: [int, ...]                decoder layers the group appears in (`layers.N`, `h.N`, `blocks.N` of
                                          the language model); empty for tensors outside them (embedding, head)
        bytes:  int                       bytes of all its tensors together, exactly as stored (packed 4-bit
                                          values, scales and zero points are tensors of their own, so included)
      total_bytes: int                    the sum over groups

Derived views: `layer_bytes()` (bytes per decoder layer index), `outside_layers_bytes()` and `vision_bytes()`
(a multimodal model's vision tower and projector, by the role prefixes in VISION_PREFIXES).
"""

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError

DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64,
    "F64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
"""Bits per element of each safetensors dtype (safetensors' `Dtype` enum, safetensors/src/tensor.rs)."""

LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
"""The decoder-layer index of a tensor name: `model.layers.3.`, GPT-2's `h.3.`, `blocks.3.`."""
INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")
VISION_PREFIXES = (
    "vision_tower.", "vision_model.", "visual.", "model.visual.", "model.vision_tower.", "model.vision_model.",
    "multi_modal_projector.", "model.multi_modal_projector.", "vision_embed_tokens.", "model.vision_embed_tokens.",
    "mm_projector.", "model.mm_projector.",
)  # fmt: skip
"""Role prefixes of vision encoders and projectors in transformers' multimodal models (Llama-4: vision_model,
multi_modal_projector; Qwen2/3-VL: visual / model.visual; Gemma 3, LLaVA: vision_tower, multi_modal_projector)."""
LANGUAGE_PREFIXES = ("language_model.", "model.language_model.")
MAX_TENSORS = 2_000_000
"""More tensors than any checkpoint has (DeepSeek-V3: about 91,000); bounds the work on a hostile header."""


class TensorGroup(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    role: str
    dtype: str
    shape: tuple[int, ...]
    count: int = Field(gt=0)
    layers: tuple[int, ...] = ()
    bytes: int = Field(ge=0)


class TensorSummary(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    groups: tuple[TensorGroup, ...]
    total_bytes: int = Field(ge=0)

    def layer_bytes(self) -> dict[int, int]:
        """Bytes per decoder layer of the language model, each group's bytes spread evenly over its layers."""
        totals: dict[int, int] = {}
        for group in self.groups:
            if group.layers and not is_vision(group.role):
                share = group.bytes // len(group.layers)
                for layer in group.layers:
                    totals[layer] = totals.get(layer, 0) + share
        return totals

    def outside_layers_bytes(self) -> int:
        """Bytes of language-model tensors outside the decoder layers: embedding, final norm, LM head, MTP."""
        return sum(group.bytes for group in self.groups if not group.layers and not is_vision(group.role))

    def vision_bytes(self) -> int:
        return sum(group.bytes for group in self.groups if is_vision(group.role))


def is_vision(role: str) -> bool:
    return role.startswith(VISION_PREFIXES)


class TensorHeader(NamedTuple):
    """One tensor as a safetensors header describes it; `size` is its byte length when the header gives offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    size: int | None = None


def tensor_bytes(dtype: str, shape: tuple[int, ...], where: str) -> int:
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        raise CatalogError(f"{where}: tensor dtype {dtype!r} is not a safetensors dtype modelplane knows")
    elements = 1
    for side in shape:
        elements *= side
    return -(-elements * bits // 8)


def summarize(tensors: Iterable[TensorHeader], where: str) -> TensorSummary:
    """Group tensors by role, dtype and shape; bytes from the header's offsets when known, else dtype × shape."""
    grouped: dict[tuple[str, str, tuple[int, ...]], tuple[int, set[int], int]] = {}
    for index, tensor in enumerate(tensors):
        if index >= MAX_TENSORS:
            raise CatalogError(f"{where}: more than {MAX_TENSORS:,} tensors; not a model checkpoint")
        if any(not isinstance(side, int) or side < 0 for side in tensor.shape):
            raise CatalogError(f"{where}: tensor {tensor.name!r} has an invalid shape {list(tensor.shape)}")
        size = tensor_bytes(tensor.dtype, tensor.shape, where) if tensor.size is None else tensor.size
        name = tensor.name
        layer = LAYER_INDEX.search(name) if not is_vision(name) else None
        key = (INDEX.sub("*", name), tensor.dtype, tuple(tensor.shape))
        count, layers, total = grouped.get(key, (0, set(), 0))
        if layer is not None:
            layers.add(int(layer.group(1)))
        grouped[key] = (count + 1, layers, total + size)
    groups = tuple(
        TensorGroup(role=role, dtype=dtype, shape=shape, count=count, layers=tuple(sorted(layers)), bytes=total)
        for (role, dtype, shape), (count, layers, total) in sorted(grouped.items())
    )
    return TensorSummary(groups=groups, total_bytes=sum(group.bytes for group in groups))


def local_safetensors(directory: Path) -> list[Path]:
    """The safetensors files of a model directory (all of them: an index names the same files)."""
    return sorted(directory.glob("*.safetensors"))


def read_local_headers(files: Iterable[Path]) -> list[TensorHeader]:
    """Every tensor's header entry, read with the safetensors library (the file is memory-mapped, not read)."""
    from safetensors import SafetensorError, safe_open

    headers: list[TensorHeader] = []
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as handle:
                for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    piece = handle.get_slice(name)
                    headers.append(TensorHeader(name, str(piece.get_dtype()), tuple(piece.get_shape())))
        except (SafetensorError, OSError) as error:
            raise CatalogError(f"{path}: not a readable safetensors file ({error})") from None
    return headers


def hub_headers(files: Mapping[str, Mapping[str, tuple[str, tuple[int, ...], int]]]) -> list[TensorHeader]:
    """Headers as huggingface_hub reports them: per file, tensor name -> (dtype, shape, bytes from offsets)."""
    return [TensorHeader(name, dtype, shape, size)
            for tensors in files.values() for name, (dtype, shape, size) in tensors.items()]  # fmt: skip


def language_role(role: str) -> str:
    """A multimodal checkpoint's language-model tensor name without its wrapper prefix."""
    for prefix in LANGUAGE_PREFIXES:
        if role.startswith(prefix):
            return role.removeprefix(prefix)
    return role
