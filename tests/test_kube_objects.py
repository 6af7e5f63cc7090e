"""The compare-before-apply rule that keeps a quiet cluster free of API writes."""

import pytest

from modelplane.kube.objects import is_subset


@pytest.mark.parametrize(
    ("desired", "live", "same"),
    [
        ({"a": 1}, {"a": 1, "server": "added"}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"env": [], "tolerations": [], "nodeSelector": {}}, {}, True),
        ({"env": [{"name": "A", "value": "x"}]}, {}, False),
        ({"limits": {"nvidia.com/gpu": "4"}}, {"limits": {"nvidia.com/gpu": "4"}}, True),
        ({"port": "8000"}, {"port": 8000}, True),
        ({"items": [1, 2]}, {"items": [1, 2, 3]}, False),
        ({"items": [{"a": 1}]}, {"items": [{"a": 1, "b": 2}]}, True),
        ({"flag": True}, {"flag": 1}, False),
    ],
)
def test_is_subset(desired: object, live: object, same: bool) -> None:
    assert is_subset(desired, live) is same
