"""Benchmark of /tools/find and /tools/count-resources on a 100,000-instance store (issue #3).

    python -m bench.find [--patients 1000] [--runs 50] [--no-orthanc] [--workdir DIR] [--json OUT]

Generates (once, cached under --workdir) 1,000 patients x 4 studies x 5 series x 5 instances of small
synthetic CT images, ingests them over REST into orthanc_lite (a `python -m orthanc_lite` subprocess)
and, when /usr/sbin/Orthanc exists, into real Orthanc, then measures study-level Expand + Limit 100
queries (p50/p95 over `runs`): PatientName wildcard, StudyDate range, ModalitiesInStudy, a label,
computed RequestedTags, and count-resources. Orthanc 1.10.1 has no labels, RequestedTags or
count-resources: for those its figure is None (count: the equivalent ID-only /tools/find).

`run(base_url_lite, base_url_orthanc)` measures servers that already hold such a store, so that the
main bench harness can share the generated store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORTHANC_BIN = "/usr/sbin/Orthanc"
LABEL = "bench"
STUDIES_PER_PATIENT = 4
SERIES_PER_STUDY = 5
INSTANCES_PER_SERIES = 5
MODALITIES = ("CT", "CT", "CT", "MR", "MR", "US", "CR", "DX", "PT", "NM")
SURNAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "MARTIN", "LOPEZ",
            "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "WHITE", "HARRIS", "CLARK", "LEWIS",
            "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL",
            "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL", "CARTER")
GIVEN = ("JOHN", "MARY", "JAMES", "ANNA", "ROBERT", "LINDA", "MICHAEL", "SARAH", "DAVID", "LAURA")

# The queries of issue #3 (all at study level, Expand + Limit 100), plus count-resources.
QUERIES: dict[str, tuple[str, dict[str, Any], bool]] = {
    # name: (route, body, Orthanc 1.10.1 supports it)
    "patient_name_wildcard": ("/tools/find", {"Level": "Study", "Query": {"PatientName": "BR*"},
                                              "Expand": True, "Limit": 100}, True),
    "study_date_range": ("/tools/find", {"Level": "Study", "Query": {"StudyDate": "20200101-20201231"},
                                         "Expand": True, "Limit": 100}, True),
    "modalities_in_study": ("/tools/find", {"Level": "Study", "Query": {"ModalitiesInStudy": "PT"},
                                            "Expand": True, "Limit": 100}, True),
    "label": ("/tools/find", {"Level": "Study", "Query": {}, "Labels": [LABEL], "Expand": True, "Limit": 100}, False),
    "computed_tags": ("/tools/find", {"Level": "Study", "Query": {"StudyDate": "20200101-"},
                                      "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                                                        "NumberOfStudyRelatedInstances", "SOPClassesInStudy"],
                                      "Expand": True, "Limit": 100}, False),
    "count_resources": ("/tools/count-resources", {"Level": "Study", "Query": {"PatientName": "BR*"}}, False),
}
# What Orthanc 1.10.1 runs instead of count-resources: the same filter, identifiers only.
ORTHANC_COUNT_EQUIVALENT = {"Level": "Study", "Query": {"PatientName": "BR*"}}


# --- the synthetic store ------------------------------------------------------------------------

_PH = {  # placeholder -> width; each appears in the template a known number of times
    "patient_id": ("PQQQQQQQ", 1),
    "patient_name": ("NQQQQQQQQQQQQQQQQQQQQQQQ", 1),
    "study_uid": ("1.2.276.0.7230010.3.1.99999991", 1),
    "series_uid": ("1.2.276.0.7230010.3.2.8888888881", 1),
    "sop_uid": ("1.2.276.0.7230010.3.3.7777777771", 2),   # dataset + file meta
    "study_date": ("20991231", 1),
    "modality": ("ZZ", 1),
    "instance_number": ("999997", 1),
}


def _template() -> tuple[bytes, dict[str, list[int]]]:
    """One small CT instance with fixed-width placeholders, and where each placeholder sits."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = _PH["sop_uid"][0]
    ds.StudyDate = _PH["study_date"][0]
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACC"
    ds.Modality = _PH["modality"][0]
    ds.StudyDescription = "Bench study"
    ds.SeriesDescription = "Bench series"
    ds.PatientName = _PH["patient_name"][0]
    ds.PatientID = _PH["patient_id"][0]
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _PH["study_uid"][0]
    ds.SeriesInstanceUID = _PH["series_uid"][0]
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = _PH["instance_number"][0]
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = _PH["sop_uid"][0]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    where: dict[str, list[int]] = {}
    for key, (ph, expected) in _PH.items():
        positions = [i for i in range(len(data)) if data.startswith(ph.encode(), i)]
        if len(positions) != expected:
            raise RuntimeError(f"placeholder {key} found {len(positions)} times")
        where[key] = positions
    return data, where


