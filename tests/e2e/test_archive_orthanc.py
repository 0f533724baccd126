"""Archives and media compared with real Orthanc 1.10.1 on the shared test data.

1.10.1 predates two documented changes that we follow (Orthanc 1.13 is the spec): folder parts are joined by
" - " and the series folder starts with SeriesNumber (1.12.12), and the files of a series are numbered by
IndexInSeries (1.12.6) instead of 0, 1, 2..., and "-" is kept in names. So the comparison maps our names back
to 1.10.1's spelling (" - " -> " ", no "-", no SeriesNumber) and compares the files of each folder by content. DICOMDIR records are
compared field by field, offsets aside (they depend on the record order, which 1.13 also changed).
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict

import aiohttp
import pytest
import requests
from pydicom import dcmread

import orthanc_lite

from tests.conftest import testdata, upload
from tests.e2e.orthanc_peer import ServerProcess, requires_orthanc
from tests.e2e.orthanc_peer import orthanc_peer  # noqa: F401  (fixture)

pytestmark = [pytest.mark.orthanc, requires_orthanc]

FILES = [*sorted(testdata("Series").glob("*.dcm")), testdata("SignedCT.dcm"), testdata("sample-pdf.dcm"),
         testdata("MarekLatin2.dcm"), testdata("ColorTestMalaterre.dcm"), testdata("Issue19.dcm"),
         testdata("KarstenHilbertRF.dcm"), testdata("DicomSeg.dcm")]


def _their_zip(peer: ServerProcess, path: str) -> zipfile.ZipFile:
    resp = requests.get(peer.url + path, timeout=60)
    assert resp.status_code == 200, resp.text
    return zipfile.ZipFile(io.BytesIO(resp.content))


async def _our_zip(http: aiohttp.ClientSession, path: str) -> zipfile.ZipFile:
    async with http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return zipfile.ZipFile(io.BytesIO(await resp.read()))


def _as_1_10(name: str, series_numbers: set[str]) -> str:
    """Our 1.13 folder path spelled as 1.10.1 does."""
    patient, study, series, _file = name.split("/")
    parts = series.split(" - ")
    if len(parts) > 1 and parts[0] in series_numbers:
        parts = parts[1:]
    # 1.10.1's KeepAlphanumeric also dropped "-", which 1.13's NormalizePath keeps (its own separator); "-"
    # goes on both sides, as the "-2" that makes a repeated name unique is spelled alike.
    return "/".join(p.replace(" - ", " ").replace("-", "") for p in (patient, study, " ".join(parts)))


def _folders(z: zipfile.ZipFile, rename=lambda folder: folder) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for name in z.namelist():
        out[rename(name)].append(z.read(name))
    return {k: sorted(v) for k, v in out.items()}


def _records(dicomdir: bytes) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    ds = dcmread(io.BytesIO(dicomdir))
    out = []
    for rec in ds.DirectoryRecordSequence:
        fields = tuple(sorted((el.keyword, str(el.value)) for el in rec
                              if not el.keyword.startswith("OffsetOf") and el.keyword != "ReferencedFileID"))
        out.append((str(rec.DirectoryRecordType), fields))
    return sorted(out)


async def test_archives_and_media_match_orthanc(orthanc_peer: ServerProcess,  # noqa: F811 server: orthanc_lite.Server,
                                                http: aiohttp.ClientSession) -> None:
    for path in FILES:
        await upload(http, path)
        assert requests.post(orthanc_peer.url + "/instances", data=path.read_bytes(), timeout=30).status_code == 200
    async with http.get("/series?expand") as resp:
        series_numbers = {s["MainDicomTags"].get("SeriesNumber", "") for s in await resp.json()} - {""}
    async with http.get("/patients") as resp:
        patients = sorted(await resp.json())
    assert patients == sorted(requests.get(orthanc_peer.url + "/patients", timeout=10).json())

    for patient in patients:
        ours = await _our_zip(http, f"/patients/{patient}/archive")
        theirs = _their_zip(orthanc_peer, f"/patients/{patient}/archive")
        assert _folders(ours, lambda n: _as_1_10(n, series_numbers)) == \
            _folders(theirs, lambda n: n.rsplit("/", 1)[0].replace("-", "")), patient
        # Same file name prefixes (modality letters, width), numbers aside.
        assert sorted(n.rsplit("/", 1)[1].rstrip("0123456789.dcm") for n in ours.namelist()) == \
            sorted(n.rsplit("/", 1)[1].rstrip("0123456789.dcm") for n in theirs.namelist())

        for suffix in ("", "?extended"):
            ours = await _our_zip(http, f"/patients/{patient}/media{suffix}")
            theirs = _their_zip(orthanc_peer, f"/patients/{patient}/media{suffix}")
            assert sorted(ours.namelist()) == sorted(theirs.namelist())
            assert sorted(ours.read(n) for n in ours.namelist() if n != "DICOMDIR") == \
                sorted(theirs.read(n) for n in theirs.namelist() if n != "DICOMDIR")
            assert _records(ours.read("DICOMDIR")) == _records(theirs.read("DICOMDIR")), (patient, suffix)


async def test_async_job_content_matches_orthanc(orthanc_peer: ServerProcess, server: orthanc_lite.Server,  # noqa: F811
                                                 http: aiohttp.ClientSession) -> None:
    import asyncio
    import time

    for path in FILES[:5]:
        await upload(http, path)
        requests.post(orthanc_peer.url + "/instances", data=path.read_bytes(), timeout=30)
    async with http.get("/patients") as resp:
        patients = await resp.json()
    for route, job_type in (("/tools/create-archive", "Archive"), ("/tools/create-media", "Media")):
        body = {"Resources": patients, "Asynchronous": True}
        async with http.post(route, json=body) as resp:
            ours_id = (await resp.json())["ID"]
        theirs_id = requests.post(orthanc_peer.url + route, json=body, timeout=30).json()["ID"]
        await server.jobs.join()
        async with http.get(f"/jobs/{ours_id}") as resp:
            ours = await resp.json()
        deadline = time.monotonic() + 30
        while (theirs := requests.get(f"{orthanc_peer.url}/jobs/{theirs_id}", timeout=10).json())["State"] != "Success":
            assert time.monotonic() < deadline and theirs["State"] in ("Pending", "Running")
            await asyncio.sleep(0.05)
        assert ours["Type"] == theirs["Type"] == job_type
        assert set(ours["Content"]) == set(theirs["Content"])
        for key in ("Description", "InstancesCount", "UncompressedSize", "UncompressedSizeMB"):
            assert ours["Content"][key] == theirs["Content"][key], key
        assert type(ours["Content"]["ArchiveSize"]) is type(theirs["Content"]["ArchiveSize"])
        ours_zip = zipfile.ZipFile(io.BytesIO(await (await http.get(f"/jobs/{ours_id}/archive")).read()))
        theirs_resp = requests.get(f"{orthanc_peer.url}/jobs/{theirs_id}/archive", timeout=30)
        theirs_zip = zipfile.ZipFile(io.BytesIO(theirs_resp.content))
        assert len(ours_zip.namelist()) == len(theirs_zip.namelist())
