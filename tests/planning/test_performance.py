"""Each term of the performance model (modelplane.planning.performance) against arithmetic done by hand.

The hardware and the replica are round numbers chosen here, not the catalog's, so every expected value below is
worked out in the comments from the module docstring's formulas alone.
"""

import pytest

from modelplane.planning.performance import (
    Hardware,
    ReplicaWork,
    Slo,
    StageWork,
    Workload,
    all_reduce_seconds,
    at_rate,
    inter_token_latency,
    max_rate,
    operating_point,
    replicas_for,
    spare_experts,
    step_seconds,
    time_to_first_token,
)

# 1 TB/s, 100 TFLOP/s, a 100 GB/s link with 10 µs latency, 1 ms per step, 10 ms per request, 2048-token budget;
# no per-sequence overhead or attention floor unless a test sets them.
GPU = Hardware(bandwidth=1e12, flops=1e14, link_bandwidth=1e11, link_latency=1e-5, step_overhead=1e-3,
               sequence_overhead=0.0, attention_latency=0.0, request_overhead=0.01, batch_budget=2048)  # fmt: skip
# 10 GB of weights read per step, 10 G parameters (2e10 FLOPs a token), 100 MB of KV per sequence at the decode
# context and 50 MB per prompt token at half the prompt, 32 layers; 4 FLOPs per KV byte.
STAGE = StageWork(weight_bytes=1e10, spare_expert_bytes=0.0, flops_per_token=2e10, decode_kv_bytes=1e8,
                  prefill_kv_bytes=5e7, layers=32, attended_token_layers=80_000)  # fmt: skip
REPLICA = ReplicaWork(stages=(STAGE,), tensor_parallel=1, hidden_size=4096, attention_flops_per_kv_byte=4.0)
REQUEST = Workload(input_tokens=1000, output_tokens=100)


def test_a_small_batch_step_is_memory_bound() -> None:
    # memory (1e10 + 1e8) / 1e12 = 0.0101 s; compute (2e10 + 4 × 1e8) / 1e14 = 0.000204 s; + 1 ms overhead
    assert step_seconds(REPLICA, GPU, 1) == pytest.approx(0.0111)
    # memory (1e10 + 8 × 1e8) / 1e12 = 0.0108 s beats compute (8 × 2e10 + 4 × 8e8) / 1e14 = 0.001632 s
    assert step_seconds(REPLICA, GPU, 8) == pytest.approx(0.0118)


def test_a_step_with_a_prompt_chunk_is_compute_bound() -> None:
    # 1001 tokens: compute (1001 × 2e10 + 4 × (1e8 + 1000 × 5e7)) / 1e14 = 0.202204 s > memory 0.0101 s
    assert step_seconds(REPLICA, GPU, 1, 1000) == pytest.approx(0.203204)


def test_a_ring_all_reduce_is_latency_plus_bytes_over_the_link() -> None:
    # 8 tokens × 4096 × 2 bytes × 2 × (2 − 1) / 2 = 65 536 bytes over 1e11 B/s, + 10 µs
    assert all_reduce_seconds(GPU, 2, 8, 4096) == pytest.approx(1e-5 + 65536 / 1e11)
    # TP 8: 8 × 4096 × 2 × 2 × 7 / 8 = 114 688 bytes
    assert all_reduce_seconds(GPU, 8, 8, 4096) == pytest.approx(1e-5 + 114688 / 1e11)
    assert all_reduce_seconds(GPU, 1, 8, 4096) == 0


def test_tensor_parallel_ranks_pay_two_all_reduces_per_layer() -> None:
    half = STAGE._replace(weight_bytes=5e9, flops_per_token=1e10, decode_kv_bytes=5e7)
    tp2 = REPLICA._replace(stages=(half,), tensor_parallel=2)
    # memory (5e9 + 5e7) / 1e12 = 0.00505 s; 2 × 32 all-reduces of 1 token: 1e-5 + 8192 / 1e11 each; + 1 ms
    assert step_seconds(tp2, GPU, 1) == pytest.approx(0.00505 + 64 * (1e-5 + 8192 / 1e11) + 1e-3)


def test_pipeline_stages_add_up_and_pay_a_hop_each() -> None:
    half = STAGE._replace(weight_bytes=5e9, decode_kv_bytes=5e7, layers=16)
    pp2 = REPLICA._replace(stages=(half, half))
    # two stages of (5e9 + 5e7) / 1e12 = 0.00505 s, one 10 µs hop, 1 ms overhead
    assert step_seconds(pp2, GPU, 1) == pytest.approx(2 * 0.00505 + 1e-5 + 1e-3)


def test_experts_a_batch_touches() -> None:
    # 2 of 8 experts per token: one token touches none of the 6 spare experts; two touch 8 × (1 − 0.75²) = 3.5
    # experts, 1.5 of the 6 spare ones; very many tokens touch them all.
    assert spare_experts(8, 2, 1) == 0
    assert spare_experts(8, 2, 2) == pytest.approx(0.25)
    assert spare_experts(8, 2, 10_000) == pytest.approx(1.0)
    moe = REPLICA._replace(stages=(STAGE._replace(spare_expert_bytes=6e9),), experts=8, experts_per_token=2)
    # memory (1e10 + 0.25 × 6e9 + 2 × 1e8) / 1e12 = 0.0117 s, + 1 ms
    assert step_seconds(moe, GPU, 2) == pytest.approx(0.0127)


