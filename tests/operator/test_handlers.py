"""The event handlers only queue keys: which events queue a fresh pass, and how a child's burst collapses."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf
from kopf._core.engines.indexing import OperatorIndexer
from kubernetes import client

from modelplane.kube.objects import CHILD_KINDS
from modelplane.operator.handlers import CHILD_DEBOUNCE_SECONDS, child_event, model_deployment_event
from modelplane.operator.peering import PeeringGate
from modelplane.operator.state import Operator, WrittenStatus, child_index_name


def indexes() -> dict[str, Any]:
    names = ["deployments", "gpu_pools", "gpu_nodes", "gpu_pods", *(child_index_name(kind) for kind in CHILD_KINDS)]
    return {name: OperatorIndexer().index for name in names}


def deployment_event(operator: Operator, version: str, type: str = "MODIFIED") -> None:
    body = kopf.Body({"metadata": {"namespace": "ns", "name": "chat", "resourceVersion": version}})
    memo = kopf.Memo(operator=operator)
    # kopf's decorator types the handler loosely; it is the coroutine function defined in handlers.py.
    handled = model_deployment_event(type=type, namespace="ns", name="chat", body=body, memo=memo, **indexes())
    asyncio.run(cast(Coroutine[Any, Any, None], handled))


def an_operator() -> Operator:
    return Operator(client.ApiClient(), ThreadPoolExecutor(1), PeeringGate(None))


def test_the_event_of_a_version_already_reconciled_queues_nothing() -> None:
    operator = an_operator()
    # A pass read the body at 10 and wrote status, which made 11: the events of both bring nothing new.
    operator.written["ns/chat"] = WrittenStatus(("10", "11"), {"conditions": []})
    for version in ("10", "11"):
        deployment_event(operator, version)
        assert len(operator.queue) == 0, f"the event of version {version} queued a pass"
    # Someone else's write (a spec edit, a hand-written status) is a new version: a fresh pass.
    deployment_event(operator, "12")
    assert len(operator.queue) == 1
    assert "ns/chat" in operator.fresh


def test_deletions_and_unknown_deployments_always_queue_a_pass() -> None:
    operator = an_operator()
    deployment_event(operator, "10")
    assert len(operator.queue) == 1, "a deployment never reconciled (after a restart too) is queued"
    operator = an_operator()
    operator.written["ns/chat"] = WrittenStatus(("10",), {})
    deployment_event(operator, "10", type="DELETED")
    assert len(operator.queue) == 1, "a deletion frees GPUs: it is never skipped"


def test_a_burst_of_child_events_is_one_pass_after_the_debounce() -> None:
    operator = an_operator()

    async def burst() -> tuple[int, int]:
        memo = kopf.Memo(operator=operator)
        for _ in range(5):  # a rollout: the Deployment's status changes several times in a moment
            await child_event(namespace="ns", labels={"modelplane.dev/deployment": "chat"}, memo=memo, **indexes())
        queued_at_once = len(operator.queue)
        await asyncio.sleep(CHILD_DEBOUNCE_SECONDS + 0.2)
        return queued_at_once, len(operator.queue)

    assert asyncio.run(burst()) == (0, 1)
