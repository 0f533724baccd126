"""REST ingest throughput: k aiohttp clients (one keep-alive connection each) POST /instances from a shared queue.

Besides instances/s, each run records the CPU seconds used by the server process and by this client process, so that
a client-bound measurement on a small machine shows up as such.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from .servers import Server


async def ingest(server: Server, items: Sequence[bytes], concurrency: int) -> dict[str, Any]:
    """Upload every item; answer instances/s, seconds, failures and CPU use."""
    next_index = 0
    failures: list[str] = []
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=server.url, connector=connector, timeout=timeout) as http:
        async def client() -> None:
            nonlocal next_index
            while next_index < len(items):
                body = items[next_index]
                next_index += 1
                started = time.perf_counter()
                async with http.post("/instances", data=body,
                                     headers={"Content-Type": "application/dicom"}) as resp:
                    answer = await resp.read()
                    if resp.status != 200:
                        failures.append(f"{resp.status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - started)

        cpu_server = server.cpu_seconds()
        cpu_client = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_server = server.cpu_seconds() - cpu_server
        cpu_client = time.process_time() - cpu_client
    latencies.sort()
    return {
        "instances": len(items),
        "clients": concurrency,
        "seconds": round(elapsed, 3),
        "instances_per_s": round(len(items) / elapsed, 1) if elapsed > 0 else None,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "latency_p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2) if latencies else None,
        "server_cpu_s": round(cpu_server, 2),
        "client_cpu_s": round(cpu_client, 2),
        "server_cpu_ms_per_instance": round(cpu_server * 1000 / len(items), 3) if items else None,
    }
