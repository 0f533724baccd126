"""The named thread pools. The only module that calls run_in_executor.

cpu: pydicom parsing, pillow/numpy rendering, zip deflate; io: file read/write/fsync/unlink, and the
ingest pipeline (parse, fsynced write and index commit in one hop: it mostly waits, so it needs io's width);
dimse: outbound associations; ingest: the upload line's one hop per instance (`Lane`, lighter than a pool). A long
C-MOVE must never starve parsing, hence separate pools.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Final, TypeVar

T = TypeVar("T")


class Executors:
    """Owns the three pools; `close()` may be called more than once."""

    def __init__(self, cpu_workers: int | None = None, io_workers: int = 8, dimse_workers: int = 8) -> None:
        self.cpu = ThreadPoolExecutor(max_workers=cpu_workers or max(2, os.cpu_count() or 2), thread_name_prefix="cpu")
        self.io = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="io")
        self.dimse = ThreadPoolExecutor(max_workers=dimse_workers, thread_name_prefix="dimse")
        self.ingest = Lane(io_workers, "ingest")
        # Held around long pure-Python work (parsing) and by the index's commit. A commit releases the GIL
        # at every SQL statement; while another thread parses, each re-acquisition waits for the GIL's
        # switch interval (5 ms), so a 0.5 ms commit took tens of ms under load. Taking turns explicitly,
        # a commit waits for at most one parse; parsing loses nothing, the GIL serialises it anyway.
        self.cpu_turn = threading.Lock()
        self._closed = False

    async def run_cpu(self, fn: Callable[..., T], *args: object) -> T:
        return await _run(self.cpu, fn, *args)

    async def run_io(self, fn: Callable[..., T], *args: object) -> T:
        return await _run(self.io, fn, *args)

    async def run_dimse(self, fn: Callable[..., T], *args: object) -> T:
        return await _run(self.dimse, fn, *args)

    async def run_ingest(self, fn: Callable[..., T], *args: object) -> T:
        """The upload line's hop (as run_io, on the ingest lane)."""
        return await self.ingest.run(fn, *args)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pool in (self.cpu, self.io, self.dimse):
            pool.shutdown(wait=True, cancel_futures=True)
        self.ingest.close()


class Lane:
    """A fixed set of threads fed by one SimpleQueue, each result handed straight to the awaiting asyncio future.
    The ingest's hop, taken by every instance: run_in_executor costs a concurrent Future (a Condition and its
    RLock), a work item, the pool's locks and a callback chain each way; measured, a loop -> thread -> loop round
    trip took 50-90 us of CPU through a pool and 15-45 us here. No cancellation: as with a pool, work that has
    started runs to its end."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._size = threads
        self._name = name
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        self._closed = False

    def run(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, contextvars.copy_context(), fn, args))
        # A new thread only when none is idle (as ThreadPoolExecutor): one client keeps reusing one hot thread.
        if not self._idle.acquire(blocking=False) and len(self._threads) < self._size:
            self._start_one()
        return future

    def _start_one(self) -> None:
        with self._lock:
            if self._closed or len(self._threads) >= self._size:
                return
            thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, ctx, fn, args = item
            try:
                result, error = ctx.run(fn, *args), None
            except BaseException as exc:
                result, error = None, exc
            # Idle before the answer goes out: the caller's next call must find this thread, not start another.
            self._idle.release()
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody awaits the answer any more
                pass
            del item, future, result, error

    def close(self) -> None:
        """Finish the queued work, then stop the threads (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


async def _run(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(pool, functools.partial(ctx.run, fn, *args))


SMALL_INLINE_BYTES: Final = 64 * 1024  # below this, hashing/reading inline costs less than a thread hop
