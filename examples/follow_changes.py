#!/usr/bin/env python3
"""Follow the /changes log of an Orthanc-compatible server and print each change as it happens.

    python examples/follow_changes.py --url http://localhost:8042 [--since 0] [--stop-after 10]

The pattern every Orthanc integration uses: remember the last Seq, ask for what came after it,
sleep a little only when the log said Done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp


async def follow(url: str, since: int, stop_after: int | None, poll_seconds: float = 0.5) -> int:
    seen = 0
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{url}/changes", params={"since": str(since), "limit": "100"}) as resp:
                resp.raise_for_status()
                page = await resp.json()
            for change in page["Changes"]:
                print(f"{change['Seq']:6} {change['ChangeType']:16} {change['ResourceType']:9} {change['ID']}", flush=True)
                seen += 1
                if stop_after is not None and seen >= stop_after:
                    return seen
            since = page["Last"]
            if page["Done"]:
                await asyncio.sleep(poll_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8042")
    parser.add_argument("--since", type=int, default=0)
    parser.add_argument("--stop-after", type=int, help="exit after this many changes")
    args = parser.parse_args()
    try:
        asyncio.run(follow(args.url.rstrip("/"), args.since, args.stop_after))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
