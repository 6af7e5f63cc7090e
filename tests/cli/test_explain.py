"""`modelplane explain` prints what the live status says; here fed by the operator's own decision."""

from typing import Any

from rich.console import Console

from modelplane.cli.explain import print_explanation
from modelplane.operator.conditions import merge_conditions
from modelplane.operator.decide import decide
from modelplane.planning.service import offers_for
from tests.operator.test_decide import POOLS, body


def test_explanation_shows_plan_memory_and_why_not() -> None:
    decision = decide(body(), lambda: offers_for(POOLS))
    conditions = merge_conditions([], decision.conditions, 1, "t")
    md = body(status={**decision.status.written_fields(), "conditions": conditions})
    console = Console(record=True, width=160)
    print_explanation(md, console)
    text = console.export_text()
    assert "pool cheap (L4-24GB), TP1×PP1" in text
    assert "weights" in text
    assert "Planned" in text
    assert "why not" in text or not decision.status.written_fields()["rejected"]


def test_explanation_shows_where_replicas_run_and_how_many_wait() -> None:
    spec: dict[str, Any] = {"replicas": 40, "autoscaling": {"minReplicas": 1, "maxReplicas": 40}}
    decision = decide(body(**spec), lambda: offers_for(POOLS))
    conditions = merge_conditions([], decision.conditions, 1, "t")
    md = body(status={**decision.status.written_fields(), "conditions": conditions}, **spec)
    console = Console(record=True, width=160)
    print_explanation(md, console)
    text = console.export_text()
    rows = [line.split() for line in text.splitlines()]
    assert ["cheap", "L4-24GB", "cloud", "1×1", "8", "Deployment/chat"] in rows
    assert ["big", "H100-SXM-80GB", "cloud", "1×1", "16", "Deployment/chat-big"] in rows
    assert "waiting: 16 replica(s)" in text
