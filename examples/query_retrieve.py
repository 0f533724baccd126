#!/usr/bin/env python3
"""Query a remote DICOM modality through an Orthanc-compatible REST API, then retrieve what was found.

    python examples/query_retrieve.py --url http://localhost:8042 --modality pacs \\
        --level Study --query PatientID=12345 --query StudyDate=20240101-20241231 [--method C-MOVE|C-GET]

The modality must be declared in the server's DicomModalities (or with PUT /modalities/{name}). With
C-MOVE the remote sends the instances to the server's own AET, so the remote must know that AET too.
Prints one line per answer, then the retrieve job's summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp


async def query_and_retrieve(url: str, modality: str, level: str, query: dict[str, str],
                             method: str | None, dry_run: bool) -> int:
    async with aiohttp.ClientSession(base_url=url) as http:
        async with http.post(f"/modalities/{modality}/query", json={"Level": level, "Query": query}) as resp:
            if resp.status != 200:
                print(f"query failed ({resp.status}): {await resp.text()}", file=sys.stderr)
                return 1
            found = await resp.json()
        async with http.get(f"{found['Path']}/answers", params={"expand": "", "simplify": ""}) as resp:
            resp.raise_for_status()
            answers = await resp.json()
        for i, answer in enumerate(answers):
            shown = {k: v for k, v in sorted(answer.items()) if k not in ("SpecificCharacterSet", "RetrieveAETitle")}
            print(f"answer {i}: {shown}")
        print(f"{len(answers)} answer(s)")
        if dry_run or not answers:
            return 0
        body: dict[str, object] = {"Synchronous": True}
        if method:
            body["RetrieveMethod"] = method
        async with http.post(f"{found['Path']}/retrieve", json=body) as resp:
            if resp.status != 200:
                print(f"retrieve failed ({resp.status}): {await resp.text()}", file=sys.stderr)
                return 1
            job = await resp.json()
        print(f"retrieved {len(job['Query'])} resource(s) from {job['RemoteAet']}"
              + (f" to {job['TargetAet']}" if "TargetAet" in job else ""))
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8042")
    parser.add_argument("--modality", required=True, help="symbolic name of the remote modality")
    parser.add_argument("--level", default="Study", choices=["Patient", "Study", "Series", "Instance"])
    parser.add_argument("--query", action="append", default=[], metavar="TAG=VALUE")
    parser.add_argument("--method", choices=["C-MOVE", "C-GET"], help="default: the modality's RetrieveMethod")
    parser.add_argument("--dry-run", action="store_true", help="query only")
    args = parser.parse_args()
    query = dict(item.split("=", 1) for item in args.query)
    return asyncio.run(query_and_retrieve(args.url.rstrip("/"), args.modality, args.level, query,
                                          args.method, args.dry_run))


if __name__ == "__main__":
    sys.exit(main())
