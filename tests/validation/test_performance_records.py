"""The performance model against published serving measurements (performance.py), on the held-out records.

The issue's targets are inter-token latency within ±20 % for 80 % of held-out records and time to first token
within ±35 % for 70 %. The floors below are what the model reaches today (BENCHMARKS.md shows every record), so a
change that makes it worse fails; the targets themselves are strict xfails until it reaches them.
"""

from typing import Any

import pytest

from tests.validation.performance import Prediction, is_calibration, predictions, records, summary

REQUIRED = ("id", "source", "sourceKind", "quote", "model", "gpu", "tensorParallel", "runtime", "inputTokens",
            "outputTokens", "measured")  # fmt: skip
ITL_FLOOR = 0.72
TTFT_FLOOR = 0.68


@pytest.fixture(scope="module")
def held_out() -> dict[str, Any]:
    return summary(predictions(), calibration=False)


def test_every_record_names_its_source_and_quotes_it() -> None:
    ids = [record["id"] for record in records()]
    assert len(ids) == len(set(ids))
    for record in records():
        missing = [key for key in REQUIRED if record.get(key) in (None, "")]
        assert not missing, (record["id"], missing)
        assert record["source"].startswith("https://"), record["id"]
        assert record.get("concurrency") or record.get("requestRate") or record["measured"].get("outputTokensPerSecond")


def test_the_split_is_fixed_by_the_ids_and_keeps_a_third_for_calibration() -> None:
    ids = [record["id"] for record in records()]
    share = sum(map(is_calibration, ids)) / len(ids)
    assert 0.28 < share < 0.39
    assert [is_calibration(i) for i in ids] == [is_calibration(i) for i in ids]


def test_held_out_records_cover_the_hardware_the_issue_asks_for() -> None:
    by_id = {record["id"]: record for record in records()}
    compared: list[Prediction] = [p for p in predictions() if p.skipped is None and not p.calibration]
    gpus = {by_id[p.record]["gpu"] for p in compared}
    assert len({gpu for gpu in gpus if not gpu.startswith("MI")}) >= 2
    assert {by_id[p.record]["tensorParallel"] for p in compared} >= {1, 2, 4, 8}
    assert len(compared) >= 40


def test_inter_token_latency_stays_at_its_floor(held_out: dict[str, Any]) -> None:
    within, count, _ = held_out["itl"]
    assert within / count >= ITL_FLOOR


def test_time_to_first_token_stays_at_its_floor(held_out: dict[str, Any]) -> None:
    within, count, _ = held_out["ttft"]
    assert within / count >= TTFT_FLOOR


@pytest.mark.xfail(strict=True, reason="held out: ITL within ±20 % for 391/536 (73 %), target 80 %")
def test_inter_token_latency_within_twenty_percent_for_four_in_five(held_out: dict[str, Any]) -> None:
    within, count, _ = held_out["itl"]
    assert within / count >= 0.80


@pytest.mark.xfail(strict=True, reason="held out: TTFT within ±35 % for 370/530 (69.8 %), target 70 %")
def test_time_to_first_token_within_thirty_five_percent_for_seven_in_ten(held_out: dict[str, Any]) -> None:
    within, count, _ = held_out["ttft"]
    assert within / count >= 0.70
