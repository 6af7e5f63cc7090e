"""Every `record(Model, ...)` call names the model's fields in declaration order: JSON key order follows it."""

import ast
from pathlib import Path

import pytest

from modelplane.api import plan
from modelplane.planning.records import record

SOURCES = sorted((Path(__file__).resolve().parents[2] / "operator" / "modelplane").rglob("*.py"))


def record_calls() -> list[tuple[str, int, str, list[str]]]:
    calls = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "record"
                    and node.args and isinstance(node.args[0], ast.Name)):  # fmt: skip
                calls.append((path.name, node.lineno, node.args[0].id, [kw.arg or "**" for kw in node.keywords]))
    return calls


def test_the_planner_builds_records() -> None:
    assert {model for _, _, model, _ in record_calls()} >= {"Candidate", "Reason", "MemoryBreakdown", "Estimates"}


@pytest.mark.parametrize(("where", "line", "model", "keywords"), record_calls())
def test_record_calls_name_every_field_in_declaration_order(where: str, line: int, model: str,
                                                            keywords: list[str]) -> None:  # fmt: skip
    assert keywords == list(getattr(plan, model).model_fields), f"{where}:{line}"


def test_a_missing_field_is_refused() -> None:
    with pytest.raises(TypeError, match="Reason takes its fields"):
        record(plan.Reason, code=plan.ReasonCode.NO_POOLS)
