"""What a deployment is served with: runtime, weight format and KV cache dtype, shared by the spec (what is asked
for) and the plan (what was chosen), so both carry the same enums and print the same strings."""

from enum import StrEnum


class Quantization(StrEnum):
    """Weight precision: auto lets the planner choose; awq, gptq, mxfp4 and nvfp4 name a 4-bit checkpoint."""

    # The one enum of weight formats, for what a spec asks for and what a plan serves: a plan never holds auto,
    # which the planner resolves to a format before sizing.
    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    AWQ = "awq"
    GPTQ = "gptq"
    MXFP4 = "mxfp4"
    NVFP4 = "nvfp4"


class KvCacheDtype(StrEnum):
    AUTO = "auto"
    FP8 = "fp8"


class Runtime(StrEnum):
    VLLM = "vllm"
    TENSORRT_LLM = "tensorrt-llm"
