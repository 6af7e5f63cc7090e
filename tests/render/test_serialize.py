"""What `modelplane render` writes reads back as the same objects, whatever the strings in them."""

import pytest
import yaml

from modelplane.render.serialize import dump_object, dump_stream


@pytest.mark.parametrize(
    "value",
    ["\x85", "line\u2028separator", "paragraph\u2029", "é\n\x85 ", "tab\there", "'quoted'", '"', "\ufeffbom", "日本"],
)
def test_strings_round_trip(value: str) -> None:
    obj = {"kind": "ConfigMap", "data": {value: value}, "list": [value]}
    assert yaml.safe_load(dump_object(obj)) == obj
    assert list(yaml.safe_load_all(dump_stream([obj, obj]))) == [obj, obj]


def test_readable_unicode_stays_readable() -> None:
    assert dump_object({"a": "日本"}) == "a: 日本\n"
