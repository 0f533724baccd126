"""The change bus (post-commit fan-out to subscribers) and the stable-resource tracker.

A resource is unstable from its last new instance until StableAge seconds pass without another one;
then Stable{Patient,Study,Series} is logged, as Orthanc's ServerContext does. After a restart every
resource is stable (Orthanc keeps this tracker in memory too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from ..model import Change, ChangeType, ResourceLevel

logger = logging.getLogger(__name__)

_STABLE_CHANGE = {
    ResourceLevel.PATIENT: ChangeType.StablePatient,
    ResourceLevel.STUDY: ChangeType.StableStudy,
    ResourceLevel.SERIES: ChangeType.StableSeries,
}


class ChangeBus:
    """Subscribers get every committed change, in order, on an asyncio.Queue of their own."""

    def __init__(self) -> None:
        self._subscribers: list[asyncio.Queue[Change]] = []

    def subscribe(self, maxsize: int = 10_000) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(maxsize)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def publish(self, changes: list[Change]) -> None:
        for queue in self._subscribers:
            for change in changes:
                try:
                    queue.put_nowait(change)
                except asyncio.QueueFull:
                    logger.warning("A change subscriber is too slow; dropping change %d", change.seq)


class StabilityTracker:
    """Remembers when each patient/study/series last received an instance."""

    def __init__(self, stable_age: float, on_stable: Callable[[ResourceLevel, str], Awaitable[None]]) -> None:
        self._stable_age = stable_age
        self._on_stable = on_stable
        self._last_seen: dict[str, tuple[ResourceLevel, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stable-resources")

    async def stop(self) -> None:
        # A stop flag rather than cancellation alone: Python 3.11's wait_for can swallow a cancel.
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None

    def touch(self, level: ResourceLevel, public_id: str) -> None:
        was_empty = not self._last_seen
        self._last_seen.pop(public_id, None)  # re-insert at the end: the dict stays ordered by age
        self._last_seen[public_id] = (level, time.monotonic())
        if was_empty:  # otherwise the oldest deadline can only move later: the sleeping tracker is not late
            self._wakeup.set()

    def forget(self, public_id: str) -> None:
        self._last_seen.pop(public_id, None)

    def is_stable(self, public_id: str) -> bool:
        return public_id not in self._last_seen

    async def _run(self) -> None:
        while not self._stopping:
            if not self._last_seen:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            public_id, (level, seen) = next(iter(self._last_seen.items()))
            delay = seen + self._stable_age - time.monotonic()
            if delay > 0:
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(min(delay, 1.0)):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue
            del self._last_seen[public_id]
            try:
                await self._on_stable(level, public_id)
            except Exception:  # a failing listener must not stop the tracker
                logger.exception("Cannot log the stable change of %s", public_id)


def stable_change(level: ResourceLevel) -> ChangeType:
    return _STABLE_CHANGE[level]
