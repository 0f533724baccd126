"""C-ECHO and C-STORE SCU over REST, against dcmtk's storescp, a second orthanc_lite and a pynetdicom SCP
that misbehaves on purpose (slow, refusing); cancel and timeouts end the job cleanly."""

from __future__ import annotations

import asyncio
import io
import pathlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, Verification

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance, make_series
from tests.dimse.dimse_helpers import free_port, requires_dcmtk, storescp

pytestmark = requires_dcmtk


async def upload_all(http: aiohttp.ClientSession, files: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for data in files:
        async with http.post("/instances", data=data) as resp:
            assert resp.status == 200, await resp.text()
            out.append(await resp.json())
    return out


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None,
               data: bytes | None = None) -> tuple[int, Any]:
    async with http.request(method, path, json=body if data is None else None, data=data) as resp:
        text = await resp.text()
        try:
            return resp.status, await resp.json(content_type=None) if text else None
        except ValueError:
            return resp.status, text


async def wait_job(http: aiohttp.ClientSession, job_id: str, deadline: float = 20) -> dict[str, Any]:
    """Poll a job until it is finished."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        status, info = await call(http, "GET", f"/jobs/{job_id}")
        assert status == 200
        if info["State"] in ("Success", "Failure"):
            return info
        assert loop.time() < end, info
        await asyncio.sleep(0.02)


def sop_uids(files: list[pathlib.Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


@pytest.fixture
async def dest(tmp_path: pathlib.Path) -> AsyncIterator[Any]:
    async with storescp(tmp_path / "received", aet="DEST") as scp:
        yield scp


async def test_echo(server: orthanc_lite.Server, http: aiohttp.ClientSession, dest: Any) -> None:
    assert (await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port]))[0] == 200
    assert await call(http, "POST", "/modalities/dest/echo", data=b"") == (200, {})
    assert await call(http, "POST", "/modalities/dest/echo", {"Timeout": 3}) == (200, {})
    assert await call(http, "POST", "/tools/dicom-echo", {"AET": "DEST", "Host": "127.0.0.1", "Port": dest.port}) \
        == (200, {})
    assert await call(http, "POST", "/tools/dicom-echo", ["DEST", "127.0.0.1", dest.port]) == (200, {})
    status, error = await call(http, "POST", "/modalities/nope/echo", {})
    assert status == 404
    status, error = await call(http, "POST", "/modalities/dest/echo", {"Timeout": "x"})
    assert status == 400 and error["OrthancStatus"] == 15


async def test_echo_refused(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    port = free_port()  # nobody listens there
    await call(http, "PUT", "/modalities/gone", ["GONE", "127.0.0.1", port])
    loop = asyncio.get_running_loop()
    begin = loop.time()
    status, error = await call(http, "POST", "/modalities/gone/echo", {})
    assert loop.time() - begin < 5
    assert status == 500
    assert error["OrthancStatus"] == 9 and error["OrthancError"] == "Error in the network protocol"
    assert error["Details"].startswith('DicomAssociation - connecting to AET "GONE"')


async def test_store_levels_and_forms(server: orthanc_lite.Server, http: aiohttp.ClientSession, dest: Any,
                                      settings: Settings) -> None:
    series = make_series(3, patient_id="P1")
    other = make_instance("P2")
    stored = await upload_all(http, [*series, other])
    study = stored[0]["ParentStudy"]
    await call(http, "PUT", "/modalities/dest", {"AET": "DEST", "Host": "127.0.0.1", "Port": dest.port})

    status, answer = await call(http, "POST", "/modalities/dest/store", data=study.encode())  # a bare ID
    assert status == 200, answer
    assert answer == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 3,
                      "LocalAet": "ORTHANC", "ParentResources": [study], "RemoteAet": "DEST"}
    received = dest.files()
    assert len(received) == 3
    assert sop_uids(received) == {str(pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID) for d in series}
    assert {str(pydicom.dcmread(f).file_meta.SourceApplicationEntityTitle).strip() for f in received} == {"ORTHANC"}

    # A JSON string, an array mixing levels (an instance is sent once per resource holding it, as Orthanc does),
    # an object with options.
    status, answer = await call(http, "POST", "/modalities/dest/store", stored[3]["ID"])
    assert status == 200 and answer["InstancesCount"] == 1
    status, answer = await call(http, "POST", "/modalities/dest/store",
                                [stored[0]["ParentSeries"], stored[1]["ID"], stored[3]["ParentPatient"]])
    assert status == 200 and answer["InstancesCount"] == 5
    status, answer = await call(http, "POST", "/modalities/dest/store",
                                {"Resources": [stored[0]["ID"]], "LocalAet": "OTHER", "Timeout": 5})
    assert status == 200 and answer["LocalAet"] == "OTHER"
    assert len(dest.files()) == 4  # storescp names files by SOP instance UID: 4 distinct instances


async def test_store_asynchronous_job(server: orthanc_lite.Server, http: aiohttp.ClientSession, dest: Any) -> None:
    stored = await upload_all(http, make_series(2))
    await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
    status, answer = await call(http, "POST", "/modalities/dest/store",
                                {"Resources": [stored[0]["ParentSeries"]], "Asynchronous": True, "Priority": 3})
    assert status == 200 and set(answer) == {"ID", "Path"} and answer["Path"] == f"/jobs/{answer['ID']}"
    info = await wait_job(http, answer["ID"])
    assert info["State"] == "Success" and info["Type"] == "DicomModalityStore" and info["Priority"] == 3
    assert info["Progress"] == 100
    assert info["Content"]["InstancesCount"] == 2 and info["Content"]["ParentResources"] == [stored[0]["ParentSeries"]]
    assert len(dest.files()) == 2


async def test_store_bad_requests(server: orthanc_lite.Server, http: aiohttp.ClientSession, dest: Any) -> None:
    stored = await upload_all(http, [make_instance()])
    await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
    unknown = "01234567-89abcdef-01234567-89abcdef-01234567"
    status, error = await call(http, "POST", "/modalities/dest/store", [unknown])
    assert status == 404 and error["OrthancStatus"] == 17
    for body, details in ((["nope"], "This string is not a valid Orthanc identifier: nope"),
                          ({"Synchronous": True}, 'Missing field in JSON: "Resources"'),
                          ({"Resources": "x"}, 'JSON field "Resources" must contain an array'),
                          (12, "Must provide a JSON object, or a JSON array of strings"),
                          ([3], "Resources to be exported must be specified as a JSON array of strings")):
        status, error = await call(http, "POST", "/modalities/dest/store", body)
        assert (status, error["OrthancStatus"], error["Details"]) == (400, 15, details)
    status, error = await call(http, "POST", "/modalities/nope/store", [stored[0]["ID"]])
    assert status == 404
    assert dest.files() == []


async def test_store_to_refused_port_fails_cleanly(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    stored = await upload_all(http, [make_instance()])
    await call(http, "PUT", "/modalities/gone", ["GONE", "127.0.0.1", free_port()])
    status, error = await call(http, "POST", "/modalities/gone/store", [stored[0]["ID"]])
    assert status == 500 and error["OrthancStatus"] == 9
    assert error["Details"] == ('DicomAssociation - connecting to AET "GONE": Failed to establish association '
                                '(TCP Initialization Error: Connection refused)')
    status, answer = await call(http, "POST", "/modalities/gone/store",
                                {"Resources": [stored[0]["ID"]], "Asynchronous": True})
    info = await wait_job(http, answer["ID"])
    assert info["State"] == "Failure" and info["ErrorCode"] == 9
    assert info["ErrorDescription"] == "Error in the network protocol"
    assert info["ErrorDetails"].startswith('DicomAssociation - connecting to AET "GONE"')
    assert info["Content"]["FailedInstancesCount"] == 0  # not permissive: the job failed, nothing counted


async def test_store_to_second_orthanc_lite(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                            settings: Settings, tmp_path: pathlib.Path) -> None:
    other = settings.replace(StorageDirectory=str(tmp_path / "second"), DicomAet="SECOND")
    async with orthanc_lite.serve(other, host="127.0.0.1") as second, \
            aiohttp.ClientSession(base_url=second.url) as http2:
        stored = await upload_all(http, make_series(3))
        await call(http, "PUT", "/modalities/second", ["SECOND", "127.0.0.1", second.dicom_port])
        assert await call(http, "POST", "/modalities/second/echo", {}) == (200, {})
        status, answer = await call(http, "POST", "/modalities/second/store", {"Resources": [stored[0]["ParentStudy"]]})
        assert status == 200 and answer["InstancesCount"] == 3
        status, ids = await call(http2, "GET", "/instances")
        assert sorted(ids) == sorted(s["ID"] for s in stored)  # same public IDs on both sides
        status, meta = await call(http2, "GET", f"/instances/{stored[0]['ID']}/metadata?expand")
        assert meta["RemoteAET"] == "ORTHANC" and meta["CalledAET"] == "SECOND"


async def test_store_straight(server: orthanc_lite.Server, http: aiohttp.ClientSession, dest: Any) -> None:
    await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
    data = make_instance("STRAIGHT")
    ds = pydicom.dcmread(io.BytesIO(data))
    status, answer = await call(http, "POST", "/modalities/dest/store-straight", data=data)
    assert (status, answer) == (200, {"SOPClassUID": str(ds.SOPClassUID), "SOPInstanceUID": str(ds.SOPInstanceUID)})
    assert sop_uids(dest.files()) == {str(ds.SOPInstanceUID)}
    assert (await call(http, "GET", "/instances"))[1] == []  # not stored locally
    status, error = await call(http, "POST", "/modalities/dest/store-straight", data=b"not dicom")
    assert status == 400


async def test_exports_log(settings: Settings, dest: Any) -> None:
    async with orthanc_lite.serve(settings.replace(LogExportedResources=True), host="127.0.0.1") as server, \
            aiohttp.ClientSession(base_url=server.url) as http:
        stored = await upload_all(http, make_series(2, patient_id="EXP"))
        await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
        assert (await call(http, "POST", "/modalities/dest/store", [stored[0]["ParentStudy"]]))[0] == 200
        status, exports = await call(http, "GET", "/exports")
        assert status == 200 and len(exports["Exports"]) == 1
        entry = exports["Exports"][0]
        study = (await call(http, "GET", f"/studies/{stored[0]['ParentStudy']}"))[1]
        assert entry["ResourceType"] == "Study" and entry["ID"] == stored[0]["ParentStudy"]
        assert entry["RemoteModality"] == "dest" and entry["PatientID"] == "EXP"
        assert entry["StudyInstanceUID"] == study["MainDicomTags"]["StudyInstanceUID"]


# --- a remote that misbehaves on purpose ---------------------------------------------------------------

@dataclass
class SlowScp:
    port: int
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    aborted: threading.Event = field(default_factory=threading.Event)
    stored: list[str] = field(default_factory=list)


@pytest.fixture
def slow_scp() -> Iterator[SlowScp]:
    """A pynetdicom SCP whose C-STORE handler waits until released (or 10 s)."""
    ae = AE(ae_title="SLOW")
    ae.add_supported_context(CTImageStorage)
    ae.add_supported_context(Verification)
    scp = SlowScp(free_port())

    def on_store(event: Any) -> int:
        scp.received.set()
        scp.release.wait(10)
        scp.stored.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    server = ae.start_server(("127.0.0.1", scp.port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_ABORTED, lambda e: scp.aborted.set())])
    try:
        yield scp
    finally:
        scp.release.set()
        server.shutdown()


async def test_cancel_aborts_the_association(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                             slow_scp: SlowScp) -> None:
    stored = await upload_all(http, make_series(3))
    await call(http, "PUT", "/modalities/slow", ["SLOW", "127.0.0.1", slow_scp.port])
    status, answer = await call(http, "POST", "/modalities/slow/store",
                                {"Resources": [stored[0]["ParentStudy"]], "Asynchronous": True, "Timeout": 0})
    assert await asyncio.to_thread(slow_scp.received.wait, 10)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    assert (await call(http, "POST", f"/jobs/{answer['ID']}/cancel"))[0] == 200
    info = await wait_job(http, answer["ID"])
    assert loop.time() - begin < 1.0
    assert info["State"] == "Failure" and info["ErrorCode"] == 37
    # The remote's association thread is busy in its handler: it sees the A-ABORT once the handler returns.
    slow_scp.release.set()
    assert await asyncio.to_thread(slow_scp.aborted.wait, 5)
    assert len(slow_scp.stored) <= 1  # the two other instances were never sent


async def test_slow_remote_times_out(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                     slow_scp: SlowScp) -> None:
    stored = await upload_all(http, make_series(2))
    await call(http, "PUT", "/modalities/slow", ["SLOW", "127.0.0.1", slow_scp.port])
    loop = asyncio.get_running_loop()
    begin = loop.time()
    status, error = await call(http, "POST", "/modalities/slow/store",
                               {"Resources": [stored[0]["ParentSeries"]], "Timeout": 1})
    assert 0.9 < loop.time() - begin < 5
    assert status == 500 and error["OrthancStatus"] == 9
    assert "C-STORE" in error["Details"]


async def test_pause_and_resume_store(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                      slow_scp: SlowScp) -> None:
    stored = await upload_all(http, make_series(2))
    await call(http, "PUT", "/modalities/slow", ["SLOW", "127.0.0.1", slow_scp.port])
    status, answer = await call(http, "POST", "/modalities/slow/store",
                                {"Resources": [stored[0]["ParentSeries"]], "Asynchronous": True})
    assert await asyncio.to_thread(slow_scp.received.wait, 10)
    assert (await call(http, "POST", f"/jobs/{answer['ID']}/pause"))[0] == 200
    assert (await call(http, "GET", f"/jobs/{answer['ID']}"))[1]["State"] == "Paused"
    slow_scp.release.set()
    assert (await call(http, "POST", f"/jobs/{answer['ID']}/resume"))[0] == 200
    info = await wait_job(http, answer["ID"])
    assert info["State"] == "Success" and info["Content"]["InstancesCount"] == 2
    assert len(set(slow_scp.stored)) == 2  # the interrupted instance was sent again on resume


async def test_store_to_a_peer_refusing_the_sop_class_is_no_presentation_context(
        server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """A peer that accepts no context for the SOP class: Orthanc's NoPresentationContext (2015), not a bare
    network error, and echo still works against it."""
    ae = AE(ae_title="ECHOONLY")
    ae.add_supported_context(Verification)
    port = free_port()
    scp = ae.start_server(("127.0.0.1", port), block=False)
    try:
        stored = await upload_all(http, [make_instance()])
        await call(http, "PUT", "/modalities/echoonly", ["ECHOONLY", "127.0.0.1", port])
        assert await call(http, "POST", "/modalities/echoonly/echo", {}) == (200, {})
        status, error = await call(http, "POST", "/modalities/echoonly/store", [stored[0]["ID"]])
        assert status == 500 and error["OrthancStatus"] == 2015
        sop_class = pydicom.dcmread(io.BytesIO(make_instance())).SOPClassUID
        assert error["Details"] == (f"Cannot C-Store an instance of SOPClassUID {sop_class}, the destination has "
                                    "not accepted any TransferSyntax for this SOPClassUID")
    finally:
        scp.shutdown()


async def test_store_every_shared_syntax_in_one_request(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                        dest: Any) -> None:
    """All of ../shared/testdata's transfer syntaxes in one store, as real Orthanc sends them (17 of 17 to a
    storescp +xa): among them a bare data set without File Meta (1.2.840.10008.1.2.dcm), which went through
    pynetdicom unlabelled and failed the whole job with an internal error."""
    from tests.conftest import TESTDATA

    files = sorted((TESTDATA / "TransferSyntaxes").glob("*.dcm"))
    stored = await upload_all(http, [f.read_bytes() for f in files])
    await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", dest.port])
    status, answer = await call(http, "POST", "/modalities/dest/store", sorted({s["ParentPatient"] for s in stored}))
    assert status == 200, answer
    assert (answer["InstancesCount"], answer["FailedInstancesCount"]) == (len(files), 0)
    sent = {str(pydicom.dcmread(f, stop_before_pixels=True, force=True).SOPInstanceUID) for f in files}
    assert sop_uids(dest.files()) == sent