def test_time_to_first_token_alone_and_beside_decoding_sequences() -> None:
    # Alone: one chunk (1000 ≤ 2048); compute (1000 × 2e10 + 4 × 1000 × 5e7) / 1e14 = 0.202 s, + 1 ms, + 10 ms
    assert time_to_first_token(REPLICA, GPU, REQUEST, 1) == pytest.approx(0.213)
    # A 3000-token prompt takes two chunks of 1500: (1500 × 2e10 + 4 × 1500 × 5e7) / 1e14 + 1 ms = 0.304 s each
    assert time_to_first_token(REPLICA, GPU, Workload(3000, 100), 1) == pytest.approx(0.01 + 2 * 0.304)


def test_inter_token_latency_grows_with_the_other_prompts() -> None:
    # One sequence alone never shares its steps with a prompt: 0.0111 s.
    assert inter_token_latency(REPLICA, GPU, REQUEST, 1) == pytest.approx(0.0111)
    # Four: plain step (1e10 + 4e8) / 1e12 + 1 ms = 0.0114 s; the 3 others' prompts fill 3 of the 100 steps with
    # 1000 prompt tokens each: (1004 × 2e10 + 4 × (4e8 + 1000 × 5e7)) / 1e14 + 1 ms = 0.203816 s.
    assert inter_token_latency(REPLICA, GPU, REQUEST, 4) == pytest.approx((97 * 0.0114 + 3 * 0.203816) / 100)
    # Without prompts the same four sequences decode at the plain step.
    assert inter_token_latency(REPLICA, GPU, Workload(0, 100), 4) == pytest.approx(0.0114)


def test_a_request_rate_settles_where_littles_law_holds() -> None:
    point = at_rate(REPLICA, GPU, REQUEST, 2.0, 256)
    assert point is not None
    one_request = point.time_to_first_token + 99 * point.inter_token_latency
    assert point.sequences == pytest.approx(2.0 * one_request, rel=1e-3)
    assert point.requests_per_second == pytest.approx(2.0, rel=1e-3)
    # More than 256 sequences would be needed at 1000 requests/s: the replica cannot settle.
    assert at_rate(REPLICA, GPU, REQUEST, 1000.0, 256) is None


def test_the_busiest_point_within_the_slo_is_the_last_one_that_meets_it() -> None:
    slo = Slo(inter_token_latency=0.03)
    best = max_rate(REPLICA, GPU, REQUEST, slo, 256)
    assert best is not None
    assert best.inter_token_latency <= 0.03
    assert operating_point(REPLICA, GPU, REQUEST, best.sequences + 1).inter_token_latency > 0.03
    # 11.1 ms at one sequence: a 10 ms target is out of reach.
    assert max_rate(REPLICA, GPU, REQUEST, Slo(inter_token_latency=0.01), 256) is None
    # Without a target the busiest point is the largest batch allowed.
    assert max_rate(REPLICA, GPU, REQUEST, Slo(), 16) == operating_point(REPLICA, GPU, REQUEST, 16)


@pytest.mark.parametrize(("rate", "per_replica", "minimum", "replicas"),
                         [(20, 7, 1, 3), (20, 10, 1, 2), (20, 10, 4, 4), (0, 10, 2, 2)])  # fmt: skip
def test_replicas_for_a_rate(rate: float, per_replica: float, minimum: int, replicas: int) -> None:
    assert replicas_for(rate, per_replica, minimum) == replicas


def test_each_sequence_adds_its_host_overhead() -> None:
    # 0.0118 s at 8 sequences (above), + 8 × 10 µs
    assert step_seconds(REPLICA, GPU._replace(sequence_overhead=1e-5), 8) == pytest.approx(0.01188)


def test_long_contexts_hit_the_attention_kernels_floor() -> None:
    # 80 000 token-layers × 0.1 µs = 8 ms: below the 10.1 ms memory time, so no change
    assert step_seconds(REPLICA, GPU._replace(attention_latency=1e-7), 1) == pytest.approx(0.0111)
    # × 1 µs = 80 ms: the floor binds, + 1 ms overhead
    assert step_seconds(REPLICA, GPU._replace(attention_latency=1e-6), 1) == pytest.approx(0.081)


def test_a_cohort_waits_for_the_prompts_ahead_of_it() -> None:
    # Four users arriving together: prompts of 1000 tokens served first come, first served in 2048-token steps; the
    # j-th first token comes with step ceil(j × 1000 / 2048) = 1, 1, 2, 2: 1.5 steps on average, each of 2048
    # prompt tokens: (2048 × 2e10 + 4 × 2048 × 5e7) / 1e14 + 1 ms = 0.414696 s; + 10 ms.
    assert time_to_first_token(REPLICA, GPU, REQUEST, 4, cohort=True) == pytest.approx(0.01 + 1.5 * 0.414696)
    # Two users: both prompts (2000 tokens) fit one step: (2000 × 2e10 + 4 × 2000 × 5e7) / 1e14 + 1 ms = 0.405 s.
    assert time_to_first_token(REPLICA, GPU, REQUEST, 2, cohort=True) == pytest.approx(0.01 + 0.405)
    # Staggered, a prompt shares its one step with the other three decoding: compute of 1003 tokens.
    staggered = 0.01 + (1003 * 2e10 + 4 * (3 * 1e8 + 1000 * 5e7)) / 1e14 + 1e-3
    assert time_to_first_token(REPLICA, GPU, REQUEST, 4) == pytest.approx(staggered)


def test_users_past_the_limit_queue_for_a_turn() -> None:
    running = operating_point(REPLICA, GPU, REQUEST, 4)
    queued = operating_point(REPLICA, GPU, REQUEST, 8, limit=4)
    request = running.time_to_first_token + 99 * running.inter_token_latency
    # Twice as many users as places: each waits one request's time before its own starts.
    assert queued.sequences == 4
    assert queued.inter_token_latency == running.inter_token_latency
    assert queued.time_to_first_token == pytest.approx(running.time_to_first_token + request)
    assert queued.requests_per_second == pytest.approx(4 / request)
