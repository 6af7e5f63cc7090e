"""Fuzzing the CLI contract: any file gives exit 0, 1 or 2, never a traceback, and bad input is one line.

Random text is almost never a Kubernetes object, so the structured tests start from real documents (the
examples, the catalog's config.json files) and break them the ways people do: wrong types, missing or
extra fields, huge and negative numbers, unicode and control characters, lists where scalars belong.
"""

import copy
import json
import traceback
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from modelplane.catalog.models import model_catalog
from modelplane.cli import app
from tests.cli.test_cli import DEPLOYMENT, EXAMPLES, error_line, write

runner = CliRunner()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

EXAMPLE_FILES = sorted([*(EXAMPLES / "deployments").glob("*.yaml"), *(EXAMPLES / "pools").glob("*.yaml")])
EXAMPLE_DOCUMENTS = [doc for file in EXAMPLE_FILES for doc in yaml.safe_load_all(file.read_text()) if doc]
CONFIGS = [entry.config for _, entry in sorted(model_catalog().items())]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(key) for key in value} | {key for child in value.values() for key in _keys(child)}
    if isinstance(value, list):
        return {key for child in value for key in _keys(child)}
    return set()


# Real field names at the wrong level catch more than random ones, which only ever hit "unknown field".
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(sorted(_keys([*EXAMPLE_DOCUMENTS, *CONFIGS]))))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64 + 1, 10**30, -(10**30), 10**400]),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "8", "80Gi", "1e400", "-1", "nan", "\x1b[2J", "a\nb", "\u202eevil", "\x00"]),
)
VALUES = st.recursive(
    SCALARS, lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3), max_leaves=6
)


def _containers(value: Any) -> list[dict[Any, Any] | list[Any]]:
    """Every mapping and list in a document, the document first."""
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return []
    return [value, *(inner for child in children for inner in _containers(child))]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A real document with up to three edits; with none it is valid, so the planner runs too."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 3))):
        container = draw(st.sampled_from(_containers(document)))
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        operation = draw(st.sampled_from(["replace", "delete", "wrap", "add"] if keys else ["add"]))
        if operation == "add" and isinstance(container, dict):
            container[draw(KEYS)] = draw(VALUES)
        elif operation == "add" and isinstance(container, list):
            container.append(draw(VALUES))
        else:
            key = draw(st.sampled_from(keys))
            if operation == "delete":
                del container[key]
            elif operation == "wrap":
                container[key] = [container[key]]
            else:
                container[key] = draw(VALUES)
    return document


BOMS = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"]
BAD_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xae", b"\x1b[31m", b"\r", b"\t"]
SEED_BYTES = [file.read_bytes() for file in EXAMPLE_FILES] + [json.dumps(config).encode() for config in CONFIGS]


@st.composite
def raw_files(draw: st.DrawFn) -> bytes:
    """Random bytes, or a real file with bytes spliced in (invalid UTF-8, NUL, control characters), maybe a BOM."""
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        seed = draw(st.sampled_from(SEED_BYTES))
        at = draw(st.integers(0, len(seed)))
        inserted = draw(st.one_of(st.sampled_from(BAD_BYTES), st.binary(min_size=1, max_size=4)))
        body = seed[:at] + inserted + seed[at:]
    return draw(st.sampled_from(BOMS)) + body


def assert_contract(result: Result) -> None:
    """Exit 0, 1 or 2 without a traceback; bad input is exactly one printable line on stderr."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(result.exception)))
    assert result.exit_code in (0, 1, 2)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        error_line(result)


@FUZZ
@given(data=raw_files(), command=st.sampled_from(["plan", "pools", "config", "stdin"]))
def test_any_bytes_keep_the_contract(tmp_path: Path, data: bytes, command: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    args = {
        "plan": ["plan", str(path), "-o", "json"],
        "pools": ["plan", str(DEPLOYMENT), "--pools", str(path), "-o", "json"],
        "config": ["estimate", "--model-config", str(path), "-o", "json"],
        "stdin": ["plan", "-", "-o", "json"],
    }[command]
    assert_contract(runner.invoke(app, args, input=data))


@FUZZ
@given(
    document=mutated(EXAMPLE_DOCUMENTS),
    others=st.lists(st.sampled_from(EXAMPLE_DOCUMENTS), max_size=2),
    command=st.sampled_from([["plan", "-o", "json"], ["render", "-o", "-"]]),
)
def test_mutated_objects_keep_the_contract(
    tmp_path: Path, document: Any, others: list[Any], command: list[str]
) -> None:
    path = write(tmp_path, yaml.safe_dump_all([*others, document], allow_unicode=True), "fuzz.yaml")
    assert_contract(runner.invoke(app, [command[0], str(path), *command[1:]]))


@FUZZ
@given(config=mutated(CONFIGS))
def test_mutated_config_json_keeps_the_contract(tmp_path: Path, config: dict[str, Any]) -> None:
    path = write(tmp_path, json.dumps(config), "config.json")
    assert_contract(runner.invoke(app, ["estimate", "--model-config", str(path), "-o", "json"]))
