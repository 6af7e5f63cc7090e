"""Plain YAML scalars resolve as kubectl (go-yaml v2) resolves them; each row was checked against the API server
(tests/e2e/test_admission.py compares the two live)."""

import json
import math
from typing import Any

import pytest
import yaml

from modelplane.api.kubectl_yaml import KubectlLoader


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("4096", 4096), ("4096.0", 4096), ("4.096e3", 4096), ("4096e0", 4096), ("4_096.0", 4096), ("1_024", 1024),
        ("+4096", 4096), ("0x1000", 4096), ("0x_1000", 4096), ("0o10000", 4096), ("010000", 4096),
        ("0b1000000000000", 4096), ("08", 8), ("-0b11", -3), ("4096.5", 4096.5), (".5", 0.5),
        ("1e30", 1e30), ("1e400", "1e400"), ("1" + "0" * 30, 1e30), ("1" + "0" * 5000, "1" + "0" * 5000),
        (str(2**63 - 1), 2**63 - 1), (str(2**64 - 1), 2**64 - 1), (str(2**64), 2**64),
        ("12:30", "12:30"), ("2020-01-01", "2020-01-01"), ("1.2.3", "1.2.3"), ("0x", "0x"), ("NaN", "NaN"),
        ("y", True), ("Y", True), ("yes", True), ("On", True), ("n", False), ("OFF", False), ("tRUE", "tRUE"),
        ("~", None), ("null", None), ("", None), ("'4096'", "4096"), ('"y"', "y"),
        ("!!str 4096", "4096"), ("!!int 0o17", 15), ("!!float 2", 2),
    ],
)  # fmt: skip
def test_plain_scalars_resolve_as_kubectl_resolves_them(literal: str, value: Any) -> None:
    parsed = yaml.load(f"a: {literal}", Loader=KubectlLoader)["a"]
    assert parsed == value
    assert type(parsed) is type(value)


def test_special_floats() -> None:
    parsed = yaml.load("[.inf, -.Inf, +.INF, .nan]", Loader=KubectlLoader)
    assert parsed[:3] == [math.inf, -math.inf, math.inf]
    assert math.isnan(parsed[3])


@pytest.mark.parametrize("literal", ["!!int x", "!!int 1:30", "!!bool maybe", "!!float x", "!!timestamp 2024-13-01"])
def test_a_tag_that_cannot_build_its_value_is_a_yaml_error_with_a_line(literal: str) -> None:
    with pytest.raises(yaml.constructor.ConstructorError) as caught:
        yaml.load(f"a: {literal}", Loader=KubectlLoader)
    assert caught.value.problem_mark is not None
    assert caught.value.problem_mark.line == 0


def test_json_surrogate_pair_escapes_are_one_character() -> None:
    """Python's json.dumps writes an emoji as two escapes; PyYAML decoded them as two lone surrogates, which
    failed as a traceback when printed."""
    text = json.dumps({"a": "\U0001f600 \ufffd", "k\U00010000": 1})
    assert yaml.load(text, Loader=KubectlLoader) == {"a": "\U0001f600 \ufffd", "k\U00010000": 1}
    with pytest.raises(yaml.constructor.ConstructorError, match="a lone UTF-16 surrogate escape is not text"):
        yaml.load('a: "\\ud800"', Loader=KubectlLoader)
