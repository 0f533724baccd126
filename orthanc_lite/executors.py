"""The named thread pools. The only module that calls run_in_executor.

cpu: pydicom parsing, pillow/numpy rendering, zip deflate; io: file read/write/fsync/unlink, and the
ingest pipeline (parse, fsynced write and index commit in one hop: it mostly waits, so it needs io's width);
dimse: outbound associations. A long C-MOVE must never starve parsing, hence separate pools.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Final, TypeVar

T = TypeVar("T")


class Executors:
    """Owns the three pools; `close()` may be called more than once."""

    def __init__(self, cpu_workers: int | None = None, io_workers: int = 8, dimse_workers: int = 8) -> None:
        self.cpu = ThreadPoolExecutor(max_workers=cpu_workers or max(2, os.cpu_count() or 2), thread_name_prefix="cpu")
        self.io = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="io")
        self.dimse = ThreadPoolExecutor(max_workers=dimse_workers, thread_name_prefix="dimse")
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

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pool in (self.cpu, self.io, self.dimse):
            pool.shutdown(wait=True, cancel_futures=True)


async def _run(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(pool, functools.partial(ctx.run, fn, *args))


SMALL_INLINE_BYTES: Final = 64 * 1024  # below this, hashing/reading inline costs less than a thread hop
