"""Stable resources, recycling, protection, overwriting and the instance file."""

from __future__ import annotations

import asyncio
import pathlib
import time

import aiohttp

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance


async def _changes(http: aiohttp.ClientSession) -> list[dict]:
    async with http.get("/changes?limit=1000") as resp:
        return (await resp.json())["Changes"]


async def test_stable_changes_after_stable_age(http: aiohttp.ClientSession) -> None:
    answer = await (await http.post("/instances", data=make_instance("STABLE"))).json()
    async with http.get(f"/series/{answer['ParentSeries']}") as resp:
        assert (await resp.json())["IsStable"] is False
    deadline = time.monotonic() + 10
    types: list[str] = []
    while time.monotonic() < deadline:
        types = [c["ChangeType"] for c in await _changes(http)]
        if "StablePatient" in types:
            break
        await asyncio.sleep(0.1)
    assert {"StableSeries", "StableStudy", "StablePatient"} <= set(types)
    async with http.get(f"/studies/{answer['ParentStudy']}") as resp:
        assert (await resp.json())["IsStable"] is True


async def test_recycling_oldest_unprotected_patient(settings: Settings) -> None:
    cfg = settings.replace(MaximumPatientCount=2)
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        first = await (await http.post("/instances", data=make_instance("A"))).json()
        async with http.put(f"/patients/{first['ParentPatient']}/protected", data="1") as resp:
            assert resp.status == 200
        async with http.get(f"/patients/{first['ParentPatient']}/protected") as resp:
            assert await resp.text() == "1"
        second = await (await http.post("/instances", data=make_instance("B"))).json()
        third = await (await http.post("/instances", data=make_instance("C"))).json()
        async with http.get("/patients") as resp:
            remaining = set(await resp.json())
        # A is protected, so B (the oldest unprotected) was recycled to make room for C.
        assert remaining == {first["ParentPatient"], third["ParentPatient"]}
        assert second["ParentPatient"] not in remaining
        async with http.get("/statistics") as resp:
            assert (await resp.json())["CountInstances"] == 2


async def test_reject_mode_gives_507(settings: Settings) -> None:
    cfg = settings.replace(MaximumPatientCount=1, MaximumStorageMode="Reject")
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        assert (await http.post("/instances", data=make_instance("A"))).status == 200
        async with http.post("/instances", data=make_instance("B")) as resp:
            assert resp.status == 507
            assert (await resp.json())["OrthancStatus"] == 19
        async with http.get("/statistics") as resp:
            stats = await resp.json()
        assert stats["CountPatients"] == 1 and stats["CountInstances"] == 1
    # Storage and index still agree: nothing of B was left on disk.
    files = [p for p in pathlib.Path(srv.context.storage.root).rglob("*") if p.is_file() and len(p.name) == 36]
    assert len(files) == 1


async def test_overwrite_instances(settings: Settings) -> None:
    cfg = settings.replace(OverwriteInstances=True)
    data = make_instance("OW", sop_uid="1.2.3.4", study_uid="1.2.3", series_uid="1.2.3.1")
    changed = make_instance("OW", sop_uid="1.2.3.4", study_uid="1.2.3", series_uid="1.2.3.1", ImageComments="v2")
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        first = await (await http.post("/instances", data=data)).json()
        second = await (await http.post("/instances", data=changed)).json()
        assert second["Status"] == "Success" and second["ID"] == first["ID"]
        async with http.get(f"/instances/{first['ID']}") as resp:
            assert (await resp.json())["MainDicomTags"]["ImageComments"] == "v2"
        async with http.get("/statistics") as resp:
            assert (await resp.json())["CountInstances"] == 1


async def test_instance_file_download(http: aiohttp.ClientSession) -> None:
    data = make_instance("FILE")
    answer = await (await http.post("/instances", data=data)).json()
    async with http.get(f"/instances/{answer['ID']}/file") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/dicom"
        assert resp.headers["Content-Disposition"] == f'filename="{answer["ID"]}.dcm"'
        assert await resp.read() == data


async def test_compressed_storage_roundtrip(settings: Settings) -> None:
    cfg = settings.replace(StorageCompression=True)
    data = make_instance("ZLIB", size=64)
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        answer = await (await http.post("/instances", data=data)).json()
        async with http.get(f"/instances/{answer['ID']}/file") as resp:
            assert await resp.read() == data
        async with http.get("/statistics") as resp:
            stats = await resp.json()
        assert int(stats["TotalDiskSize"]) < int(stats["TotalUncompressedSize"]) == len(data)


async def test_completed_series_change(http: aiohttp.ClientSession) -> None:
    from tests.data.make_samples import make_series

    files = make_series(3, patient_id="COMPLETE", ImagesInAcquisition=3, NumberOfTemporalPositions=1)
    for i, data in enumerate(files):
        await http.post("/instances", data=data)
        types = [c["ChangeType"] for c in await _changes(http)]
        # Logged once, right after the third instance (IndexInSeries 1..3 = ExpectedNumberOfInstances).
        assert types.count("CompletedSeries") == (1 if i == 2 else 0)
    assert types[-1] == "CompletedSeries"
