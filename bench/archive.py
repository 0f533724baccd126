"""Archive throughput (issue 10 item 7): GET /studies/{id}/archive in MB of DICOM per second, orthanc_lite
next to real Orthanc, downloads alternating between the servers so that outside load hits both alike.

As a section of `python -m bench` it uploads its own study into both running servers. Standalone, with a small
study only (the quick check of the issue): `python -m bench.archive [--instances 40] [--runs 5]` starts both
servers itself, prints the figures and writes them to bench/results/<timestamp>-archive.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydicom.uid import generate_uid  # noqa: E402

from tests.data.make_samples import make_instance  # noqa: E402

SIDE = 512  # a CT-sized slice: 512 x 512 x 16 bits = 0.5 MB


def study_files(count: int, seed: int = 1) -> list[bytes]:
    """A CT-like series: smooth anatomy plus noise, so that deflate gains about as much as on real CT."""
    rng = np.random.default_rng(seed)
    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    out = []
    for i in range(count):
        body = ((x - 256) ** 2 + (y - 256) ** 2 < (200 - i % 20) ** 2) * 1000
        pixels = (body + rng.normal(0, 20, (SIDE, SIDE)) + 1024).clip(0, 4095).astype(np.uint16)
        out.append(make_instance("BENCH", "Bench^Archive", study_uid=study, series_uid=series, instance_number=i + 1,
                                 size=SIDE, PixelData=pixels.tobytes()))
    return out


async def _upload(http: aiohttp.ClientSession, url: str, files: list[bytes]) -> str:
    study = ""
    for data in files:
        async with http.post(url + "/instances", data=data) as resp:
            resp.raise_for_status()
            study = (await resp.json())["ParentStudy"]
    return study


async def _download(http: aiohttp.ClientSession, url: str) -> tuple[float, int, float]:
    """(seconds, ZIP bytes, seconds to the first byte)."""
    start = time.perf_counter()
    first = 0.0
    size = 0
    async with http.get(url) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_chunked(1 << 20):
            if not size:
                first = time.perf_counter() - start
            size += len(chunk)
    return time.perf_counter() - start, size, first


async def run(base_url_lite: str, base_url_orthanc: str | None = None, runs: int = 5, quick: bool = False,
              instances: int | None = None) -> dict[str, Any]:
    count = instances or (20 if quick else 40)
    files = study_files(count)
    dicom_mb = sum(len(f) for f in files) / 1e6
    urls = {"lite": base_url_lite}
    if base_url_orthanc:
        urls["orthanc"] = base_url_orthanc
    timings: dict[str, list[tuple[float, int, float]]] = {name: [] for name in urls}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        studies = {name: await _upload(http, url, files) for name, url in urls.items()}
        for name, url in urls.items():  # warm-up: page cache and first-use costs
            await _download(http, f"{url}/studies/{studies[name]}/archive")
        for _ in range(max(1, runs)):
            for name, url in urls.items():
                timings[name].append(await _download(http, f"{url}/studies/{studies[name]}/archive"))
    figures: dict[str, Any] = {}
    for name, samples in timings.items():
        seconds = statistics.median(s for s, _, _ in samples)
        figures[name] = {
            "per_s": round(dicom_mb / seconds, 1),  # MB of DICOM archived per second
            "seconds_p50": round(seconds, 3),
            "first_byte_ms_p50": round(1000 * statistics.median(f for _, _, f in samples), 1),
            "zip_mb": round(samples[0][1] / 1e6, 2),
        }
    result: dict[str, Any] = {
        "archive_mb_per_s": {"lite": figures["lite"], "orthanc": figures.get("orthanc")},
        "study": {"instances": count, "dicom_mb": round(dicom_mb, 2)},
    }
    if "orthanc" in figures:
        result["ratio_lite_over_orthanc"] = round(figures["lite"]["per_s"] / figures["orthanc"]["per_s"], 2)
    return result


def main(argv: list[str] | None = None) -> None:
    from bench.servers import LITE, ORTHANC, ORTHANC_AVAILABLE, start

    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=40, help="instances of 0.5 MB in the study (default 40)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        servers = [start(LITE, pathlib.Path(tmp))]
        if ORTHANC_AVAILABLE and not args.no_orthanc:
            servers.append(start(ORTHANC, pathlib.Path(tmp)))
        try:
            result = asyncio.run(run(servers[0].url, servers[1].url if len(servers) > 1 else None, args.runs,
                                     instances=args.instances))
        finally:
            for server in servers:
                server.stop()
    text = json.dumps(result, indent=2)
    print(text)
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-archive.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
