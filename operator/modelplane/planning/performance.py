"""Latency and throughput of one replica under a workload: a first-principles model you can check by hand.

Units are seconds, bytes and FLOPs (floats). The hardware of a replica (`Hardware`, built by `hardware`):

    B     = memory bandwidth × bandwidthFraction           (bytes/s one GPU achieves in a decode step)
    F     = dense TFLOPS of the compute format × computeFraction
    link  = interconnect GB/s × allReduce.bandwidthFraction, α = allReduce.latencySeconds (by interconnect)
    o     = stepOverheadSeconds (scheduler, sampling, launch) and r = requestOverheadSeconds (HTTP, tokenizer)

the fractions per runtime and GPU architecture, all in catalog/data/performance.yaml with their sources.
What one GPU of pipeline stage s does (`StageWork`): it reads W_s active weight bytes per step (the
routed experts only), X_s more bytes of experts a batch may touch besides, C_s FLOPs per token (2 × the
parameters the token multiplies), K_s(c) KV bytes a sequence of c tokens attends to, and it ends each of
its L_s layers with two all-reduces under TP. Attention costs `a` FLOPs per KV byte read (4 × query heads
× head dim per token of context, over the bytes that context holds).

A step decoding b sequences at mean context c with q prompt tokens folded in (chunked prefill) of prompts
of I tokens takes, summed over the stages a token passes in turn,

    memory_s  = (W_s + X_s × spare(b + q) + b × K_s(c)) / B
    compute_s = ((b + q) × C_s + a × (b × K_s(c) + q × K_s(I / 2))) / F
    comm_s    = 2 × L_s × (α + (b + q) × hidden × 2 bytes × 2 (t − 1) / t / link)     (TP t > 1; ring)
    step      = Σ_s (max(memory_s, compute_s) + comm_s) + (S − 1) × α + o

with spare(n) the share of the not-routed experts n tokens touch, choosing k of E experts each:
(E (1 − (1 − k/E)^n) − k) / (E − k). A prompt is prefilled in chunks of the batch budget (the runtime's
max_num_batched_tokens, less the decoding sequences), so

    TTFT = r + chunks × step(b = N − 1, q = I / chunks)

The steady state of N sequences (a closed loop of N users, as benchmark tools run it): while one user
decodes its O tokens, the other N − 1 users' prompts are prefilled, in min(O, (N − 1) × chunks) of its
O steps, so its mean inter-token latency is

    ITL = ((O − s) × step(N, 0) + s × step(N, (N − 1) × I / s)) / O,   s = min(O, (N − 1) × chunks)

and a request takes T = TTFT + (O − 1) × ITL. A request rate λ holds N = λ × T(N) sequences (Little's law),
solved by fixed-point iteration; the replica serves at most `max_sequences` at once (its KV cache and the
runtime's max_num_seqs), and `max_rate` is the largest N / T(N) whose ITL and TTFT meet the SLO.
"""

from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

BISECTIONS = 40
ACTIVATION_BYTES = 2
"""Activations cross the all-reduce in 16 bits."""


class StageWork(NamedTuple):
    """What one GPU of a pipeline stage does per step and per token (see the module docstring)."""

    weight_bytes: float
    spare_expert_bytes: float
    flops_per_token: float
    decode_kv_bytes: float
    """K_s(c): KV bytes a sequence reads at the mean decode context."""
    prefill_kv_bytes: float
    """K_s(I / 2): KV bytes a prompt token attends to on average while the prompt is prefilled."""
    layers: int
    attended_token_layers: float = 0.0
    """Σ over the stage's attention layers of the tokens a decoding sequence attends to there (windows capped)."""


class ReplicaWork(NamedTuple):
    """A replica's stages and what its tensor-parallel ranks exchange."""

    stages: tuple[StageWork, ...]
    tensor_parallel: int
    hidden_size: int
    attention_flops_per_kv_byte: float
    experts: int = 0
    experts_per_token: int = 0


class Hardware(NamedTuple):
    """Achieved rates of one GPU of the replica and the runtime's fixed costs (see `hardware`)."""

    bandwidth: float
    flops: float
    link_bandwidth: float
    link_latency: float
    step_overhead: float
    sequence_overhead: float
    """Per sequence in the step: scheduling, sampling and detokenizing on the host."""
    attention_latency: float
    """Seconds a decode attention kernel spends per token of context per layer: the floor at small batches,
    where too few heads per GPU keep its cores busy, whatever the bandwidth."""
    request_overhead: float
    batch_budget: int
    """max_num_batched_tokens: the tokens one step may schedule, prefill chunks included."""


