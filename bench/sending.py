"""Sending benchmark (issue 9): one REST request that sends a whole study of N instances (1,000 by default,
100 with --quick), from orthanc_lite and from real Orthanc in the same run:
  - C-STORE SCU to a dcmtk storescp (POST /modalities/{id}/store), both senders to the same storescp;
  - to an Orthanc peer (POST /peers/{id}/store), each sender to its own fresh orthanc_lite receiver.
Figures are instances/s of the synchronous request.

    python -m bench.sending [--count N] [--no-orthanc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.data.make_samples import make_series  # noqa: E402
from tests.e2e.orthanc_peer import (ORTHANC_AVAILABLE, ORTHANC_BIN, ServerProcess, _base_config,  # noqa: E402
                                   free_port, spawn_orthanc_lite)

STORESCP: Final = shutil.which("storescp", path="/usr/bin:/usr/local/bin")
UPLOAD_PARALLEL: Final = 4


def log(message: str) -> None:
    print(f"[bench.sending] {message}", file=sys.stderr, flush=True)


async def _upload(url: str, files: list[bytes]) -> str:
    """Upload the study; its Orthanc ID (the same on every server)."""
    queue = list(files)
    study = ""

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal study
        while queue:
            data = queue.pop()
            async with session.post(f"{url}/instances", data=data) as resp:
                resp.raise_for_status()
                study = (await resp.json())["ParentStudy"]

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(UPLOAD_PARALLEL)))
    return study


async def _timed_post(url: str, path: str, body: Any, count: int) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        begin = time.perf_counter()
        async with session.post(url + path, json=body) as resp:
            answer = await resp.json(content_type=None)
            elapsed = time.perf_counter() - begin
            if resp.status != 200:
                return {"error": f"HTTP {resp.status}: {answer}"}
    sent = int(answer.get("InstancesCount", 0)) - int(answer.get("FailedInstancesCount", 0))
    return {"instances": sent, "seconds": round(elapsed, 3), "instances_per_s": round(sent / elapsed, 1)}


@contextlib.asynccontextmanager
async def _storescp(folder: pathlib.Path) -> AsyncIterator[int]:
    assert STORESCP is not None, "dcmtk storescp is not installed"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # -B: bit-preserving (no re-encoding); TCP_NODELAY=1 so that DCMTK does not wait for delayed ACKs.
    proc = await asyncio.create_subprocess_exec(STORESCP, "-aet", "BENCHDEST", "-od", str(folder), "-B", "+xa",
                                                str(port), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL,
                                                env={**os.environ, "TCP_NODELAY": "1"})
    try:
        for _ in range(200):  # wait until it listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        await proc.wait()


async def run(base_url_lite: str, base_url_orthanc: str | None = None, workdir: str | None = None,
              quick: bool = False, count: int | None = None) -> dict[str, Any]:
    """Measure both senders (servers already running); the section's figures."""
    count = count or (100 if quick else 1000)
    work = pathlib.Path(workdir or tempfile.mkdtemp(prefix="bench-sending-")) / "sending"
    senders = {"lite": base_url_lite, "orthanc": base_url_orthanc}
    files = make_series(count, patient_id="SENDING")
    study = ""
    for name, url in senders.items():
        if url:
            log(f"uploading {count} instances to {name}")
            study = await _upload(url, files)
    out: dict[str, Any] = {"count": count, "store_scu": {}, "peer_store": {}}
    async with _storescp(work / "storescp") as port:
        for name, url in senders.items():
            if not url:
                out["store_scu"][name] = None
                continue
            async with aiohttp.ClientSession() as session:
                await session.put(f"{url}/modalities/benchdest", json=["BENCHDEST", "127.0.0.1", port])
            log(f"C-STORE SCU from {name}")
            out["store_scu"][name] = await _timed_post(url, "/modalities/benchdest/store", {"Resources": [study]}, count)
    for name, url in senders.items():
        if not url:
            out["peer_store"][name] = None
            continue
        receiver = await asyncio.to_thread(spawn_orthanc_lite, work / f"peer-for-{name}", {"StableAge": 3600})
        try:
            async with aiohttp.ClientSession() as session:
                await session.put(f"{url}/peers/benchpeer", json=[receiver.url])
            log(f"peer store from {name}")
            out["peer_store"][name] = await _timed_post(url, "/peers/benchpeer/store", {"Resources": [study]}, count)
        finally:
            await asyncio.to_thread(receiver.stop)
    return out


async def _standalone(count: int, with_orthanc: bool) -> dict[str, Any]:
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-sending-"))
    lite = await asyncio.to_thread(spawn_orthanc_lite, work / "lite", {"StableAge": 3600})
    orthanc = None
    try:
        if with_orthanc and ORTHANC_AVAILABLE:
            # TCP_NODELAY=1: without it DCMTK (so Orthanc's C-STORE SCU) waits for delayed ACKs (see bench/dimse.py).
            cfg = {**_base_config(work / "orthanc", "RealOrthanc"), "StableAge": 3600, "Plugins": []}
            orthanc = ServerProcess("orthanc", work / "orthanc", cfg, [ORTHANC_BIN, str(work / "orthanc" / "config.json")],
                                    extra_env={"TCP_NODELAY": "1"})
            await asyncio.to_thread(orthanc.start)
        return await run(lite.url, orthanc.url if orthanc else None, str(work), count=count)
    finally:
        await asyncio.to_thread(lite.stop)
        if orthanc is not None:
            await asyncio.to_thread(orthanc.stop)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_standalone(args.count, not args.no_orthanc)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
