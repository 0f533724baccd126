#!/usr/bin/env python3
"""Forward every study that becomes stable to a DICOM modality: follow /changes, and for each StableStudy ask
the server to C-STORE it (POST /modalities/{modality}/store). Works against orthanc_lite and real Orthanc.

    python examples/auto_forward.py --url http://localhost:8042 --modality pacs [--since 0] [--stop-after 3]

Each study is sent as an asynchronous job, and the job is followed until it ends, so that a failure is reported
(and the script goes on with the next study). Only new changes are handled unless --since is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp


async def wait_for_job(session: aiohttp.ClientSession, url: str, job_id: str, poll_seconds: float) -> dict[str, Any]:
    while True:
        async with session.get(f"{url}/jobs/{job_id}") as resp:
            resp.raise_for_status()
            job: dict[str, Any] = await resp.json()
        if job["State"] in ("Success", "Failure"):
            return job
        await asyncio.sleep(poll_seconds)


async def forward(session: aiohttp.ClientSession, url: str, modality: str, study: str,
                  poll_seconds: float) -> bool:
    body = {"Resources": [study], "Asynchronous": True}
    async with session.post(f"{url}/modalities/{modality}/store", json=body) as resp:
        if resp.status != 200:
            print(f"FAILED   {study}: HTTP {resp.status} {await resp.text()}", flush=True)
            return False
        job_id = (await resp.json())["ID"]
    job = await wait_for_job(session, url, job_id, poll_seconds)
    if job["State"] == "Success":
        print(f"SENT     {study} ({job['Content']['InstancesCount']} instances) to {modality}", flush=True)
        return True
    print(f"FAILED   {study}: {job['ErrorDescription']} {job.get('ErrorDetails', '')}", flush=True)
    return False


async def run(url: str, modality: str, since: int | None, stop_after: int | None, poll_seconds: float = 0.5) -> int:
    """Returns the number of studies handled (sent or failed)."""
    handled = 0
    async with aiohttp.ClientSession() as session:
        if since is None:  # start from now: the last change so far
            async with session.get(f"{url}/changes", params={"last": ""}) as resp:
                resp.raise_for_status()
                since = int((await resp.json())["Last"])
        while True:
            async with session.get(f"{url}/changes", params={"since": str(since), "limit": "100"}) as resp:
                resp.raise_for_status()
                page = await resp.json()
            for change in page["Changes"]:
                if change["ChangeType"] == "StableStudy":
                    await forward(session, url, modality, change["ID"], poll_seconds)
                    handled += 1
                    if stop_after is not None and handled >= stop_after:
                        return handled
            since = page["Last"]
            if page["Done"]:
                await asyncio.sleep(poll_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8042")
    parser.add_argument("--modality", required=True, help="symbolic name of the target in /modalities")
    parser.add_argument("--since", type=int, help="start after this change (default: only new changes)")
    parser.add_argument("--stop-after", type=int, help="exit after this many studies")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url.rstrip("/"), args.modality, args.since, args.stop_after))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
