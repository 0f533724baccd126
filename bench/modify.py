"""Anonymization throughput (issue 12 item 7): one study of N instances anonymized with POST /studies/{id}/anonymize
(synchronous) on orthanc_lite and on real Orthanc, alternating, same data. Target: lite >= 0.7x Orthanc.

As a section of `python -m bench` (`run()`), or alone: `python -m bench.modify [--count N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

import aiohttp

from .servers import LITE, ORTHANC, ORTHANC_AVAILABLE, Server, start
from .store import StoreShape, make_instance

TARGET_RATIO = 0.7


def study_instances(count: int) -> list[bytes]:
    """One study, one series, `count` small CT instances (a study the main store does not contain)."""
    shape = StoreShape(patients=1, studies=1, series=1, instances=count)
    return [make_instance(shape, 9999, 0, 0, i) for i in range(count)]


async def _anonymize(url: str, study: str) -> float:
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        started = time.perf_counter()
        async with http.post(f"{url}/studies/{study}/anonymize", json={}) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"anonymize failed on {url}: {resp.status} {body[:200]}")
        return time.perf_counter() - started


async def _study_of(url: str, items: list[bytes]) -> str:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/instances", data=items[0]) as resp:
        return str((await resp.json())["ParentStudy"])


async def measure(servers: dict[str, str], count: int, rounds: int) -> dict[str, Any]:
    items = study_instances(count)
    studies: dict[str, str] = {}
    for name, url in servers.items():
        await _upload(url, items, 4)
        studies[name] = await _study_of(url, items)
    seconds: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, url in servers.items():
            seconds[name].append(await _anonymize(url, studies[name]))
    out: dict[str, Any] = {}
    for name, values in seconds.items():
        best = min(values)
        out[name] = {"instances_per_s": round(count / best, 1), "seconds": [round(v, 3) for v in values]}
    return out


async def _upload(url: str, items: list[bytes], concurrency: int) -> None:
    queue = list(reversed(items))
    async with aiohttp.ClientSession(base_url=url) as http:
        async def client() -> None:
            while queue:
                body = queue.pop()
                async with http.post("/instances", data=body) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"upload failed on {url}: {resp.status}")
        await asyncio.gather(*(client() for _ in range(concurrency)))


async def run(base_url_lite: str, base_url_orthanc: str | None = None, quick: bool = False) -> dict[str, Any]:
    """Section entry point for `python -m bench`."""
    count = 100 if quick else 1000
    servers = {"lite": base_url_lite}
    if base_url_orthanc:
        servers["orthanc"] = base_url_orthanc
    result = await measure(servers, count, 1 if quick else 2)
    return {f"anonymize study ({count} instances)": {"lite": result["lite"], "orthanc": result.get("orthanc")}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.modify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="instances in the study (default 1,000)")
    parser.add_argument("--rounds", type=int, default=2, help="anonymizations per server (best one counts)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-modify-") as tmp:
        workdir = pathlib.Path(tmp)
        started: list[Server] = [start(LITE, workdir)]
        try:
            if ORTHANC_AVAILABLE:
                started.append(start(ORTHANC, workdir))
            urls = {("lite" if s.name == LITE else "orthanc"): s.url for s in started}
            result = asyncio.run(measure(urls, args.count, args.rounds))
        finally:
            for server in started:
                server.stop()
    lite = result["lite"]["instances_per_s"]
    line = f"anonymize {args.count} instances: orthanc_lite {lite}/s"
    if "orthanc" in result:
        theirs = result["orthanc"]["instances_per_s"]
        ratio = lite / theirs if theirs else 0.0
        line += f", Orthanc {theirs}/s, ratio {ratio:.2f} (target {TARGET_RATIO})"
        result["ratio"] = round(ratio, 3)
    print(line)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
