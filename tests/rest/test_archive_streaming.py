"""Streaming archives: the first bytes leave before the archive is complete, a client that disconnects stops
the work, the event loop stays free while zipping, and SynchronousZipStream false sends a Content-Length."""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import time
import zipfile

import aiohttp
import numpy as np
from pydicom.uid import generate_uid

import orthanc_lite
from orthanc_lite.config import Settings
from orthanc_lite.rest.archive import STREAMS_KEY
from tests.data.make_samples import make_instance

COUNT = 24
SIDE = 512  # 512 x 512 x 2 bytes: 0.5 MB of noise per instance, which deflate cannot shrink


async def _noisy_study(http: aiohttp.ClientSession, count: int = COUNT) -> str:
    rng = np.random.default_rng(7)
    study, series = generate_uid(), generate_uid()
    answer: dict = {}
    for i in range(count):
        data = make_instance("NOISE", study_uid=study, series_uid=series, instance_number=i + 1, size=SIDE,
                             PixelData=rng.integers(0, 4096, SIDE * SIDE, dtype=np.uint16).tobytes())
        async with http.post("/instances", data=data) as resp:
            assert resp.status == 200
            answer = await resp.json()
    return str(answer["ParentStudy"])


async def test_first_bytes_before_completion_and_disconnect_stops_work(
        server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    study = await _noisy_study(http)
    streams = server.context.extra.setdefault(STREAMS_KEY, set())
    async with aiohttp.ClientSession(base_url=server.url) as client:
        resp = await client.get(f"/studies/{study}/archive")
        assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
        first = await resp.content.readexactly(4)
        assert first == b"PK\x03\x04"
        (producer,) = streams
        assert not producer.finished  # the client holds the rest back: the server cannot have built it all
        resp.close()  # the client goes away mid-archive
    deadline = time.monotonic() + 10
    while streams and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not streams, "the archive kept running after the client left"
    assert not producer.finished and producer.instances_done < COUNT


async def test_system_answers_fast_while_zipping(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    study = await _noisy_study(http)
    latencies: list[float] = []

    async def download() -> int:
        async with aiohttp.ClientSession(base_url=server.url) as client:
            async with client.get(f"/studies/{study}/archive") as resp:
                return len(await resp.read())

    task = asyncio.create_task(download())
    async with aiohttp.ClientSession(base_url=server.url) as probe:
        while not task.done():
            start = time.perf_counter()
            async with probe.get("/system") as resp:
                assert resp.status == 200
                await resp.read()
            latencies.append(time.perf_counter() - start)
    size = await task
    assert size > COUNT * SIDE * SIDE * 2 * 0.7  # 12-bit noise deflates a little
    assert len(latencies) >= 5
    assert statistics.median(latencies) < 0.05, latencies


async def test_not_streamed_has_content_length(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(SynchronousZipStream=False), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            study = await _noisy_study(http, 2)
            async with http.get(f"/studies/{study}/archive") as resp:
                body = await resp.read()
                assert resp.status == 200
                assert int(resp.headers["Content-Length"]) == len(body)
            assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 2
            # the temporary file is gone once sent (the handler removes it just after the last byte)
            incoming = srv.context.storage.incoming_dir()
            deadline = time.monotonic() + 5
            while [n for n in os.listdir(incoming) if n.endswith(".zip")] and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert not [n for n in os.listdir(incoming) if n.endswith(".zip")]


async def test_large_instance_is_streamed_in_chunks(http: aiohttp.ClientSession, tmp_path) -> None:
    """An instance above SMALL_MEMBER goes out CHUNK by CHUNK (data descriptor), in archives and media alike."""
    from pydicom.fileset import FileSet

    from orthanc_lite.services.archive import SMALL_MEMBER

    side = 3000  # 3000 x 3000 x 2 bytes = 18 MB
    assert side * side * 2 > SMALL_MEMBER
    big = make_instance("BIG", size=side, PixelData=np.full(side * side, 7, dtype=np.uint16).tobytes())
    small = make_instance("BIG", size=8)
    for data in (big, small):
        async with http.post("/instances", data=data) as resp:
            assert resp.status == 200
            patient = (await resp.json())["ParentPatient"]
    async with http.get(f"/patients/{patient}/archive") as resp:
        z = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert z.testzip() is None
    assert sorted(len(z.read(n)) for n in z.namelist()) == sorted((len(big), len(small)))
    assert any(info.flag_bits & 0x08 for info in z.infolist())  # the large one carries a data descriptor
    async with http.get(f"/patients/{patient}/media") as resp:
        z = zipfile.ZipFile(io.BytesIO(await resp.read()))
    z.extractall(tmp_path)
    assert sorted(len(i.path.read_bytes()) if hasattr(i.path, "read_bytes") else len(open(i.path, "rb").read())
                  for i in FileSet(tmp_path / "DICOMDIR")) == sorted((len(big), len(small)))
