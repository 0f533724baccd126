"""The "UserData" field of a job submission (Orthanc >= 1.12.9): kept with the job, shown by GET /jobs/{id}
and GET /jobs?expand, saved with SaveJobs; absent when the submission had none."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import testdata, upload

USER_DATA = {"origin": "ris", "ids": [1, 2, 3], "nested": {"ok": True, "none": None}}


async def _post(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> Any:
    async with http.post(path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _finished(http: aiohttp.ClientSession, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        async with http.get(f"/jobs/{job_id}") as resp:
            assert resp.status == 200
            info = await resp.json()
        if info["State"] in ("Success", "Failure"):
            return info
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.05)


async def _study(http: aiohttp.ClientSession) -> str:
    return (await upload(http, testdata("Series", "Lena-1.dcm")))["ParentStudy"]


async def test_user_data_shown_by_the_job(http: aiohttp.ClientSession) -> None:
    study = await _study(http)
    archive = await _post(http, f"/studies/{study}/archive", {"Asynchronous": True, "UserData": USER_DATA})
    modify = await _post(http, f"/studies/{study}/modify",
                         {"Replace": {"StudyDescription": "X"}, "Force": True, "Asynchronous": True,
                          "UserData": "just a string"})
    plain = await _post(http, f"/studies/{study}/anonymize", {"Asynchronous": True})
    infos = {job: await _finished(http, job) for job in (archive["ID"], modify["ID"], plain["ID"])}
    assert infos[archive["ID"]]["State"] == "Success"
    assert infos[archive["ID"]]["UserData"] == USER_DATA
    assert infos[modify["ID"]]["UserData"] == "just a string"
    assert "UserData" not in infos[plain["ID"]]
    async with http.get("/jobs", params={"expand": ""}) as resp:
        listed = {job["ID"]: job for job in await resp.json()}
    assert listed[archive["ID"]]["UserData"] == USER_DATA
    assert "UserData" not in listed[plain["ID"]]


async def test_user_data_of_a_synchronous_job(http: aiohttp.ClientSession) -> None:
    study = await _study(http)
    answer = await _post(http, f"/studies/{study}/anonymize", {"Synchronous": True, "UserData": [1, "two"]})
    assert "ID" in answer  # the synchronous answer is the job's Content, unchanged
    async with http.get("/jobs", params={"expand": ""}) as resp:
        jobs = await resp.json()
    assert [job["UserData"] for job in jobs if "UserData" in job] == [[1, "two"]]


@pytest.mark.parametrize("value", [None, 0, False])
async def test_falsy_user_data_is_kept(http: aiohttp.ClientSession, value: Any) -> None:
    study = await _study(http)
    job = await _post(http, f"/studies/{study}/anonymize", {"Asynchronous": True, "UserData": value})
    info = await _finished(http, job["ID"])
    assert "UserData" in info and info["UserData"] == value


async def test_user_data_survives_a_restart(settings: Settings) -> None:
    saving = settings.replace(SaveJobs=True)
    async with orthanc_lite.serve(saving, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        study = await _study(http)
        job = await _post(http, f"/studies/{study}/modify",
                          {"Replace": {"StudyDescription": "Y"}, "Force": True, "Asynchronous": True,
                           "UserData": USER_DATA})
        assert (await _finished(http, job["ID"]))["State"] == "Success"
    async with orthanc_lite.serve(saving, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.get(f"/jobs/{job['ID']}") as resp:
            assert resp.status == 200
            assert (await resp.json())["UserData"] == USER_DATA