def study_uid(study: int) -> str:
    return f"1.2.276.0.7230010.3.1.1{study:07d}"


def patient_values(p: int) -> tuple[str, str]:
    return f"P{p:07d}", f"{SURNAMES[p % len(SURNAMES)]}^{GIVEN[(p // len(SURNAMES)) % len(GIVEN)]}"


def generate(patients: int, seed: int = 3) -> Iterator[tuple[str, str, bytes]]:
    """(patient id, study uid, bytes) of every instance, deterministic."""
    rnd = random.Random(seed)
    template, where = _template()
    buf = bytearray(template)
    study = series = instance = 0
    for p in range(patients):
        pid, name = patient_values(p)
        for _ in range(STUDIES_PER_PATIENT):
            study += 1
            uid = study_uid(study)
            date = f"{rnd.randint(2015, 2024)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
            for _ in range(SERIES_PER_STUDY):
                series += 1
                modality = rnd.choice(MODALITIES)
                for n in range(INSTANCES_PER_SERIES):
                    instance += 1
                    values = {"patient_id": pid, "patient_name": name, "study_uid": uid,
                              "series_uid": f"1.2.276.0.7230010.3.2.1{series:09d}",
                              "sop_uid": f"1.2.276.0.7230010.3.3.1{instance:09d}",
                              "study_date": date, "modality": modality, "instance_number": f"{n + 1:6d}"}
                    for key, positions in where.items():
                        width = len(_PH[key][0])
                        raw = values[key].ljust(width).encode()
                        assert len(raw) == width
                        for pos in positions:
                            buf[pos:pos + width] = raw
                    yield pid, uid, bytes(buf)


