"""Thread -> loop bridge: the only way association threads reach loop objects (index, storage, jobs).

`Bridge.call(fn, *args)` runs the coroutine function `fn(*args)` on the server's event loop and blocks the
calling (association) thread until it finishes or the timeout passes. It refuses to run on the loop thread
itself (that would deadlock) and after `close()` (so joining association threads at shutdown cannot wait on
a loop that is going away), as Home Assistant's run_callback_threadsafe does.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from ..errors import ErrorCode, OrthancError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BridgeError(RuntimeError):
    """A call that must not run: from the loop thread, or once the bridge is closed."""


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 60.0) -> None:
        """Create on the loop thread; `timeout` is the default for `call()` (seconds)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.timeout = timeout
        self._closed = False
        self._batch: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._batch_lock = threading.Lock()
        self._batch_scheduled = False

    def close(self) -> None:
        """Refuse new calls; calls already running finish normally. Idempotent."""
        self._closed = True

    def _check(self) -> None:
        if threading.get_ident() == self._loop_thread:
            raise BridgeError("Bridge.call() on the event loop thread would deadlock")
        if self._closed or self._loop.is_closed():
            raise BridgeError("The DICOM server is shutting down")

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None,
             cancel_on_timeout: bool = True) -> T:
        """Run `await fn(*args)` on the loop; returns its result or raises its exception.

        On timeout raises OrthancError(Timeout); the coroutine is cancelled unless `cancel_on_timeout`
        is false (a store that already started should finish and leave storage and index consistent).
        """
        self._check()
        coro = _as_coroutine(fn, *args)
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as exc:  # the loop closed between _check() and here
            coro.close()
            raise BridgeError(str(exc)) from None
        try:
            return future.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            if cancel_on_timeout:
                future.cancel()
            raise OrthancError(ErrorCode.Timeout, "Timeout while waiting for the server core") from None
        except concurrent.futures.CancelledError:
            raise BridgeError("The call was cancelled (the server is shutting down)") from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule the plain function `fn(*args)` on the loop without waiting for it."""
        self._check()
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError as exc:  # the loop closed between _check() and here
            raise BridgeError(str(exc)) from None

    def call_soon_batched(self, fn: Callable[..., Any], *args: Any) -> None:
        """`call_soon`, but calls made while an earlier one still waits for the loop share its wake-up (one
        self-pipe write and one loop iteration for all of them: several associations storing at once).
        The calls run in order."""
        self._check()
        with self._batch_lock:
            self._batch.append((fn, args))
            if self._batch_scheduled:
                return
            self._batch_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._run_batch)
        except RuntimeError as exc:  # the loop closed between _check() and here
            raise BridgeError(str(exc)) from None

    def _run_batch(self) -> None:
        with self._batch_lock:
            calls = list(self._batch)
            self._batch.clear()
            self._batch_scheduled = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:  # as the loop would do with a failing callback: log it, run the others
                logger.exception("Error in a call from a DICOM association thread")

    def iterate(self, make: Callable[..., AsyncIterator[T]], *args: Any,
                timeout: float | None = None) -> Iterator[T]:
        """Pull the items of the async iterator `make(*args)` one loop hop at a time.

        Stopping early (break, exception, generator close) closes the async iterator on the loop.
        """
        iterator = make(*args)
        finished = False
        try:
            while True:
                more, item = self.call(_next, iterator, timeout=timeout)
                if not more:
                    finished = True
                    return
                yield item  # type: ignore[misc]  # not None when `more`
        finally:
            if not finished and hasattr(iterator, "aclose"):
                try:
                    self.call(_aclose, iterator, timeout=timeout)
                except (BridgeError, OrthancError):
                    logger.debug("Could not close an abandoned iterator", exc_info=True)


async def _as_coroutine(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


async def _next(iterator: AsyncIterator[T]) -> tuple[bool, T | None]:
    # StopAsyncIteration must not cross a Task boundary: turn it into a flag.
    try:
        return True, await iterator.__anext__()
    except StopAsyncIteration:
        return False, None


async def _aclose(iterator: Any) -> None:
    await iterator.aclose()
