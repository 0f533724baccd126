"""python -m bench.cmove [--instances 1000] [--json PATH]   (also a section of python -m bench)

C-MOVE of one study from real Orthanc into orthanc_lite, driven through orthanc_lite's REST API
(POST /modalities/orthanc/move, a synchronous DicomMoveScu job). Reported with no target. For reference,
the same study moved by real Orthanc into a second real Orthanc. Small CT instances (8x8 pixels) built with
tests/data/make_samples.py, uploaded over REST 4 at a time. Writes bench/results/<timestamp>-cmove.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

import aiohttp

from .servers import ORTHANC_AVAILABLE, ROOT, spawn_orthanc, spawn_orthanc_lite
from tests.data.make_samples import make_instance


async def _upload(url: str, count: int, study_uid: str) -> None:
    from pydicom.uid import generate_uid

    series = [generate_uid() for _ in range(max(1, count // 100))]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            data = make_instance(patient_id="BENCH", study_uid=study_uid, series_uid=series[i % len(series)],
                                 instance_number=i + 1)
            async with http.post(url + "/instances", data=data) as resp:
                resp.raise_for_status()

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(4)))


async def _count(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url + "/statistics") as resp:
        return int((await resp.json())["CountInstances"])


async def _timed_move(url: str, modality: str, study_uid: str, target: str) -> float:
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": study_uid}], "TargetAet": target}
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http, http.post(f"{url}/modalities/{modality}/move", json=body,
                                                          timeout=aiohttp.ClientTimeout(total=3600)) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"C-MOVE failed: {resp.status} {text}")
    return time.perf_counter() - started


async def run(workdir: str, quick: bool = False, instances: int | None = None) -> dict[str, Any]:
    """The bench section (python -m bench runs it with its workdir): 1,000 instances, 100 with --quick. Its own
    three servers on fresh storage, so the big store of the harness does not turn the move into duplicates."""
    from pydicom.uid import generate_uid

    if not ORTHANC_AVAILABLE:
        return {"skipped": "real Orthanc is not installed"}
    count = instances or (100 if quick else 1000)
    # DCMTK (inside real Orthanc) honours TCP_NODELAY: without it each C-STORE of the move waits for the
    # delayed ACK (~40 ms) and both servers measure Nagle's algorithm instead of themselves.
    os.environ.setdefault("TCP_NODELAY", "1")
    base = pathlib.Path(workdir) / "cmove"
    study = generate_uid()
    source = spawn_orthanc(base / "source", {"DicomAet": "SOURCE"})
    lite = spawn_orthanc_lite(base / "lite", {"DicomAet": "LITE", "DicomModalities": {
        "orthanc": ["SOURCE", "127.0.0.1", source.dicom_port]}})
    reference = spawn_orthanc(base / "reference", {"DicomAet": "REFERENCE"})
    try:
        async with aiohttp.ClientSession() as http:
            for name, aet, port in (("lite", "LITE", lite.dicom_port), ("reference", "REFERENCE", reference.dicom_port),
                                    ("self", "SOURCE", source.dicom_port)):
                async with http.put(f"{source.url}/modalities/{name}", json=[aet, "127.0.0.1", port]) as resp:
                    resp.raise_for_status()
        t0 = time.perf_counter()
        await _upload(source.url, count, study)
        upload_s = time.perf_counter() - t0
        lite_s = await _timed_move(lite.url, "orthanc", study, "LITE")
        lite_count = await _count(lite.url)
        # reference: real Orthanc drives the same move from itself into a second real Orthanc
        ref_s = await _timed_move(source.url, "self", study, "REFERENCE")
        ref_count = await _count(reference.url)
        # "orthanc" is the reference: real Orthanc moving the study into another real Orthanc
        return {
            "instances": count, "upload_seconds": round(upload_s, 2),
            f"C-MOVE of a {count}-instance study from real Orthanc": {
                "lite": {"seconds": round(lite_s, 3), "received": lite_count,
                         "instances_per_s": round(lite_count / lite_s, 1)},
                "orthanc": {"seconds": round(ref_s, 3), "received": ref_count,
                            "instances_per_s": round(ref_count / ref_s, 1)},
            },
        }
    finally:
        for proc in (lite, reference, source):
            proc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cmove", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--json", help="output path (default bench/results/<timestamp>-cmove.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cmove-") as tmp:
        result = asyncio.run(run(tmp, instances=args.instances))
    print(json.dumps(result, indent=2))
    out = pathlib.Path(args.json) if args.json else ROOT / "bench" / "results" / (
        time.strftime("%Y%m%dT%H%M%S") + "-cmove.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
