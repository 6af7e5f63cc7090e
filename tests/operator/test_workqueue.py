"""The keyed work queue, and the index snapshots that keep worker threads off structures kopf mutates."""

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, cast

import pytest
from kopf._core.engines.indexing import Key, OperatorIndexer

from modelplane.operator.state import Indexes, _values
from modelplane.operator.workqueue import WorkQueue


def key(name: str) -> Key:
    """kopf's own key of an indexed object: namespace, name, uid."""
    return cast(Key, ("ns", name, f"uid-{name}"))


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_key_is_queued_once_and_handed_to_one_worker_at_a_time() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        for key in ("a", "b", "a", "a"):
            queue.add(key)
        assert len(queue) == 2
        first = await queue.get()
        queue.add(first)  # changed while a worker holds it: not handed out again until done
        second = await queue.get()
        assert len(queue) == 0
        queue.done(first)
        assert len(queue) == 1, "added while processing: queued again when done"
        third = await queue.get()
        queue.done(second)
        queue.done(third)
        return [first, second, third]

    assert run(scenario()) == ["a", "b", "a"]


def test_failures_back_off_exponentially_capped_and_forget_resets() -> None:
    async def scenario() -> list[float]:
        queue = WorkQueue(base_backoff=1.0, max_backoff=5.0)
        delays = [queue.retry("k") for _ in range(5)]
        queue.forget("k")
        delays.append(queue.retry("k"))
        return delays

    assert run(scenario()) == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0]


def test_a_delayed_key_arrives_once_at_the_earliest_requested_time() -> None:
    async def scenario() -> tuple[int, str, int]:
        queue = WorkQueue()
        queue.add_after("k", 0.2)
        queue.add_after("k", 0.05)
        queue.add_after("k", 0.3)
        await asyncio.sleep(0.1)
        queued = len(queue)
        key = await asyncio.wait_for(queue.get(), 1)
        queue.done(key)
        await asyncio.sleep(0.3)
        return queued, key, len(queue)

    assert run(scenario()) == (1, "k", 0)


def test_adding_a_waiting_key_runs_it_now_and_cancels_the_wait() -> None:
    async def scenario() -> int:
        queue = WorkQueue()
        queue.add_after("k", 0.05)
        queue.add("k")
        key = await queue.get()
        queue.done(key)
        await asyncio.sleep(0.1)
        return len(queue)

    assert run(scenario()) == 0


@contextmanager
def fast_thread_switching() -> Iterator[None]:
    """Switch threads far more often than CPython's 5 ms, so an unsafe interleaving shows up in a short run."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def churn(indexers: list[OperatorIndexer], stop: threading.Event) -> Callable[[], Any]:
    """kopf's event loop at work: objects indexed and dropped, as a burst of pod events does."""

    async def loop_task() -> None:
        generation = 0
        while not stop.is_set():
            generation += 1
            for n in range(200):
                for indexer in indexers:
                    indexer.replace(key(f"pod-{generation}-{n}"), {f"ns/pod-{generation}-{n}": {"n": n}})
                    indexer.discard(key(f"pod-{generation - 3}-{n}"))
            await asyncio.sleep(0)

    return loop_task


def indexes_of(indexers: list[OperatorIndexer]) -> Indexes:
    """The operator's indexes over five indexers: four by name, the fifth one index of existing children."""
    deployments, pools, nodes, pods, children = (indexer.index for indexer in indexers)
    return Indexes(deployments, pools, nodes, pods, (children,))


def every_index(indexes: Indexes) -> list[Any]:
    return [indexes.deployments, indexes.gpu_pools, indexes.gpu_nodes, indexes.gpu_pods, *indexes.children]


def reads_under_churn(read: Callable[[Indexes], Callable[[], object]], seconds: float) -> list[BaseException]:
    """Read the indexes from worker threads for `seconds` while the event loop keeps changing them.

    `read` runs on the loop and returns what a worker thread then runs; returns the errors the threads hit.
    """
    indexers = [OperatorIndexer() for _ in range(5)]
    for n in range(2000):
        for indexer in indexers:
            indexer.replace(key(f"seed-{n}"), {f"ns/seed-{n}": {"n": n}})
    indexes = indexes_of(indexers)
    errors: list[BaseException] = []

    async def scenario() -> None:
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        churning = asyncio.create_task(churn(indexers, stop)())
        with ThreadPoolExecutor(4) as executor:
            deadline = loop.time() + seconds
            while loop.time() < deadline and not errors:
                try:
                    await loop.run_in_executor(executor, read(indexes))
                except RuntimeError as error:
                    errors.append(error)
        stop.set()
        await churning

    with fast_thread_switching():
        asyncio.run(scenario())
    return errors


def test_reading_kopf_indexes_from_a_thread_while_the_loop_updates_them_fails() -> None:
    """The bug: a worker thread iterating a kopf.Index that kopf's event loop is updating."""
    errors = reads_under_churn(lambda indexes: lambda: [_values(index) for index in every_index(indexes)], 20)
    assert errors, "the unsafe read never overlapped an update in 20 s"
    assert "changed" in str(errors[0])
    assert "during iteration" in str(errors[0])


def test_snapshots_taken_on_the_loop_are_safe_to_read_from_threads() -> None:
    def read(indexes: Indexes) -> Callable[[], object]:
        snapshot = indexes.snapshot()  # on the loop, as the operator's workers take it
        return lambda: [len(list(part)) for part in vars(snapshot).values()]

    assert reads_under_churn(read, 3) == []


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_snapshot_has_every_indexed_value(count: int) -> None:
    indexers = [OperatorIndexer() for _ in range(5)]
    for n in range(count):
        for indexer in indexers:
            indexer.replace(key(f"d{n}"), {f"ns/d{n}": {"n": n}})
    snapshot = indexes_of(indexers).snapshot()
    assert snapshot.deployments == {f"ns/d{n}": {"n": n} for n in range(count)}
    assert list(map(dict, cast(list[Any], snapshot.gpu_pods))) == [{"n": n} for n in range(count)]
    assert set(snapshot.children) == {f"ns/d{n}" for n in range(count)}, "the keys of the existing children"
