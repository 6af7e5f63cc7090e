"""The compare-before-apply rule that keeps a quiet cluster free of API writes."""

import pytest
from kubernetes.client.exceptions import ApiException

from modelplane.kube.client import mapped_errors
from modelplane.kube.errors import InvalidChildError, KubeError, TransientKubeError
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


@pytest.mark.parametrize(("status", "kind"), [
    (401, TransientKubeError), (403, TransientKubeError), (409, TransientKubeError), (429, TransientKubeError),
    (503, TransientKubeError), (422, InvalidChildError), (404, KubeError), (400, KubeError),
])  # fmt: skip
def test_api_errors_are_sorted_into_retry_or_not(status: int, kind: type[KubeError]) -> None:
    with pytest.raises(KubeError) as raised, mapped_errors("get Service ns/chat"):
        raise ApiException(status=status, reason="Refused")
    assert type(raised.value) is kind
    assert raised.value.status == status
    assert str(raised.value).startswith(f"get Service ns/chat: {status}")
