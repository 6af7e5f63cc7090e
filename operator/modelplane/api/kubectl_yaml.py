"""YAML read as kubectl reads it, so the CLI sees the same values the API server would.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which resolves plain scalars as go-yaml v2 does, not as
PyYAML's YAML 1.1 tables: `y`/`n` are booleans, `0o17` and `1e3` are numbers, `12:30` and dates stay strings,
and a whole float (`4096.0`) reaches the API server as the integer 4096 (Go writes it without a fraction).
The rules below follow go-yaml v2's resolve.go (`resolve`, `resolveMap`, `yamlStyleFloat`).
"""

import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
TRUE = frozenset({"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
FALSE = frozenset({"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"})
SPECIAL_FLOATS = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
"""strconv.ParseInt(s, 0, 64)'s syntax: a sign, then hex, octal (0o or a leading 0), binary or decimal."""
YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
MAX_GO_INT_CHARACTERS = 67
"""The longest text of a 64-bit integer (a sign, 0b and 64 binary digits): longer is no integer to go-yaml."""
SURROGATE = re.compile("[\ud800-\udfff]")
INT64 = range(-(2**63), 2**63)
UINT64 = range(2**64)
WHOLE_FLOAT_LIMIT = 1e21
"""Go's JSON encoder writes a float below 1e21 without exponent, so a whole one arrives as an integer."""
MAX_INTEGER_CHARACTERS = 1000
"""An explicitly tagged `!!int` longer than this is refused: Python will not convert more than 4300 decimal
digits, and fails with a traceback instead of a line number; Kubernetes integers have at most 19."""


def go_int(text: str) -> int | None:
    """The integer go-yaml v2 reads from a plain scalar (underscores removed), or None when it reads no integer."""
    plain = text.replace("_", "")
    if len(plain) > MAX_GO_INT_CHARACTERS or GO_INT.fullmatch(plain) is None:
        return None
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    value = sign * (int(digits, 8) if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit() else int(digits, 0))
    if value in INT64 or (value in UINT64 and plain[0] != "+"):
        return value
    return None


def go_float(text: str) -> float | None:
    """The float go-yaml v2 reads from a plain scalar, or None (out of range, as strconv.ParseFloat says, too)."""
    if text in SPECIAL_FLOATS:
        return SPECIAL_FLOATS[text]
    plain = text if text.startswith(".") else text.replace("_", "")
    if YAML_STYLE_FLOAT.fullmatch(plain) is None:
        return None
    value = float(plain)
    return None if math.isinf(value) else value


def resolve_plain(text: str) -> str:
    """The tag go-yaml v2 gives a plain (unquoted, untagged) scalar."""
    if text in NULLS:
        return NULL_TAG
    if text in TRUE or text in FALSE:
        return BOOL_TAG
    if text == "<<":
        return MERGE_TAG
    if text[0] in "+-0123456789" and go_int(text) is not None:
        return INT_TAG
    if text[0] in "+-.0123456789" and go_float(text) is not None:
        return FLOAT_TAG
    return STR_TAG


class KubectlLoader(yaml.SafeLoader):
    """yaml.SafeLoader with go-yaml v2's scalar resolution. A value an explicit tag cannot build (!!int x,
    !!timestamp 2024-13-01) is reported at its line instead of raising ValueError."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return resolve_plain(value)
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_scalar(self, node: Any) -> Any:
        """Text with JSON's surrogate-pair escapes joined ("\\ud83d\\ude00" is one emoji, as Go decodes it); a
        lone surrogate is no character at all and is refused here rather than failing when printed."""
        value = super().construct_scalar(node)
        if isinstance(value, str) and SURROGATE.search(value):
            joined = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            if joined.count("\ufffd") > value.count("\ufffd"):
                raise ConstructorError(None, None, "a lone UTF-16 surrogate escape is not text", node.start_mark)
            value = joined
        return value

    def construct_yaml_bool(self, node: Any) -> bool:
        value = self.construct_scalar(node)
        if value not in TRUE and value not in FALSE:
            raise ConstructorError(None, None, f"not a valid bool: {value!r}", node.start_mark)
        return value in TRUE

    def construct_yaml_int(self, node: Any) -> int:
        value = str(self.construct_scalar(node))
        if len(value) > MAX_INTEGER_CHARACTERS:
            raise ConstructorError(None, None, f"an integer of {len(value):,} characters; Kubernetes integers have"
                                   " at most 19 digits", node.start_mark)  # fmt: skip
        number = go_int(value)
        if number is None:
            raise ConstructorError(None, None, f"not a valid int: {value!r}", node.start_mark)
        return number

    def construct_yaml_float(self, node: Any) -> float | int:
        value = str(self.construct_scalar(node))
        number = go_float(value)
        if number is None:
            raise ConstructorError(None, None, f"not a valid float: {value!r}", node.start_mark)
        return int(number) if number.is_integer() and abs(number) < WHOLE_FLOAT_LIMIT else number

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as error:
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise ConstructorError(None, None, f"not a valid {kind}: {error}", node.start_mark) from None


KubectlLoader.add_constructor(BOOL_TAG, KubectlLoader.construct_yaml_bool)
KubectlLoader.add_constructor(INT_TAG, KubectlLoader.construct_yaml_int)
KubectlLoader.add_constructor(FLOAT_TAG, KubectlLoader.construct_yaml_float)
