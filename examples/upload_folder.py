#!/usr/bin/env python3
"""Upload every DICOM file of a folder (recursively) to an Orthanc-compatible server, 4 at a time.

    python examples/upload_folder.py ./my-dicoms --url http://localhost:8042 [--user alice --password secret]

Works against orthanc_lite and real Orthanc alike. Prints one line per file and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys

import aiohttp


async def upload_folder(folder: pathlib.Path, url: str, auth: aiohttp.BasicAuth | None, concurrency: int = 4) -> dict[str, int]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    counts = {"Success": 0, "AlreadyStored": 0, "Rejected": 0}
    queue: asyncio.Queue[pathlib.Path] = asyncio.Queue()
    for f in files:
        queue.put_nowait(f)
    headers = {"Authorization": auth.encode()} if auth else {}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            path = queue.get_nowait()
            async with session.post(f"{url}/instances", data=path.read_bytes(), headers=headers) as resp:
                if resp.status == 200:
                    status = (await resp.json())["Status"]
                    counts[status] = counts.get(status, 0) + 1
                    print(f"{status:14} {path}")
                else:
                    counts["Rejected"] += 1
                    print(f"{'Rejected':14} {path} (HTTP {resp.status})")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--url", default="http://localhost:8042")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    auth = aiohttp.BasicAuth(args.user, args.password) if args.user else None
    counts = asyncio.run(upload_folder(args.folder, args.url.rstrip("/"), auth))
    print("summary: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0 if counts["Success"] + counts["AlreadyStored"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
