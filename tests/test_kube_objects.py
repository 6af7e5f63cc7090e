"""The compare-before-apply rule that keeps a quiet cluster free of API writes."""

import pytest
from kubernetes.client.exceptions import ApiException

from modelplane.kube.client import mapped_errors
from modelplane.kube.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    KubeError,
    ThrottledError,
    TransientKubeError,
    UnreachableError,
)
from modelplane.kube.objects import REPLACE_MANAGER, added_fields, is_subset, merge_patch


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
        # The API server stores a float that is a whole number as an integer (status maxConcurrency 288.0).
        ({"maxConcurrency": 288.0}, {"maxConcurrency": 288}, True),
        ({"maxConcurrency": 288.5}, {"maxConcurrency": 288}, False),
        ({"count": 1}, {"count": 1.0}, True),
    ],
)
def test_is_subset(desired: object, live: object, same: bool) -> None:
    assert is_subset(desired, live) is same


@pytest.mark.parametrize(("status", "kind", "transient"), [
    (401, ForbiddenError, True), (403, ForbiddenError, True), (409, ConflictError, True),
    (429, ThrottledError, True), (500, UnreachableError, True), (503, UnreachableError, True),
    (422, InvalidError, False), (400, InvalidError, False), (404, GoneError, False), (410, GoneError, False),
    (418, KubeError, False),
])  # fmt: skip
def test_api_errors_are_sorted_by_meaning(status: int, kind: type[KubeError], transient: bool) -> None:
    with pytest.raises(KubeError) as raised, mapped_errors("get Service ns/chat"):
        raise ApiException(status=status, reason="Refused")
    assert type(raised.value) is kind
    assert isinstance(raised.value, TransientKubeError) is transient
    assert raised.value.status == status
    assert str(raised.value).startswith(f"get Service ns/chat: {status}")


def _entry(
    manager: str, fields: dict[str, object], time: str = "2026-01-01T00:00:02Z", **extra: str
) -> dict[str, object]:
    return {"manager": manager, "operation": "Update", "time": time, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": fields}, **extra}  # fmt: skip


DESIRED = {"spec": {"selector": {"app": "x"}, "template": {"spec": {"containers": [{"name": "server", "image": "i"}]}}}}


def _live(*entries: dict[str, object]) -> dict[str, object]:
    return {"metadata": {"managedFields": list(entries)}, **DESIRED}


def test_fields_others_added_to_the_spec_are_found() -> None:
    live = _live(
        _entry("kubectl-edit", {"f:selector": {"f:extra": {}}}),
        _entry("kubectl-patch", {"f:template": {"f:spec": {"f:hostNetwork": {}, "f:containers": {
            'k:{"name":"sidecar"}': {".": {}, "f:image": {}}, 'k:{"name":"server"}': {"f:image": {}}}}}}),
    )  # fmt: skip
    assert added_fields(live, DESIRED) == [
        "spec.selector.extra",
        "spec.template.spec.hostNetwork",
        'spec.template.spec.containers[{"name":"sidecar"}]',
    ]


def test_fields_we_render_subresource_writes_and_defaults_outliving_our_replace_are_not_added() -> None:
    live = _live(
        _entry("modelplane", {"f:selector": {"f:app": {}}, "f:replicas": {}}, operation="Apply"),
        _entry("kube-controller-manager", {"f:replicas": {}}, subresource="scale"),
        _entry("kubectl-edit", {"f:selector": {"f:app": {}}}),
        _entry(REPLACE_MANAGER, {"f:selector": {"f:app": {}}}, time="2026-01-01T00:00:05Z"),
        _entry("kubectl-client-side-apply", {"f:revisionHistoryLimit": {}}, time="2026-01-01T00:00:04Z"),
        _entry("kubectl-rollout", {"f:template": {"f:metadata": {"f:annotations": {
            "f:kubectl.kubernetes.io/restartedAt": {}}}}}),
    )  # fmt: skip
    assert added_fields(live, DESIRED) == []


def test_fields_our_own_replace_set_and_we_no_longer_render_are_added() -> None:
    live = _live(_entry(REPLACE_MANAGER, {"f:paused": {}}))
    assert added_fields(live, DESIRED) == ["spec.paused"]


def test_keys_added_to_an_atomic_map_owned_whole_by_another_manager_are_found() -> None:
    """A Service's selector is an atomic map: a patch takes the whole of it, so its extra keys are the edit."""
    desired = {"spec": {"selector": {"app": "x"}}}
    live = {"metadata": {"managedFields": [_entry("kubectl-patch", {"f:selector": {}})]},
            "spec": {"selector": {"app": "x", "extra": "key"}}}  # fmt: skip
    assert added_fields(live, desired) == ["spec.selector.extra"]
    unchanged = {**live, "spec": {"selector": {"app": "x"}}}
    assert added_fields(unchanged, desired) == []


def test_a_merge_patch_removes_keys_no_longer_wanted_below_its_own_keys() -> None:
    live = {"plan": {"nodeSelector": {"pool": "a", "kubernetes.io/hostname": "chosen"}, "gpus": 8},
            "conditions": [], "other": 1}  # fmt: skip
    wanted = {"plan": {"nodeSelector": {"pool": "a"}, "gpus": 1}}
    assert merge_patch(wanted, live) == {"plan": {"nodeSelector": {"pool": "a", "kubernetes.io/hostname": None},
                                                  "gpus": 1}}  # fmt: skip
    assert merge_patch(wanted, {"plan": {"nodeSelector": {"pool": "a"}}}) == wanted
