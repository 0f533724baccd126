"""Read-side figures on a loaded store: list/expand latency (p50/p95), single-resource latency, /changes paging.

Latencies are measured on every server at once, alternating request by request, so that load from elsewhere on
the machine (the benchmark runs on small shared machines) hits both servers alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from .servers import Server

WARMUP = 2


def _summary(samples_s: list[float], **extra: Any) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"runs": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[min(len(ms) - 1, round(len(ms) * 0.95) - 1)], 2),
            "min_ms": round(ms[0], 2), "max_ms": round(ms[-1], 2), **extra}


async def _timed_get(http: aiohttp.ClientSession, server: Server, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with http.get(server.url + path) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{server.name} GET {path}: {resp.status} {body[:200]!r}")
    return time.perf_counter() - started, body


async def list_latency(servers: Sequence[Server], path: str, runs: int) -> dict[str, dict[str, Any]]:
    """GET `path` `runs` times on each server (alternating, after a warm-up): p50/p95 of the full answer time."""
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    last: dict[str, bytes] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        for i in range(WARMUP + runs):
            for server in servers:
                elapsed, last[server.name] = await _timed_get(http, server, path)
                if i >= WARMUP:
                    samples[server.name].append(elapsed)
    return {name: _summary(values, answer_bytes=len(last[name]), resources=len(orjson.loads(last[name])))
            for name, values in samples.items()}


async def single_resource_latency(servers: Sequence[Server], level: str, runs: int,
                                  seed: int = 7) -> dict[str, dict[str, Any]]:
    """GET /{level}/{id} for `runs` random resources, one request at a time, alternating between servers."""
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        _, body = await _timed_get(http, servers[0], f"/{level}")
        picks = random.Random(seed).choices(orjson.loads(body), k=WARMUP + runs)
        for i, public_id in enumerate(picks):
            for server in servers:
                elapsed, _ = await _timed_get(http, server, f"/{level}/{public_id}")
                if i >= WARMUP:
                    samples[server.name].append(elapsed)
    return {name: _summary(values) for name, values in samples.items()}


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


async def settle(servers: Sequence[Server], quiet: float, timeout: float = 120.0) -> float:
    """Wait until no server's changes log has moved for `quiet` seconds (the Stable* changes that follow an ingest
    are written StableAge seconds after the last instance); answers the seconds waited."""
    started = time.perf_counter()
    last_value: dict[str, int] = {}
    last_move = started
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        while time.perf_counter() - started < timeout:
            for server in servers:
                async with http.get(server.url + "/changes", params={"last": ""}) as resp:
                    value = (await resp.json())["Last"]
                if last_value.get(server.name) != value:
                    last_value[server.name] = value
                    last_move = time.perf_counter()
            if time.perf_counter() - last_move >= quiet:
                break
            await asyncio.sleep(0.25)
    return round(time.perf_counter() - started, 1)
