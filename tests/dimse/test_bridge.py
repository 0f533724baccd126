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
