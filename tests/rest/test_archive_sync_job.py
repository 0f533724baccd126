"""A synchronous archive or media is registered as a job, as Orthanc (>= 1.9.4) does: an "Archive" / "Media"
job in GET /jobs, Success once the ZIP is sent, with the Content of the asynchronous job; compared with real
Orthanc when it is installed."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import aiohttp
import pytest

from orthanc_lite.config import Settings
import orthanc_lite
from tests.conftest import ORTHANC_BIN, testdata, upload
from tests.e2e.orthanc_peer import start_orthanc

LENA = testdata("Series", "Lena-1.dcm")


async def _jobs(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with http.get("/jobs", params={"expand": ""}) as resp:
        assert resp.status == 200
        return list(await resp.json())


async def _archive_then_jobs(http: aiohttp.ClientSession) -> tuple[int, list[dict[str, Any]]]:
    study = (await upload(http, LENA))["ParentStudy"]
    async with http.get(f"/studies/{study}/archive") as resp:
        assert resp.status == 200
        size = len(await resp.read())
    return size, await _jobs(http)


def _shape(job: dict[str, Any]) -> dict[str, Any]:
    """The fields that do not depend on time or identifiers; the ZIP size differs by a few bytes (Orthanc
    1.13's folder names are not 1.10.1's), so only its type is compared."""
    content = {key: value for key, value in job["Content"].items() if key != "ArchiveSize"}
    return {key: job[key] for key in ("Type", "State", "Progress", "ErrorCode", "ErrorDescription", "Priority")} | {
        "Content": content, "ArchiveSize": type(job["Content"]["ArchiveSize"]), "Keys": sorted(job)}


async def test_synchronous_archive_and_media_are_jobs(http: aiohttp.ClientSession) -> None:
    size, jobs = await _archive_then_jobs(http)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["Type"] == "Archive" and job["State"] == "Success" and job["Progress"] == 100
    assert job["Content"]["ArchiveSize"] == str(size)
    assert job["Content"]["InstancesCount"] == 1
    async with http.post("/tools/create-media", json={"Resources": [], "Synchronous": True,
                                                      "UserData": {"k": 1}}) as resp:
        assert resp.status == 200
        await resp.read()
    media = [j for j in await _jobs(http) if j["Type"] == "Media"]
    assert len(media) == 1 and media[0]["State"] == "Success" and media[0]["UserData"] == {"k": 1}
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        assert resp.status == 404  # a synchronous archive leaves no output to download


async def test_synchronous_archive_without_streaming_is_a_job_too(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(SynchronousZipStream=False), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        size, jobs = await _archive_then_jobs(http)
    assert [(j["Type"], j["State"], j["Content"]["ArchiveSize"]) for j in jobs] == [("Archive", "Success", str(size))]


@pytest.mark.orthanc
@pytest.mark.skipif(not os.path.exists(ORTHANC_BIN), reason="real Orthanc is not installed")
async def test_same_job_as_real_orthanc(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    _, ours = await _archive_then_jobs(http)
    with start_orthanc(tmp_path / "orthanc") as orthanc:
        async with aiohttp.ClientSession(base_url=orthanc.url) as real:
            _, theirs = await _archive_then_jobs(real)
    assert [_shape(j) for j in ours] == [_shape(j) for j in theirs]
