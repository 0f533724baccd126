"""Sending with real Orthanc 1.10.1 on the other side, both ways: as a C-STORE destination and as a peer; and
the same store asked of both servers answers the same job Content, field by field."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_series
from tests.dimse.dimse_helpers import free_port, requires_dcmtk, storescp
from tests.e2e.orthanc_peer import ServerProcess, requires_orthanc, spawn_orthanc
from tests.jobs.test_store_scu import call, upload_all, wait_job

pytestmark = [pytest.mark.orthanc, requires_orthanc, requires_dcmtk]


@dataclass
class Pair:
    lite: orthanc_lite.Server
    lite_http: aiohttp.ClientSession
    orthanc: ServerProcess
    orthanc_http: aiohttp.ClientSession


@pytest.fixture
async def pair(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Pair]:
    async with orthanc_lite.serve(settings.replace(DicomAet="LITE"), host="127.0.0.1") as lite:
        config = {"DicomModalities": {"lite": ["LITE", "127.0.0.1", lite.dicom_port]},
                  "OrthancPeers": {"lite": [lite.url]}, "DicomAet": "ORTHANC"}
        orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", config)
        try:
            async with aiohttp.ClientSession(base_url=lite.url) as lite_http, \
                    aiohttp.ClientSession(base_url=orthanc.url) as orthanc_http:
                await call(lite_http, "PUT", "/modalities/orthanc", ["ORTHANC", "127.0.0.1", orthanc.dicom_port])
                await call(lite_http, "PUT", "/peers/orthanc", [orthanc.url])
                yield Pair(lite, lite_http, orthanc, orthanc_http)
        finally:
            await asyncio.to_thread(orthanc.stop)


async def test_both_ways_over_dicom_and_http(pair: Pair) -> None:
    ours = await upload_all(pair.lite_http, make_series(2, patient_id="FROMLITE"))
    assert await call(pair.lite_http, "POST", "/modalities/orthanc/echo", {}) == (200, {})
    status, answer = await call(pair.lite_http, "POST", "/modalities/orthanc/store", [ours[0]["ParentStudy"]])
    assert status == 200 and answer["InstancesCount"] == 2
    assert sorted((await call(pair.orthanc_http, "GET", "/instances"))[1]) == sorted(s["ID"] for s in ours)

    theirs = await upload_all(pair.orthanc_http, make_series(3, patient_id="FROMORTHANC"))
    status, answer = await call(pair.orthanc_http, "POST", "/modalities/lite/store", [theirs[0]["ParentSeries"]])
    assert status == 200, answer
    status, answer = await call(pair.orthanc_http, "POST", "/peers/lite/store", [theirs[0]["ID"]])
    assert status == 200, answer
    assert {s["ID"] for s in theirs} <= set((await call(pair.lite_http, "GET", "/instances"))[1])

    more = await upload_all(pair.lite_http, make_series(2, patient_id="PEER"))
    assert (await call(pair.lite_http, "GET", "/peers/orthanc/system"))[1]["Version"] == "1.10.1"
    status, answer = await call(pair.lite_http, "POST", "/peers/orthanc/store",
                                {"Resources": [more[0]["ParentPatient"]], "Compress": True})
    assert status == 200 and answer["InstancesCount"] == 2
    assert {s["ID"] for s in more} <= set((await call(pair.orthanc_http, "GET", "/instances"))[1])


def _comparable(content: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in content.items() if k not in ("Size",)}


async def test_same_job_content_as_orthanc(pair: Pair, tmp_path: pathlib.Path) -> None:
    files = make_series(2, patient_id="SAME")
    ours = await upload_all(pair.lite_http, files)
    await upload_all(pair.orthanc_http, files)
    study = ours[0]["ParentStudy"]
    async with storescp(tmp_path / "dest", aet="DEST") as dest:
        for http in (pair.lite_http, pair.orthanc_http):
            await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
        requests: list[Any] = [study, [study], {"Resources": [study, ours[1]["ID"]], "LocalAet": "ME"},
                               {"Resources": [study], "MoveOriginatorAet": "MOVER", "MoveOriginatorID": 7}]
        for body in requests:
            mine = await call(pair.lite_http, "POST", "/modalities/dest/store", body)
            real = await call(pair.orthanc_http, "POST", "/modalities/dest/store", body)
            assert mine[0] == real[0] == 200
            if "LocalAet" not in str(body):  # each server's own DicomAet by default
                assert (mine[1].pop("LocalAet"), real[1].pop("LocalAet")) == ("LITE", "ORTHANC")
            assert mine[1] == real[1], body
        # The same through a job: its public fields, as GET /jobs/{id} shows them.
        body = {"Resources": [study], "Asynchronous": True, "Priority": 2}
        infos = []
        for http in (pair.lite_http, pair.orthanc_http):
            status, answer = await call(http, "POST", "/modalities/dest/store", body)
            infos.append(await wait_job(http, answer["ID"]))
        mine_info, real_info = infos
        assert set(mine_info) == set(real_info)
        assert (mine_info["Content"].pop("LocalAet"), real_info["Content"].pop("LocalAet")) == ("LITE", "ORTHANC")
        for key in ("Type", "State", "Progress", "Priority", "ErrorCode", "ErrorDescription", "ErrorDetails", "Content"):
            assert mine_info[key] == real_info[key], key
    # Failures: a modality nobody listens on.
    port = free_port()
    errors = []
    for http in (pair.lite_http, pair.orthanc_http):
        await call(http, "PUT", "/modalities/gone", ["GONE", "127.0.0.1", port])
        status, answer = await call(http, "POST", "/modalities/gone/store", {"Resources": [study], "Asynchronous": True})
        errors.append(await wait_job(http, answer["ID"]))
    for key in ("State", "ErrorCode", "ErrorDescription"):
        assert errors[0][key] == errors[1][key], key
    assert errors[0]["ErrorDetails"].split(":")[0] == errors[1]["ErrorDetails"].split(":")[0]


async def test_same_peer_job_content_as_orthanc(pair: Pair, settings: Settings, tmp_path: pathlib.Path) -> None:
    files = make_series(2, patient_id="PEERSAME")
    ours = await upload_all(pair.lite_http, files)
    await upload_all(pair.orthanc_http, files)
    async with orthanc_lite.serve(settings.replace(StorageDirectory=str(tmp_path / "third")),
                                  host="127.0.0.1") as third:
        for http in (pair.lite_http, pair.orthanc_http):
            await call(http, "PUT", "/peers/third", [third.url])
        for body in ([ours[0]["ParentSeries"]], {"Resources": [ours[0]["ID"]], "Compress": True}):
            mine = await call(pair.lite_http, "POST", "/peers/third/store", body)
            real = await call(pair.orthanc_http, "POST", "/peers/third/store", body)
            assert mine[0] == real[0] == 200
            assert _comparable(mine[1]) == _comparable(real[1]), body
