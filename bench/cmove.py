"""python -m bench.cmove [--instances 1000] [--json PATH]

C-MOVE of one study from real Orthanc into orthanc_lite, driven through orthanc_lite's REST API
(POST /modalities/orthanc/move, a synchronous DicomMoveScu job). Reported with no target. For reference,
the same study moved by real Orthanc into a second real Orthanc. Small CT instances (8x8 pixels) built with
tests/data/make_samples.py, uploaded over REST 4 at a time. Writes bench/results/<timestamp>-cmove.json.
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


async def run(instances: int, workdir: pathlib.Path) -> dict[str, Any]:
    from pydicom.uid import generate_uid

    if not ORTHANC_AVAILABLE:
        return {"skipped": "real Orthanc is not installed"}
    study = generate_uid()
    source = spawn_orthanc(workdir / "source", {"DicomAet": "SOURCE"})
    lite = spawn_orthanc_lite(workdir / "lite", {"DicomAet": "LITE", "DicomModalities": {
        "orthanc": ["SOURCE", "127.0.0.1", source.dicom_port]}})
    reference = spawn_orthanc(workdir / "reference", {"DicomAet": "REFERENCE"})
    try:
        async with aiohttp.ClientSession() as http:
            for name, aet, port in (("lite", "LITE", lite.dicom_port), ("reference", "REFERENCE", reference.dicom_port),
                                    ("self", "SOURCE", source.dicom_port)):
                async with http.put(f"{source.url}/modalities/{name}", json=[aet, "127.0.0.1", port]) as resp:
                    resp.raise_for_status()
        t0 = time.perf_counter()
        await _upload(source.url, instances, study)
        upload_s = time.perf_counter() - t0
        lite_s = await _timed_move(lite.url, "orthanc", study, "LITE")
        lite_count = await _count(lite.url)
        # reference: real Orthanc drives the same move from itself into a second real Orthanc
        ref_s = await _timed_move(source.url, "self", study, "REFERENCE")
        ref_count = await _count(reference.url)
        return {
            "instances": instances, "upload_seconds": round(upload_s, 2),
            "orthanc_lite": {"seconds": round(lite_s, 3), "received": lite_count,
                             "instances_per_second": round(lite_count / lite_s, 1)},
            "orthanc_reference": {"seconds": round(ref_s, 3), "received": ref_count,
                                  "instances_per_second": round(ref_count / ref_s, 1)},
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
        result = asyncio.run(run(args.instances, pathlib.Path(tmp)))
    print(json.dumps(result, indent=2))
    out = pathlib.Path(args.json) if args.json else ROOT / "bench" / "results" / (
        time.strftime("%Y%m%dT%H%M%S") + "-cmove.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
