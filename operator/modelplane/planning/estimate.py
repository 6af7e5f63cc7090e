"""Model-only sizing: parameters, weight bytes and KV bytes per token, before any GPU is chosen."""

from collections.abc import Mapping
from typing import Any

from modelplane.api.plan import ModelEstimate
from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.errors import CatalogError
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.planning.kv_cache import kv_cache_bytes_per_token, recurrent_state_bytes
from modelplane.planning.parameters import count_parameters
from modelplane.planning.planner import SIZED_CHECKPOINTS, checkpoint_format, unsized_checkpoint
from modelplane.planning.stages import stage_weight_bytes
from modelplane.planning.weights import byte_format


def estimate_model(
    name: str,
    architecture: Mapping[str, Any] | None,
    quantization: Quantization,
    kv_cache_dtype: KvCacheDtype,
    source: str,
    resolver: ModelResolver = PACKAGED,
) -> ModelEstimate:
    """Size a model; quantization auto means the checkpoint's own format (bf16 unless pre-quantized)."""
    resolved = resolver.resolve(name, architecture, source)
    arch, entry = resolved.architecture, resolved.entry
    breakdown = count_parameters(arch)
    checkpoint = checkpoint_format(arch, entry)
    unsized = unsized_checkpoint(arch, entry)
    if quantization is Quantization.AUTO and unsized is not None:
        raise CatalogError(f"{source}: {name} is {unsized}; {SIZED_CHECKPOINTS}")
    weight_format = (checkpoint or Quantization.BF16) if quantization is Quantization.AUTO else quantization
    stored = breakdown if byte_format(weight_format) is byte_format(checkpoint or Quantization.BF16) else None
    weight_bytes = stage_weight_bytes(arch, breakdown, weight_format, range(arch.num_layers), 0, 1, stored=stored)
    return ModelEstimate(
        model=name,
        model_type=arch.model_type,
        parameters=breakdown.total,
        active_parameters=breakdown.active,
        weight_format=weight_format,
        weight_bytes=weight_bytes,
        kv_cache_bytes_per_token=kv_cache_bytes_per_token(arch, 1 if kv_cache_dtype is KvCacheDtype.FP8 else 2),
        layers=arch.num_layers,
        attention_heads=arch.num_attention_heads,
        kv_heads=arch.num_kv_heads,
        head_dim=arch.head_dim,
        max_position_embeddings=arch.max_position_embeddings,
        attention_layers=arch.attention_layers,
        recurrent_state_bytes_per_sequence=len(arch.recurrent_layers) * recurrent_state_bytes(arch.recurrent, 1)
        if arch.recurrent
        else 0,
    )
