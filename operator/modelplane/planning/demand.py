"""What a deployment asks of each replica: its typical request, the rate and the latency targets."""

from typing import NamedTuple

from modelplane.api.model_deployment import ModelDeploymentSpec, duration_seconds
from modelplane.planning.performance import Slo, Workload


class Demand(NamedTuple):
    workload: Workload
    rate: float | None
    """Requests/s of all replicas together; None: maxConcurrency sequences at once per replica."""
    slo: Slo

    @property
    def decode_context(self) -> int:
        """The mean context a decoding sequence attends to: its prompt and half its output."""
        return self.workload.input_tokens + self.workload.output_tokens // 2

    @property
    def prefill_context(self) -> int:
        """The mean context a prompt token attends to while its prompt is prefilled."""
        return max(1, self.workload.input_tokens // 2)


def demand(spec: ModelDeploymentSpec) -> Demand:
    """spec.workload and spec.slo; without a workload a request fills maxModelLen, half prompt, half output."""
    if spec.workload is None:
        half = max(1, spec.max_model_len // 2)
        return Demand(Workload(half, max(1, spec.max_model_len - half)), None, Slo())
    slo = spec.slo
    return Demand(
        Workload(spec.workload.input_tokens, spec.workload.output_tokens),
        spec.workload.rate,
        Slo(
            duration_seconds(slo.time_to_first_token) if slo and slo.time_to_first_token else None,
            duration_seconds(slo.inter_token_latency) if slo and slo.inter_token_latency else None,
        ),
    )
