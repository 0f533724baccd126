"""DICOMweb benchmark (issue 11 item 6): orthanc_lite against real Orthanc + its DICOMweb plugin, same run.

    python -m bench.dicomweb [--instances 500] [--runs 10] [--no-orthanc]

One series of `--instances` small CT images goes to each server through STOW-RS (batches of 50 parts), then:
series metadata cold (first request) and warm (p50 of `--runs`), QIDO-RS study search (p50), WADO-RS retrieve of
the whole series (instances/s). Prints the ratios and the targets; writes bench/results/<timestamp>-dicomweb.json.
Also a section of `python -m bench` (its own servers: the main ones run Orthanc without plugins).
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
from typing import Any

import aiohttp

from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, spawn_orthanc, spawn_orthanc_lite

STUDY = "1.2.826.0.1.3680043.8.498.77"
SERIES = STUDY + ".1"
BATCH = 50


def make_series(count: int) -> list[bytes]:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    files = []
    for n in range(1, count + 1):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = f"{SERIES}.{n}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "BENCH^DW", "CT"
        ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, n
        ds.ImagePositionPatient = [0, 0, n]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.Rows = ds.Columns = 64
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = bytes(64 * 64 * 2)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        files.append(out.getvalue())
    del pydicom
    return files


def stow_body(files: list[bytes]) -> bytes:
    parts = [b"--BENCH\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n" for f in files]
    return b"".join(parts) + b"--BENCH--\r\n"


async def measure(url: str, files: list[bytes], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stow_type = "multipart/related; type=application/dicom; boundary=BENCH"
    async with aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=600)) as http:
        started = time.perf_counter()
        for i in range(0, len(files), BATCH):
            async with http.post("/dicom-web/studies", data=stow_body(files[i:i + BATCH]),
                                 headers={"Content-Type": stow_type}) as resp:
                assert resp.status == 200, await resp.text()
        out["stow"] = {"instances_per_s": round(len(files) / (time.perf_counter() - started), 1)}
        metadata = f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
        started = time.perf_counter()
        async with http.get(metadata) as resp:
            assert resp.status == 200
            assert len(await resp.json(content_type=None)) == len(files)
        out["metadata_cold"] = {"p50_ms": round((time.perf_counter() - started) * 1000, 1)}
        out["metadata_warm"] = {"p50_ms": await _p50(http, metadata, runs)}
        out["qido_studies"] = {"p50_ms": await _p50(http, "/dicom-web/studies?PatientID=BENCH", runs)}
        started = time.perf_counter()
        async with http.get(f"/dicom-web/studies/{STUDY}/series/{SERIES}") as resp:
            assert resp.status == 200
            body = await resp.read()
        seconds = time.perf_counter() - started
        out["retrieve_series"] = {"instances_per_s": round(len(files) / seconds, 1), "bytes": len(body)}
    return out


async def _p50(http: aiohttp.ClientSession, path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        async with http.get(path) as resp:
            assert resp.status == 200
            await resp.read()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


async def run(workdir: str, quick: bool = False, runs: int = 10, instances: int | None = None,
              with_orthanc: bool = True) -> dict[str, Any]:
    """Both servers on fresh storage, the same series into each, the figures side by side."""
    count = instances or (100 if quick else 500)
    files = make_series(count)
    root = pathlib.Path(workdir) / "dicomweb"
    config = {"StableAge": 600}  # the cold figure must be cold: no StableSeries precomputation meanwhile
    results: dict[str, Any] = {"instances": count}
    lite = spawn_orthanc_lite(root / "lite", config, timeout=60)
    try:
        results["lite"] = await measure(lite.url, files, runs)
    finally:
        lite.stop()
    if with_orthanc and ORTHANC_AVAILABLE:
        orthanc = spawn_orthanc(root / "orthanc", config, plugins=True, timeout=60)
        try:
            results["orthanc"] = await measure(orthanc.url, files, runs)
        finally:
            orthanc.stop()
    figures = {}
    for name in ("stow", "metadata_cold", "metadata_warm", "qido_studies", "retrieve_series"):
        figures[name] = {"lite": results["lite"][name], "orthanc": results.get("orthanc", {}).get(name)}
    results["figures"] = figures
    return figures | {"_detail": results}


TARGETS = {"metadata_warm": "<= 200 ms and <= 0.5x Orthanc", "qido_studies": "<= 0.5x Orthanc",
           "retrieve_series": ">= 1x Orthanc (throughput)", "stow": ">= 0.8x Orthanc (throughput)",
           "metadata_cold": "(no target)"}


def print_table(figures: dict[str, Any]) -> None:
    print(f"{'figure':18} {'orthanc_lite':>14} {'Orthanc':>14} {'ratio':>8}  target")
    for name, sides in figures.items():
        if name.startswith("_"):
            continue
        lite, orthanc = sides["lite"], sides["orthanc"]
        unit = "p50_ms" if "p50_ms" in lite else "instances_per_s"
        theirs = orthanc.get(unit) if orthanc else None
        ratio = f"{lite[unit] / theirs:.2f}" if theirs else "-"
        print(f"{name:18} {lite[unit]:>10} {unit[:4]:3} {theirs if theirs is not None else '-':>10}      {ratio:>8}  "
              f"{TARGETS[name]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dicomweb")
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dicomweb-") as workdir:
        figures = asyncio.run(run(workdir, runs=args.runs, instances=args.instances,
                                  with_orthanc=not args.no_orthanc))
    print_table(figures)
    results = pathlib.Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    (results / f"{stamp}-dicomweb.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
