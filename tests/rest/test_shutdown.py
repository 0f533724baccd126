"""Closing the context never hangs, even with stable-resource timers pending."""

from __future__ import annotations

import asyncio
import pathlib

from orthanc_lite.config import Settings
from orthanc_lite.model import Origin
from orthanc_lite.services.context import ServerContext
from orthanc_lite.services.store import store_bytes
from tests.data.make_samples import make_instance


async def test_close_with_pending_stable_changes(tmp_path: pathlib.Path, settings: Settings) -> None:
    ctx = ServerContext(settings.replace(StableAge=1))
    await ctx.open()
    for i in range(60):
        await store_bytes(ctx, make_instance(f"S{i}"), Origin("RestApi"))
    await asyncio.wait_for(ctx.close(), timeout=10)
    await ctx.close()  # idempotent
