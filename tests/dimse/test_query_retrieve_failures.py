"""Remote ends that are slow or stop answering during query/retrieve: a DIMSE timeout is a clean error, and a
cancelled C-MOVE job aborts its association at once (the remote sees the abort; nothing hangs)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

import orthanc_lite


class SlowRemote:
    """A pynetdicom SCP (AET SLOW) whose C-FIND answers after `find_delay` seconds and whose C-MOVE announces
    one sub-operation and then waits until released or aborted."""

    def __init__(self, find_delay: float) -> None:
        self.find_delay = find_delay
        self.destination_port = 0  # where the C-MOVE sub-operations would go (the server under test)
        self.aborted = threading.Event()
        self.release = threading.Event()
        self.move_started = threading.Event()
        self.ae = AE(ae_title="SLOW")
        for uid in (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
                    StudyRootQueryRetrieveInformationModelMove):
            self.ae.add_supported_context(uid)
        self.ae.add_requested_context(CTImageStorage)  # for the C-MOVE sub-association
        handlers = [(evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move), (evt.EVT_ABORTED, self._abort),
                    (evt.EVT_CONN_CLOSE, self._abort)]
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.port = int(self.server.server_address[1])

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        self.release.wait(self.find_delay)
        yield 0x0000, None

    def _move(self, event: Any) -> Iterator[Any]:
        yield "127.0.0.1", self.destination_port
        yield 1
        self.move_started.set()
        self.release.wait(20)
        yield 0xFE00, None

    def _abort(self, event: Any) -> None:
        if self.move_started.is_set():
            self.aborted.set()

    def stop(self) -> None:
        self.release.set()
        self.ae.shutdown()


@pytest.fixture
async def slow() -> Iterator[SlowRemote]:
    remote = await asyncio.to_thread(SlowRemote, 10.0)
    yield remote
    await asyncio.to_thread(remote.stop)


async def test_dimse_timeout_is_a_clean_error(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                              slow: SlowRemote) -> None:
    async with http.put("/modalities/slow", json={"AET": "SLOW", "Host": "127.0.0.1", "Port": slow.port}) as r:
        assert r.status == 200
    started = time.monotonic()
    async with http.post("/modalities/slow/query", json={"Level": "Study", "Timeout": 1}) as r:
        assert r.status == 500
        err = await r.json()
    assert err["OrthancStatus"] == 9 and "SLOW" in err["Details"]
    assert time.monotonic() - started < 8  # the remote would answer after 10 s


async def test_cancelled_move_job_aborts_the_association(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                         slow: SlowRemote) -> None:
    async with http.put("/modalities/slow", json=["SLOW", "127.0.0.1", slow.port]) as r:
        assert r.status == 200
    slow.destination_port = server.dicom_port
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}], "Asynchronous": True}
    async with http.post("/modalities/slow/move", json=body) as r:
        assert r.status == 200
        ref = await r.json()
    assert await asyncio.to_thread(slow.move_started.wait, 10)
    async with http.get(ref["Path"]) as r:
        assert (await r.json())["State"] == "Running"
    async with http.post(ref["Path"] + "/cancel", json={}) as r:
        assert r.status == 200
    assert await asyncio.to_thread(slow.aborted.wait, 5), "the remote never saw the association end"
    async with http.get(ref["Path"]) as r:
        job = await r.json()
    assert job["State"] == "Failure" and job["ErrorCode"] == 37  # CanceledJob
