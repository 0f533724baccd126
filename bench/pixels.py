"""Pixel benchmark (issue 10): preview latency on a mixed set of transfer syntaxes (64x64 and 512x512), and
transcoding a compressed instance to explicit little endian, orthanc_lite next to real Orthanc.

    python -m bench.pixels [--runs N] [--no-orthanc] [--json OUT]

Called by the main harness (`python -m bench`) as `await run(base_url_lite, base_url_orthanc, runs)`, or standalone
(it then starts its own pair of servers on fresh storage). The images are synthetic (a 16-bit CT-like gradient with
noise, an 8-bit one for JPEG baseline), converted with orthanc_lite's own transcoder and uploaded to both servers
with distinct UIDs. Requests alternate the servers one by one so that outside load hits both alike.

Transcoding is measured two ways: JPEG-LS -> explicit little endian on both servers (orthanc_lite: GET
/instances/{id}/file?transcode=; Orthanc 1.10.1, which lacks that argument: POST /instances/{id}/modify with
"Transcode"), and JPEG 2000 -> explicit little endian on orthanc_lite only (Debian's Orthanc 1.10.1 has no JPEG 2000
decoder).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any, Final

import aiohttp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SYNTAXES: Final = {
    "1.2.840.10008.1.2.1": "Explicit LE", "1.2.840.10008.1.2.4.70": "JPEG lossless", "1.2.840.10008.1.2.4.80":
    "JPEG-LS", "1.2.840.10008.1.2.5": "RLE", "1.2.840.10008.1.2.4.50": "JPEG baseline (8-bit)",
}
SIZES: Final = (64, 512)
EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"


def make_instance(size: int, bits: int, seed: int) -> bytes:
    """An uncompressed CT-like image: a radial gradient with noise (compresses like real data, not like zeros)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    radius = np.hypot(x - size / 2, y - size / 2) / size
    top = 255 if bits == 8 else 4000
    pixels = np.clip(top * (1 - radius) + rng.normal(0, top / 50, (size, size)), 0, top)
    pixels = pixels.astype(np.uint8 if bits == 8 else np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "BENCHPIX", "Bench^Pixels", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def sample_set() -> dict[tuple[str, int], bytes]:
    """(syntax, size) -> DICOM file, converted with orthanc_lite's transcoder."""
    from orthanc_lite.dicom.transcode import transcode_file

    files: dict[tuple[str, int], bytes] = {}
    for size in SIZES:
        for n, syntax in enumerate(SYNTAXES):
            bits = 8 if syntax == "1.2.840.10008.1.2.4.50" else 12
            files[(syntax, size)] = transcode_file(make_instance(size, bits, seed=size + n), syntax, 90)
    return files


async def _upload(http: aiohttp.ClientSession, url: str, data: bytes) -> str:
    async with http.post(url + "/instances", data=data) as resp:
        resp.raise_for_status()
        return str((await resp.json())["ID"])


async def _timed_get(http: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with http.get(url) as resp:
        await resp.read()
        resp.raise_for_status()
    return (time.perf_counter() - start) * 1000


async def _timed_post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    async with http.post(url, json=body) as resp:
        await resp.read()
        resp.raise_for_status()
    return (time.perf_counter() - start) * 1000


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2), "n": len(ordered)}


async def run(base_url_lite: str, base_url_orthanc: str | None = None, runs: int = 20) -> dict[str, Any]:
    """Upload the sample set to both servers, then time previews and transcodings."""
    from orthanc_lite.dicom.transcode import transcode_file

    files = await asyncio.to_thread(sample_set)
    j2k = await asyncio.to_thread(transcode_file, make_instance(512, 12, seed=99), "1.2.840.10008.1.2.4.90", 90)
    servers = {"lite": base_url_lite, **({"orthanc": base_url_orthanc} if base_url_orthanc else {})}
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        ids = {side: {key: await _upload(http, url, data) for key, data in files.items()}
               for side, url in servers.items()}
        j2k_id = await _upload(http, base_url_lite, j2k)
        for size in SIZES:
            times: dict[str, list[float]] = {side: [] for side in servers}
            per_syntax: dict[str, dict[str, list[float]]] = {}
            for _ in range(runs):
                for syntax in SYNTAXES:
                    for side, url in servers.items():
                        ms = await _timed_get(http, f"{url}/instances/{ids[side][(syntax, size)]}/preview")
                        times[side].append(ms)
                        per_syntax.setdefault(SYNTAXES[syntax], {}).setdefault(side, []).append(ms)
            results[f"preview {size}x{size} (mixed syntaxes)"] = {
                "lite": _stats(times["lite"]), "orthanc": _stats(times["orthanc"]) if "orthanc" in times else None,
                "per_syntax_p50_ms": {name: {side: round(statistics.median(v), 2) for side, v in sides.items()}
                                      for name, sides in per_syntax.items()}}
        transcode: dict[str, list[float]] = {side: [] for side in servers}
        source = ("1.2.840.10008.1.2.4.80", 512)
        for _ in range(runs):
            transcode["lite"].append(await _timed_get(
                http, f"{base_url_lite}/instances/{ids['lite'][source]}/file?transcode={EXPLICIT_LE}"))
            if "orthanc" in servers:
                transcode["orthanc"].append(await _timed_post(
                    http, f"{base_url_orthanc}/instances/{ids['orthanc'][source]}/modify",
                    {"Transcode": EXPLICIT_LE, "Force": True}))
        results["transcode JPEG-LS 512x512 -> explicit LE"] = {
            "lite": _stats(transcode["lite"]),
            "orthanc": _stats(transcode["orthanc"]) if "orthanc" in servers else None}
        j2k_times = [await _timed_get(http, f"{base_url_lite}/instances/{j2k_id}/file?transcode={EXPLICIT_LE}")
                     for _ in range(runs)]
        results["transcode JPEG 2000 512x512 -> explicit LE"] = {
            "lite": _stats(j2k_times), "orthanc": None,
            "note": "Debian's Orthanc 1.10.1 cannot decode JPEG 2000"}
    return results


def _table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':48} {'lite p50':>10} {'Orthanc p50':>12} {'ratio':>7}"]
    for name, entry in results.items():
        lite = entry["lite"]["p50_ms"]
        orthanc = entry["orthanc"]["p50_ms"] if entry.get("orthanc") else None
        ratio = f"{lite / orthanc:.2f}" if orthanc else "-"
        lines.append(f"{name:48} {lite:>8.1f}ms {(f'{orthanc:.1f}ms' if orthanc else 'n/a'):>12} {ratio:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pixels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="requests per image and figure (default 10)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure orthanc_lite only")
    parser.add_argument("--json", help="write the results here instead of bench/results/<timestamp>-pixels.json")
    args = parser.parse_args(argv)

    from bench.servers import LITE, ORTHANC, ORTHANC_AVAILABLE, start

    with tempfile.TemporaryDirectory(prefix="bench-pixels-") as folder:
        workdir = pathlib.Path(folder)
        lite = start(LITE, workdir)
        orthanc = start(ORTHANC, workdir) if ORTHANC_AVAILABLE and not args.no_orthanc else None
        try:
            results = asyncio.run(run(lite.url, orthanc.url if orthanc else None, args.runs))
        finally:
            lite.stop()
            if orthanc is not None:
                orthanc.stop()
    print(_table(results))
    out = pathlib.Path(args.json) if args.json else ROOT / "bench" / "results" / (
        datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + "-pixels.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