class Workload(NamedTuple):
    """A typical request."""

    input_tokens: int
    output_tokens: int


class OperatingPoint(NamedTuple):
    """The replica serving `sequences` at once."""

    sequences: float
    time_to_first_token: float
    inter_token_latency: float
    requests_per_second: float

    @property
    def output_tokens_per_second(self) -> float:
        """Per sequence: one token per inter-token latency."""
        return 1.0 / self.inter_token_latency


@dataclass(frozen=True)
class Slo:
    """Latency targets in seconds; None: no target."""

    time_to_first_token: float | None = None
    inter_token_latency: float | None = None

    def met(self, point: OperatingPoint) -> bool:
        ttft, itl = self.time_to_first_token, self.inter_token_latency
        return (ttft is None or point.time_to_first_token <= ttft) and (itl is None or point.inter_token_latency <= itl)


def spare_experts(experts: int, per_token: int, tokens: float) -> float:
    """Share of the experts not routed to by one token that `tokens` tokens touch, uniform routing assumed."""
    if experts <= per_token or tokens <= 1:
        return 0.0
    touched: float = experts * (1 - (1 - per_token / experts) ** tokens)
    return max(0.0, (touched - per_token) / (experts - per_token))


def all_reduce_seconds(hardware: Hardware, tensor_parallel: int, tokens: float, hidden_size: int) -> float:
    """One ring all-reduce of `tokens` hidden states across `tensor_parallel` ranks."""
    if tensor_parallel == 1:
        return 0.0
    payload = tokens * hidden_size * ACTIVATION_BYTES * 2 * (tensor_parallel - 1) / tensor_parallel
    return hardware.link_latency + payload / hardware.link_bandwidth


def step_seconds(work: ReplicaWork, hardware: Hardware, batch: float, prefill_tokens: float = 0.0) -> float:
    """One engine step decoding `batch` sequences with `prefill_tokens` prompt tokens folded in."""
    tokens = batch + prefill_tokens
    spare = spare_experts(work.experts, work.experts_per_token, tokens)
    reduce = all_reduce_seconds(hardware, work.tensor_parallel, tokens, work.hidden_size)
    total = (len(work.stages) - 1) * hardware.link_latency + hardware.step_overhead + batch * hardware.sequence_overhead
    for stage in work.stages:
        memory = stage.weight_bytes + stage.spare_expert_bytes * spare + batch * stage.decode_kv_bytes
        attended = batch * stage.decode_kv_bytes + prefill_tokens * stage.prefill_kv_bytes
        compute = tokens * stage.flops_per_token + work.attention_flops_per_kv_byte * attended
        attention = stage.attended_token_layers * hardware.attention_latency if batch else 0.0
        slowest = max(memory / hardware.bandwidth, compute / hardware.flops, attention)
        total += slowest + 2 * stage.layers * reduce
    return total


def prefill_chunks(hardware: Hardware, workload: Workload, decoding: float) -> int:
    """Steps a prompt takes: the batch budget less the sequences decoding alongside it, at least one token."""
    room = max(1.0, hardware.batch_budget - decoding)
    return max(1, ceil(workload.input_tokens / room))


def time_to_first_token(
    work: ReplicaWork, hardware: Hardware, workload: Workload, sequences: float, *, cohort: bool = False
) -> float:
    """The request overhead and the prompt's chunks, each a step alongside the other sequences decoding.

    With `cohort`, the sequences arrive together (a benchmark's closed loop of fixed-length requests finishes and
    resends them in step): the N prompts are prefilled first come, first served in steps of the whole batch budget
    B, and the j-th one's first token comes with step ceil(j × I / B); the mean of those over j, each step
    carrying min(B, N × I) prompt tokens.
    """
    others = max(0.0, sequences - 1)
    if cohort and others:
        users, prompt, budget = int(sequences), workload.input_tokens, hardware.batch_budget
        steps = sum(ceil(j * prompt / budget) for j in range(1, users + 1)) / users
        per_step = min(float(budget), float(users * prompt))
        return hardware.request_overhead + steps * step_seconds(work, hardware, 0, per_step)
    chunks = prefill_chunks(hardware, workload, others)
    return hardware.request_overhead + chunks * step_seconds(work, hardware, others, workload.input_tokens / chunks)


def _prompt_share(workload: Workload, sequences: float, cohort: bool) -> float:
    """Prompts prefilled while one sequence decodes: every other user's (half of them, for a cohort)."""
    others = max(0.0, sequences - 1)
    return others / 2 if cohort else others