async def ingest(base_url: str, patients: int, concurrency: int = 8) -> None:
    """Upload the whole store over REST with several concurrent clients."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=concurrency * 4)
    async with aiohttp.ClientSession(base_url=base_url) as http:
        async def worker() -> None:
            while True:
                data = await queue.get()
                if data is None:
                    return
                async with http.post("/instances", data=data) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"upload failed: {resp.status} {await resp.text()}")
                    await resp.read()

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        start = time.perf_counter()
        total = 0
        for _, _, data in generate(patients):
            await queue.put(data)
            total += 1
            if total % 10000 == 0:
                print(f"  {base_url}: {total} instances, {total / (time.perf_counter() - start):.0f}/s", flush=True)
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)


async def label_studies(base_url: str, patients: int, every: int = 10) -> None:
    """Put LABEL on one study in `every` (orthanc_lite only: Orthanc 1.10.1 has no labels)."""
    from orthanc_lite import ids

    async with aiohttp.ClientSession(base_url=base_url) as http:
        study = 0
        for p in range(patients):
            pid, _ = patient_values(p)
            for _ in range(STUDIES_PER_PATIENT):
                study += 1
                if study % every:
                    continue
                sid = ids.study_id(pid, study_uid(study))
                async with http.put(f"/studies/{sid}/labels/{LABEL}", data=b"") as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"label failed: {resp.status} {await resp.text()}")


# --- measuring ----------------------------------------------------------------------------------


async def _time(http: aiohttp.ClientSession, route: str, body: dict[str, Any], runs: int) -> dict[str, Any]:
    payload = json.dumps(body).encode()
    samples: list[float] = []
    size = 0
    for i in range(runs + 3):
        start = time.perf_counter()
        async with http.post(route, data=payload) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{route} {body}: {resp.status} {data[:300]!r}")
        elapsed = (time.perf_counter() - start) * 1000
        if i >= 3:  # warm-up
            samples.append(elapsed)
        answer = json.loads(data)
        size = answer["Count"] if isinstance(answer, dict) else len(answer)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
            "answers": size}


async def ensure_labels(base_url_lite: str, wanted: int = 200, every: int = 10) -> None:
    """Label one study in `every` with LABEL when the store has too few (e.g. the main harness's store)."""
    body = {"Level": "Study", "Query": {}, "Labels": [LABEL]}
    async with aiohttp.ClientSession(base_url=base_url_lite) as http:
        async with http.post("/tools/count-resources", json=body) as resp:
            if resp.status == 200 and (await resp.json())["Count"] >= wanted:
                return
        async with http.get("/studies") as resp:
            studies = await resp.json()
        for sid in studies[::every]:
            async with http.put(f"/studies/{sid}/labels/{LABEL}", data=b"") as resp:
                await resp.read()


async def run(base_url_lite: str, base_url_orthanc: str | None = None, runs: int = 50) -> dict[str, Any]:
    """Measure every query on both servers (which hold a store such as `generate`'s or bench/store.py's)."""
    await ensure_labels(base_url_lite)
    results: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        lite = await stack.enter_async_context(aiohttp.ClientSession(base_url=base_url_lite))
        orthanc = (await stack.enter_async_context(aiohttp.ClientSession(base_url=base_url_orthanc))
                   if base_url_orthanc else None)
        for name, (route, body, orthanc_supports) in QUERIES.items():
            entry: dict[str, Any] = {"query": body, "lite": await _time(lite, route, body, runs)}
            if orthanc is not None:
                if orthanc_supports:
                    entry["orthanc"] = await _time(orthanc, route, body, runs)
                elif name == "count_resources":
                    entry["orthanc"] = await _time(orthanc, "/tools/find", ORTHANC_COUNT_EQUIVALENT, runs)
                    entry["orthanc_note"] = "Orthanc 1.10.1 has no count-resources: ID-only /tools/find instead"
                else:
                    entry["orthanc"] = None
            results[name] = entry
    return results


# --- servers (bench/servers.py: subprocesses on free ports) -------------------------------------

SERVER_CONFIG: dict[str, Any] = {"SyncStorageArea": False, "StableAge": 3600, "LimitFindResults": 0,
                                 "LimitFindInstances": 0}


@contextlib.asynccontextmanager
async def _server(kind: str, workdir: str) -> AsyncIterator[str]:
    """orthanc_lite or Orthanc on the storage under workdir/<kind> (kept between runs), on free ports."""
    from .servers import LITE, ORTHANC, start

    name = LITE if kind == "lite" else ORTHANC
    server = await asyncio.to_thread(start, name, pathlib.Path(workdir), dict(SERVER_CONFIG))
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


async def prepare(kind: str, workdir: str, patients: int) -> None:
    """Ingest the store under workdir/<kind> unless a previous run completed it."""
    folder = pathlib.Path(workdir) / ("orthanc_lite" if kind == "lite" else "orthanc")
    marker = folder / f"complete-{patients}"
    if marker.exists():
        return
    await asyncio.to_thread(shutil.rmtree, folder, True)
    async with _server(kind, workdir) as url:
        start = time.perf_counter()
        await ingest(url, patients)
        if kind == "lite":
            await label_studies(url, patients)
        print(f"{kind}: store ready in {time.perf_counter() - start:.0f} s", flush=True)
    await asyncio.to_thread(marker.write_text, "ok")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with_orthanc = os.path.exists(ORTHANC_BIN) and not args.no_orthanc
    workdir = os.path.join(args.workdir, f"p{args.patients}")
    await prepare("lite", workdir, args.patients)
    if with_orthanc:
        await prepare("orthanc", workdir, args.patients)
    async with contextlib.AsyncExitStack() as stack:
        lite_url = await stack.enter_async_context(_server("lite", workdir))
        orthanc_url = await stack.enter_async_context(_server("orthanc", workdir)) if with_orthanc else None
        results = await run(lite_url, orthanc_url, args.runs)
    return {"instances": args.patients * STUDIES_PER_PATIENT * SERIES_PER_STUDY * INSTANCES_PER_SERIES,
            "runs": args.runs, "queries": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.find", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1000, help="x 100 instances each (default 1000)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-orthanc", action="store_true", help="do not measure real Orthanc")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "orthanc_lite_bench_find"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
