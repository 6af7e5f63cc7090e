"""Weight bytes per storage format.

16-bit formats store 2 bytes per parameter. fp8/int8 store linear weights in 1 byte plus fp32
scales (one per matrix, or one per block for block-quantized checkpoints such as DeepSeek-V3).
awq/gptq store linear weights in 4 bits plus, per group of `group_size` input weights, an fp16
scale and a packed 4-bit zero point (2.5 bytes). mxfp4 (gpt-oss) stores MoE expert weights in
4 bits plus one 8-bit shared exponent per 32 weights; everything else stays 16-bit. nvfp4 (ModelOpt and
compressed-tensors NVFP4) stores every linear weight in 4 bits (two E2M1 values per byte), one FP8 E4M3 scale
per 16 weights, and per matrix an fp32 global scale (`weight_scale_2`) and an fp32 activation scale
(`input_scale`); vllm/model_executor/layers/quantization/modelopt.py ModelOptNvFp4LinearMethod.create_weights
creates exactly these four tensors.
A weight format here is a `Quantization` other than `auto`, which the planner resolves before sizing.
Embeddings, the LM head, norms, biases and routers stay 16-bit in every format, as both runtimes
keep them (a router vLLM holds in fp32, MiniMax-M2's, takes 4 bytes).
"""

from modelplane.api.serving import Quantization
from modelplane.catalog.architecture import NVFP4_GROUP, Architecture
from modelplane.planning.parameters import LayerParameters

SIXTEEN_BIT_BYTES = 2
FP32_SCALE_BYTES = 4
DEFAULT_GROUP_SIZE = 128
GROUP_METADATA_HALF_BYTES = 5  # fp16 scale (4 half-bytes) + packed 4-bit zero point (1 half-byte)
MXFP4_BLOCK = 32
NVFP4_MATRIX_SCALES_BYTES = 8  # weight_scale_2 and input_scale, one fp32 each


SAME_BYTES = {Quantization.FP16: Quantization.BF16, Quantization.INT8: Quantization.FP8}


def byte_format(weight_format: Quantization) -> Quantization:
    """The format whose weights take exactly the bytes of this one's, so sizing can share its arithmetic."""
    return SAME_BYTES.get(weight_format, weight_format)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def layer_weight_bytes(layer: LayerParameters, weight_format: Quantization, arch: Architecture) -> int:
    """Bytes one decoder layer occupies in this format."""
    other = SIXTEEN_BIT_BYTES * layer.other + (FP32_SCALE_BYTES - SIXTEEN_BIT_BYTES) * layer.fp32_other
    if weight_format in (Quantization.BF16, Quantization.FP16):
        return SIXTEEN_BIT_BYTES * layer.linear + other
    if weight_format in (Quantization.FP8, Quantization.INT8):
        if arch.quant_block_elements:
            scales = FP32_SCALE_BYTES * _ceil_div(layer.linear, arch.quant_block_elements)
        else:
            scales = FP32_SCALE_BYTES * layer.linear_matrices
        return layer.linear + scales + other
    if weight_format is Quantization.NVFP4:
        scales = _ceil_div(layer.linear, NVFP4_GROUP) + NVFP4_MATRIX_SCALES_BYTES * layer.linear_matrices
        return _ceil_div(layer.linear, 2) + scales + other
    if weight_format is Quantization.MXFP4:
        dense = layer.linear - layer.expert_linear
        padded = layer.mxfp4_expert_linear
        experts = _ceil_div(padded, 2) + _ceil_div(padded, MXFP4_BLOCK)
        return SIXTEEN_BIT_BYTES * dense + experts + other
    group = arch.quant_group_size or DEFAULT_GROUP_SIZE
    metadata = _ceil_div(layer.linear * GROUP_METADATA_HALF_BYTES, 2 * group)
    return _ceil_div(layer.linear, 2) + metadata + other