def inter_token_latency(
    work: ReplicaWork, hardware: Hardware, workload: Workload, sequences: float, *, cohort: bool = False
) -> float:
    """Mean time between a sequence's tokens while the other sequences' prompts are prefilled in its steps."""
    output = workload.output_tokens
    plain = step_seconds(work, hardware, sequences)
    others = _prompt_share(workload, sequences, cohort)
    if others == 0 or workload.input_tokens == 0:
        return plain
    with_prompts = min(float(output), others * prefill_chunks(hardware, workload, sequences))
    prompt_tokens = others * workload.input_tokens / with_prompts
    mixed = step_seconds(work, hardware, sequences, prompt_tokens)
    return ((output - with_prompts) * plain + with_prompts * mixed) / output


def median_inter_token_latency(
    work: ReplicaWork, hardware: Hardware, workload: Workload, sequences: float, *, cohort: bool = False
) -> float:
    """The median gap between a sequence's tokens: the plain step unless prompts share most of its steps.

    Benchmarks print the median beside the mean; the gaps take two values, so the median is the one most steps
    take.
    """
    others = _prompt_share(workload, sequences, cohort)
    with_prompts = min(float(workload.output_tokens), others * prefill_chunks(hardware, workload, sequences))
    if workload.input_tokens == 0 or with_prompts * 2 <= workload.output_tokens:
        return step_seconds(work, hardware, sequences)
    return step_seconds(work, hardware, sequences, others * workload.input_tokens / with_prompts)


def operating_point(
    work: ReplicaWork,
    hardware: Hardware,
    workload: Workload,
    sequences: float,
    limit: int | None = None,
    *,
    cohort: bool = False,
) -> OperatingPoint:
    """The steady state of `sequences` users, at most `limit` of them served at once (`cohort`: arriving together).

    Past the limit (the KV cache or max_num_seqs) the others wait in the queue: each of the `limit` running
    requests takes T, so requests complete at limit / T and a user waits sequences / (limit / T) − T for its turn
    before its prompt is prefilled.
    """
    sequences = max(1.0, sequences)
    running = sequences if limit is None else max(1.0, min(sequences, float(limit)))
    ttft = time_to_first_token(work, hardware, workload, running, cohort=cohort)
    itl = inter_token_latency(work, hardware, workload, running, cohort=cohort)
    request = ttft + (workload.output_tokens - 1) * itl
    waiting = (sequences / running - 1) * request
    return OperatingPoint(running, ttft + waiting, itl, running / request)


def at_rate(
    work: ReplicaWork, hardware: Hardware, workload: Workload, rate: float, max_sequences: int
) -> OperatingPoint | None:
    """The steady state a request rate settles to (N = rate × T(N)); None if it needs more than `max_sequences`.

    A replica serving N sequences completes N / T(N) requests a second, which grows with N: the rate is met at the
    N where the two agree, found by bisection to a thousandth of a sequence (at most `BISECTIONS` steps).
    """

    def served(sequences: float) -> OperatingPoint:
        return operating_point(work, hardware, workload, sequences)

    low, high = 1.0, float(max_sequences)
    if served(high).requests_per_second < rate:
        return None
    alone = served(low)
    if alone.requests_per_second >= rate:
        # Less than one request at a time: one sequence's latencies, busy a share rate × T(1) of the time.
        return alone._replace(sequences=rate / alone.requests_per_second, requests_per_second=rate)
    for _ in range(BISECTIONS):
        if high - low < 1e-3 * high:
            break
        middle = (low + high) / 2
        if served(middle).requests_per_second < rate:
            low = middle
        else:
            high = middle
    return served(high)


def max_rate(
    work: ReplicaWork, hardware: Hardware, workload: Workload, slo: Slo, max_sequences: int
) -> OperatingPoint | None:
    """The busiest steady state within the SLO and `max_sequences`: latency grows with N, so bisect on it."""
    if max_sequences < 1:
        return None
    best = operating_point(work, hardware, workload, 1)
    if not slo.met(best):
        return None
    low, high = 1, max_sequences
    while low < high:
        middle = (low + high + 1) // 2
        point = operating_point(work, hardware, workload, middle)
        if slo.met(point):
            low, best = middle, point
        else:
            high = middle - 1
    return best if best.sequences == low else operating_point(work, hardware, workload, low)


def replicas_for(rate: float, per_replica: float, at_least: int) -> int:
    """The fewest replicas that serve `rate` at `per_replica` requests/s each, never below `at_least`."""
    if rate <= 0:
        return at_least
    return max(at_least, ceil(rate / per_replica - 1e-9))
