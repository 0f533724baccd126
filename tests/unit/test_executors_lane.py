"""executors.Lane: the upload line's hop (results, errors, context, thread reuse, shutdown)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from orthanc_lite.executors import Lane

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def _thread_name(_: object = None) -> str:
    return threading.current_thread().name


async def test_results_errors_and_context_come_back() -> None:
    lane = Lane(4, "t")
    try:
        assert await lane.run(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            await lane.run(divmod, 1, 0)
        REQUEST_ID.set("abc")
        assert await lane.run(REQUEST_ID.get) == "abc"  # the caller's context, as run_in_executor with copy_context
        assert (await lane.run(_thread_name)).startswith("t_")
    finally:
        lane.close()


async def test_one_caller_at_a_time_reuses_one_thread_and_concurrent_callers_get_several() -> None:
    lane = Lane(4, "t")
    try:
        names = {await lane.run(_thread_name) for _ in range(50)}
        assert len(names) == 1
        barrier = threading.Barrier(3, timeout=10)  # three calls can only pass together on three threads
        names = set(await asyncio.gather(*(lane.run(lambda: (barrier.wait(), _thread_name())[1]) for _ in range(3))))
        assert len(names) == 3
    finally:
        lane.close()


async def test_close_finishes_queued_work_then_refuses_more() -> None:
    lane = Lane(1, "t")
    done: list[int] = []

    def slow(i: int) -> None:
        time.sleep(0.01)
        done.append(i)

    futures = [lane.run(slow, i) for i in range(5)]
    await asyncio.get_running_loop().run_in_executor(None, lane.close)
    assert done == [0, 1, 2, 3, 4]
    await asyncio.gather(*futures)
    with pytest.raises(RuntimeError):
        lane.run(sum, [])
    lane.close()  # idempotent
