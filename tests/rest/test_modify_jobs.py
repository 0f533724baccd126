"""Modification as jobs: asynchronous submission, progress, cancel and resubmit without lost or duplicated
instances, a 1,000-instance study, and a server killed in the middle (slow)."""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

import aiohttp
import pytest
from pydicom.uid import generate_uid

from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import start_orthanc_lite


def study_files(count: int) -> list[bytes]:
    study, series = generate_uid(), generate_uid()
    return [make_instance(patient_id="JOBS", study_uid=study, series_uid=series, instance_number=i + 1)
            for i in range(count)]


async def upload_all(http: aiohttp.ClientSession, files: list[bytes]) -> str:
    queue = list(files)
    study = ""

    async def client() -> None:
        nonlocal study
        while queue:
            async with http.post("/instances", data=queue.pop()) as resp:
                assert resp.status == 200, await resp.text()
                study = (await resp.json())["ParentStudy"]
    await asyncio.gather(*(client() for _ in range(4)))
    return study


async def get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def wait_job(http: aiohttp.ClientSession, job: str, states: tuple[str, ...] = ("Success", "Failure"),
                   timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = await get(http, f"/jobs/{job}")
        if info["State"] in states:
            return info
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.05)


async def sop_uids(http: aiohttp.ClientSession, study: str) -> list[str]:
    instances = await get(http, f"/studies/{study}/instances")
    return [i["MainDicomTags"]["SOPInstanceUID"] for i in instances]


async def test_asynchronous_anonymization_job(http: aiohttp.ClientSession) -> None:
    study = await upload_all(http, study_files(12))
    async with http.post(f"/studies/{study}/anonymize", json={"Asynchronous": True, "Priority": 3}) as resp:
        submitted = await resp.json()
    assert set(submitted) == {"ID", "Path"} and submitted["Path"] == f"/jobs/{submitted['ID']}"
    info = await wait_job(http, submitted["ID"])
    assert info["State"] == "Success" and info["Type"] == "ResourceModification" and info["Progress"] == 100
    assert info["Priority"] == 3
    content = info["Content"]
    assert content["Type"] == "Study" and content["IsAnonymization"] is True and content["InstancesCount"] == 12
    assert len(set(await sop_uids(http, content["ID"]))) == 12


async def test_cancel_then_resubmit_loses_and_duplicates_nothing(http: aiohttp.ClientSession) -> None:
    study = await upload_all(http, study_files(120))
    source = sorted(await sop_uids(http, study))
    async with http.post(f"/studies/{study}/modify",
                         json={"Replace": {"StudyDescription": "copy"}, "Asynchronous": True}) as resp:
        job = (await resp.json())["ID"]
    deadline = time.monotonic() + 60
    while (await get(http, f"/jobs/{job}"))["Progress"] < 10:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    async with http.post(f"/jobs/{job}/cancel", json={}) as resp:
        assert resp.status == 200
    info = await wait_job(http, job)
    assert info["State"] == "Failure" and info["ErrorCode"] == 37  # CanceledJob
    assert sorted(await sop_uids(http, study)) == source  # the source is whole
    copies = [s for s in await get(http, "/studies") if s != study]
    if copies:
        partial = await sop_uids(http, copies[0])
        assert len(partial) == len(set(partial)) < 120
    async with http.post(f"/jobs/{job}/resubmit", json={}) as resp:
        assert resp.status == 200
    info = await wait_job(http, job)
    assert info["State"] == "Success", info
    new_study = info["Content"]["ID"]
    copied = await sop_uids(http, new_study)
    assert len(copied) == 120 and len(set(copied)) == 120  # nothing lost, nothing twice
    assert not set(copied) & set(source)
    assert len(await get(http, "/studies")) == 2


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_thousand_instances_with_progress(http: aiohttp.ClientSession) -> None:
    study = await upload_all(http, study_files(1000))
    async with http.post(f"/studies/{study}/anonymize", json={"Asynchronous": True}) as resp:
        job = (await resp.json())["ID"]
    seen: list[int] = []
    while True:
        info = await get(http, f"/jobs/{job}")
        seen.append(info["Progress"])
        if info["State"] in ("Success", "Failure"):
            break
        await asyncio.sleep(0.1)
    assert info["State"] == "Success", info
    assert seen == sorted(seen) and len(set(seen)) > 3  # progress moves forward, in several steps
    copied = await sop_uids(http, info["Content"]["ID"])
    assert len(copied) == len(set(copied)) == 1000


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_killed_server_resumes_the_saved_job(tmp_path: pathlib.Path) -> None:
    """SIGKILL in the middle of a 1,000-instance modification: after the restart the saved job runs again and
    ends with exactly one copy of each instance; the source is whole throughout."""
    with start_orthanc_lite(tmp_path / "lite", {"SaveJobs": True}) as lite:
        async with aiohttp.ClientSession(base_url=lite.url) as http:
            study = await upload_all(http, study_files(1000))
            source = sorted(await sop_uids(http, study))
            async with http.post(f"/studies/{study}/modify",
                                 json={"Replace": {"StudyDescription": "copy"}, "Asynchronous": True}) as resp:
                job = (await resp.json())["ID"]
            while (await get(http, f"/jobs/{job}"))["Progress"] < 20:
                await asyncio.sleep(0.05)
        lite.kill()
        lite.restart()
        async with aiohttp.ClientSession(base_url=lite.url) as http:
            assert sorted(await sop_uids(http, study)) == source
            info = await wait_job(http, job, timeout=400)
            assert info["State"] == "Success", info
            copied = await sop_uids(http, info["Content"]["ID"])
            assert len(copied) == len(set(copied)) == 1000
            assert sorted(await sop_uids(http, study)) == source
            assert len(await get(http, "/studies")) == 2
