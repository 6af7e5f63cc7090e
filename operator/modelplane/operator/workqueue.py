"""A keyed work queue, after client-go's workqueue: each key queued once, processed by one worker at a time.

- `add(key)` queues a key unless it is queued already; a key added while a worker holds it is queued again
  when that worker is done, so no change is lost and no key is processed twice at once.
- `add_after(key, delay)` queues it later (the earliest of several requests wins), for debouncing.
- `retry(key)` queues it after a per-key exponential backoff; `forget(key)` resets the backoff on success.

The queue lives on one asyncio event loop and is only touched from it, so it needs no locks; workers take
keys with `await get()` and hand the blocking work to threads themselves.
"""

import asyncio
from collections import deque
from dataclasses import dataclass, field

BASE_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


@dataclass
class WorkQueue:
    base_backoff: float = BASE_BACKOFF_SECONDS
    max_backoff: float = MAX_BACKOFF_SECONDS
    _queue: deque[str] = field(default_factory=deque)
    _queued: set[str] = field(default_factory=set)
    _processing: set[str] = field(default_factory=set)
    _dirty: set[str] = field(default_factory=set)
    _waiting: dict[str, tuple[float, asyncio.TimerHandle]] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, key: str) -> None:
        """Queue `key` now (a later wait for it is cancelled: it runs now anyway)."""
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[1].cancel()
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        self._ready.set()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` after `delay` seconds, unless it is queued or due sooner already."""
        if key in self._queued:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        waiting = self._waiting.get(key)
        if waiting is not None:
            if waiting[0] <= due:
                return
            waiting[1].cancel()
        self._waiting[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def retry(self, key: str) -> float:
        """Queue `key` again after its backoff (doubling per consecutive failure, capped); returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay: float = min(self.max_backoff, self.base_backoff * 2.0 ** (failures - 1))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts from the base backoff again."""
        self._failures.pop(key, None)

    async def get(self) -> str:
        """The next key; the caller must call `done(key)` when finished with it."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        """A worker finished `key`; if it was added meanwhile, it is queued again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queue)
