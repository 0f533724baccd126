"""Asynchronous archives and media: jobs of type "Archive" / "Media" with Orthanc's Content, the ZIP at
GET /jobs/{id}/archive, MediaArchiveSize eviction, and cleanup of cancelled jobs."""

from __future__ import annotations

import io
import os
import zipfile

import aiohttp
import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_series


async def _study(http: aiohttp.ClientSession, count: int = 3) -> str:
    answer: dict = {}
    for data in make_series(count, "ASYNC"):
        async with http.post("/instances", data=data) as resp:
            assert resp.status == 200
            answer = await resp.json()
    return str(answer["ParentStudy"])


async def _job(http: aiohttp.ClientSession, server: orthanc_lite.Server, url: str, body: object) -> dict:
    async with http.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        submitted = await resp.json()
    assert set(submitted) == {"ID", "Path"} and submitted["Path"] == f"/jobs/{submitted['ID']}"
    await server.jobs.join()
    async with http.get(submitted["Path"]) as resp:
        return dict(await resp.json())


async def test_async_archive_job(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    study = await _study(http)
    job = await _job(http, server, f"/studies/{study}/archive", {"Asynchronous": True, "Priority": 3})
    assert job["Type"] == "Archive" and job["State"] == "Success" and job["Progress"] == 100
    assert job["Priority"] == 3
    content = job["Content"]
    assert set(content) == {"Description", "InstancesCount", "UncompressedSize", "UncompressedSizeMB",
                            "ArchiveSize", "ArchiveSizeMB"}
    assert content["Description"] == "REST API" and content["InstancesCount"] == 3
    assert isinstance(content["ArchiveSize"], str) and isinstance(content["UncompressedSizeMB"], int)
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"] == 'filename="archive.zip"'
        body = await resp.read()
    assert len(body) == int(content["ArchiveSize"])
    async_names = sorted(zipfile.ZipFile(io.BytesIO(body)).namelist())
    async with http.get(f"/studies/{study}/archive") as resp:
        assert sorted(zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()) == async_names


async def test_archive_whose_file_is_gone_is_no_output(server: orthanc_lite.Server,
                                                       http: aiohttp.ClientSession) -> None:
    """The ZIP of a finished job removed behind the server's back: Orthanc's 404 error, not a crash."""
    job = await _job(http, server, f"/studies/{await _study(http, 1)}/archive", {"Asynchronous": True})
    incoming = server.context.storage.incoming_dir()
    [name] = [n for n in os.listdir(incoming) if n.endswith(".zip")]
    os.unlink(os.path.join(incoming, name))
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        assert resp.status == 404 and (await resp.json())["OrthancError"] == "Accessing an inexistent item"


async def test_async_media_and_create_tools(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    study = await _study(http, 2)
    job = await _job(http, server, "/tools/create-media-extended", {"Resources": [study], "Synchronous": False})
    assert job["Type"] == "Media" and job["State"] == "Success"
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        names = sorted(zipfile.ZipFile(io.BytesIO(await resp.read())).namelist())
    assert names == ["DICOMDIR", "IMAGES/IM0", "IMAGES/IM1"]
    job = await _job(http, server, "/tools/create-archive", {"Resources": [study], "Asynchronous": True,
                                                             "Filename": "mine.zip"})
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        assert resp.headers["Content-Disposition"] == 'filename="mine.zip"'


async def test_media_archive_size_keeps_the_last_archives(server: orthanc_lite.Server,
                                                          http: aiohttp.ClientSession) -> None:
    assert server.context.settings.MediaArchiveSize == 1
    study = await _study(http, 1)
    first = await _job(http, server, f"/studies/{study}/archive", {"Asynchronous": True})
    second = await _job(http, server, f"/studies/{study}/media", {"Asynchronous": True})
    async with http.get(f"/jobs/{first['ID']}/archive") as resp:
        assert resp.status == 404  # evicted by the newer archive
    async with http.get(f"/jobs/{second['ID']}/archive") as resp:
        assert resp.status == 200
    async with http.delete(f"/jobs/{second['ID']}/archive") as resp:
        assert resp.status == 200
    async with http.get(f"/jobs/{second['ID']}/archive") as resp:
        assert resp.status == 404
    assert not [n for n in os.listdir(server.context.storage.incoming_dir()) if n.endswith(".zip")]


async def test_cancelled_archive_leaves_no_file(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(ConcurrentJobs=1), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            study = await _study(http, 30)
            ids = []
            for _ in range(3):
                async with http.post(f"/studies/{study}/archive", json={"Asynchronous": True}) as resp:
                    ids.append((await resp.json())["ID"])
            for job_id in ids[1:]:
                async with http.post(f"/jobs/{job_id}/cancel", json={}) as resp:
                    assert resp.status == 200
            await srv.jobs.join()
            states = []
            for job_id in ids:
                async with http.get(f"/jobs/{job_id}") as resp:
                    states.append((await resp.json())["State"])
            assert states[0] == "Success" and states[1:] == ["Failure", "Failure"]
            zips = [n for n in os.listdir(srv.context.storage.incoming_dir()) if n.endswith(".zip")]
            assert len(zips) == 1  # only the finished archive is kept
            # Cancelled while it runs: its step is interrupted, its partial file removed.
            async with http.post(f"/studies/{study}/media", json={"Asynchronous": True}) as resp:
                running = (await resp.json())["ID"]
            async with http.post(f"/jobs/{running}/cancel", json={}) as resp:
                assert resp.status == 200
            await srv.jobs.join()
            async with http.get(f"/jobs/{running}") as resp:
                assert (await resp.json())["State"] == "Failure"
            assert len([n for n in os.listdir(srv.context.storage.incoming_dir()) if n.endswith(".zip")]) == 1


async def test_instance_deleted_after_planning_is_skipped(server: orthanc_lite.Server,
                                                          http: aiohttp.ClientSession) -> None:
    """As Orthanc: an instance removed between the plan and its turn is left out, with a warning."""
    from orthanc_lite.services.archive import ArchiveProducer, plan_archive

    study = await _study(http, 3)
    plan = await plan_archive(server.context, [study], media=False)
    async with http.delete(f"/instances/{plan.entries[1].instance.instance_id}") as resp:
        assert resp.status == 200
    producer = ArchiveProducer(server.context, plan)
    parts = []
    while (chunk := await producer.next_chunk()) is not None:
        parts.append(chunk)
    z = zipfile.ZipFile(io.BytesIO(b"".join(parts)))
    assert z.testzip() is None
    assert sorted(z.namelist()) == sorted(e.name for i, e in enumerate(plan.entries) if i != 1)
    assert producer.archive_size == sum(map(len, parts))


async def test_archive_sql_cost_is_fixed(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """An archive costs the same few SQL statements for 1 or 21 instances (no query per resource)."""
    stats = server.context.index.engine.statements

    async def cost(path: str) -> int:
        stats.enabled, stats.count = True, 0
        try:
            async with http.get(path) as resp:
                assert resp.status == 200
                await resp.read()
        finally:
            stats.enabled = False
        return int(stats.count)

    small_study = await _study(http, 1)
    big_study = await _study(http, 21)
    assert await cost(f"/studies/{small_study}/media") == await cost(f"/studies/{big_study}/media") <= 6
    async with http.get("/patients") as resp:
        patients = await resp.json()
    assert await cost(f"/tools/create-archive?resources={','.join(patients)}") <= 6
