"""Read-side figures on a loaded store: list/expand latency (p50/p95), single-resource latency, /changes paging."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import aiohttp

from .servers import Server

WARMUP = 2


def _summary(samples_s: list[float], **extra: Any) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"runs": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[min(len(ms) - 1, round(len(ms) * 0.95) - 1)], 2),
            "min_ms": round(ms[0], 2), "max_ms": round(ms[-1], 2), **extra}


async def list_latency(server: Server, path: str, runs: int) -> dict[str, Any]:
    """GET `path` runs times after a warm-up; p50/p95 of the full answer time (body read)."""
    samples: list[float] = []
    size = count = 0
    async with aiohttp.ClientSession(base_url=server.url, timeout=aiohttp.ClientTimeout(total=600)) as http:
        for i in range(WARMUP + runs):
            started = time.perf_counter()
            async with http.get(path) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{server.name} GET {path}: {resp.status} {body[:200]!r}")
            if i >= WARMUP:
                samples.append(time.perf_counter() - started)
            size = len(body)
        import orjson
        count = len(orjson.loads(body))
    return _summary(samples, answer_bytes=size, resources=count)


async def single_resource_latency(server: Server, level: str, runs: int, seed: int = 7) -> dict[str, Any]:
    """GET /{level}/{id} for `runs` random resources (one request at a time)."""
    async with aiohttp.ClientSession(base_url=server.url, timeout=aiohttp.ClientTimeout(total=600)) as http:
        async with http.get(f"/{level}") as resp:
            ids = await resp.json()
        picks = random.Random(seed).choices(ids, k=WARMUP + runs)
        samples: list[float] = []
        for i, public_id in enumerate(picks):
            started = time.perf_counter()
            async with http.get(f"/{level}/{public_id}") as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{server.name} GET /{level}/{public_id}: {resp.status}")
            if i >= WARMUP:
                samples.append(time.perf_counter() - started)
    return _summary(samples)


async def changes_walk(server: Server, limit: int = 1000) -> dict[str, Any]:
    """Walk the whole /changes log from the start with ?since=..&limit=..; total time, pages and changes seen."""
    pages = changes = 0
    since = 0
    async with aiohttp.ClientSession(base_url=server.url, timeout=aiohttp.ClientTimeout(total=600)) as http:
        started = time.perf_counter()
        while True:
            async with http.get("/changes", params={"since": str(since), "limit": str(limit)}) as resp:
                page = await resp.json()
            pages += 1
            changes += len(page["Changes"])
            since = page["Last"]
            if page["Done"] or not page["Changes"]:
                break
        elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "pages": pages, "changes": changes, "limit": limit,
            "largest_page": round(changes / pages) if pages else 0,
            "ms_per_1000_changes": round(elapsed * 1e6 / changes, 2) if changes else None}


async def settle(server: Server, quiet: float, timeout: float = 120.0) -> float:
    """Wait until the changes log has not moved for `quiet` seconds (the Stable* changes that follow an ingest are
    written StableAge seconds after the last instance); answers the seconds waited."""
    started = time.perf_counter()
    last_value: int | None = None
    last_move = started
    async with aiohttp.ClientSession(base_url=server.url) as http:
        while time.perf_counter() - started < timeout:
            async with http.get("/changes", params={"last": ""}) as resp:
                value = (await resp.json())["Last"]
            now = time.perf_counter()
            if value != last_value:
                last_value, last_move = value, now
            elif now - last_move >= quiet:
                break
            await asyncio.sleep(0.25)
    return round(time.perf_counter() - started, 1)
