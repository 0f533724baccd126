"""dimse/bridge.py: association threads reach the loop only through it, with the refusals that keep
shutdown from deadlocking."""

from __future__ import annotations

import asyncio

import pytest

from orthanc_lite.dimse.bridge import Bridge, BridgeError
from orthanc_lite.errors import ErrorCode, OrthancError


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def _fail() -> None:
    raise OrthancError(ErrorCode.BadRequest, "nope")


async def _numbers(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield i


async def test_call_from_a_thread_returns_and_raises() -> None:
    bridge = Bridge(asyncio.get_running_loop())
    assert await asyncio.to_thread(bridge.call, _double, 21) == 42
    with pytest.raises(OrthancError):
        await asyncio.to_thread(bridge.call, _fail)


async def test_refuses_on_the_loop_thread() -> None:
    bridge = Bridge(asyncio.get_running_loop())
    with pytest.raises(BridgeError):
        bridge.call(_double, 1)


async def test_refuses_after_close() -> None:
    bridge = Bridge(asyncio.get_running_loop())
    bridge.close()
    with pytest.raises(BridgeError):
        await asyncio.to_thread(bridge.call, _double, 1)


async def test_timeout_cancels_the_coroutine() -> None:
    bridge = Bridge(asyncio.get_running_loop())
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(OrthancError) as info:
        await asyncio.to_thread(bridge.call, forever, timeout=0.2)
    assert info.value.code is ErrorCode.Timeout
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_iterate_pulls_an_async_iterator() -> None:
    bridge = Bridge(asyncio.get_running_loop())
    assert await asyncio.to_thread(lambda: list(bridge.iterate(_numbers, 5))) == [0, 1, 2, 3, 4]


async def test_batched_calls_all_run_in_order_and_a_failure_stops_none() -> None:
    """Four threads post 200 calls each without waiting: every call runs on the loop thread, each thread's
    in its order, and one that raises does not lose the others."""
    import threading

    loop = asyncio.get_running_loop()
    bridge = Bridge(loop)
    seen: dict[int, list[int]] = {t: [] for t in range(4)}
    on_loop: list[bool] = []
    done = asyncio.Event()

    def record(t: int, i: int) -> None:
        on_loop.append(threading.get_ident() == loop_thread)
        if i == 100:
            raise RuntimeError("one failing call")
        seen[t].append(i)
        if sum(map(len, seen.values())) == 4 * 199:
            done.set()

    loop_thread = threading.get_ident()

    def post(t: int) -> None:
        for i in range(200):
            bridge.call_soon_batched(record, t, i)

    await asyncio.gather(*(asyncio.to_thread(post, t) for t in range(4)))
    await asyncio.wait_for(done.wait(), 10)
    assert all(on_loop) and len(on_loop) == 800
    assert all(seen[t] == [i for i in range(200) if i != 100] for t in range(4))
    bridge.close()
    with pytest.raises(BridgeError):
        await asyncio.to_thread(bridge.call_soon_batched, record, 0, 0)
