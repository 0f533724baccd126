"""C-MOVE (movescu to a dcmtk storescp, pynetdicom for the counters) and C-GET (getscu, pynetdicom)."""

from __future__ import annotations

import asyncio
import io
import os
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role
from pynetdicom import evt as pevt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import TESTDATA
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import (
    Storescp,
    in_thread,
    requires_dcmtk,
    run_tool,
    storescp,
)

pytestmark = requires_dcmtk

STUDY = "1.2.826.0.1.99"
RETRIEVE_OPEN = {"DicomAlwaysAllowMove": True, "DicomAlwaysAllowGet": True}


@dataclass
class Env:
    server: orthanc_lite.Server
    http: aiohttp.ClientSession
    dest: Storescp
    sops: list[str]


async def _populate(http: aiohttp.ClientSession) -> list[str]:
    sops = []
    for i in range(3):
        sop = f"{STUDY}.1.{i + 1}"
        sops.append(sop)
        async with http.post("/instances", data=make_instance("MOVEPAT", study_uid=STUDY, series_uid=STUDY + ".1",
                                                               sop_uid=sop, instance_number=i + 1,
                                                               AccessionNumber="ACC-MOVE")) as r:
            assert r.status == 200
    async with http.post("/instances", data=make_instance("OTHER", study_uid="1.2.826.0.1.98")) as r:
        assert r.status == 200
    return sops


@pytest.fixture
async def env(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Env]:
    async with storescp(tmp_path / "dest") as dest:
        s = settings.replace(**RETRIEVE_OPEN, DicomModalities={"dest": ["DEST", "127.0.0.1", dest.port]})
        async with orthanc_lite.serve(s, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            yield Env(srv, http, dest, await _populate(http))


def _received_sops(dest: Storescp) -> list[str]:
    return sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in dest.files())


async def test_movescu_study_to_storescp(env: Env) -> None:
    result = await run_tool("movescu", "-v", "-S", "-aet", "MOVESCU", "-aec", "ORTHANC", "-aem", "DEST",
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                            "127.0.0.1", str(env.server.dicom_port))
    assert result.ok, result.output
    assert result.output.count("(Pending)") >= 2, result.output
    assert "Received Final Move Response (Success)" in result.output, result.output
    assert _received_sops(env.dest) == env.sops


async def test_movescu_unknown_destination_fails(env: Env) -> None:
    result = await run_tool("movescu", "-v", "-S", "-aec", "ORTHANC", "-aem", "NOWHERE",
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                            "127.0.0.1", str(env.server.dicom_port))
    assert "Move Destination unknown" in result.output or "MoveDestinationUnknown" in result.output, result.output
    assert env.dest.files() == []


def _move(port: int, identifier: Dataset, destination: str = "DEST") -> list[tuple[int, int, int, int]]:
    """(status, remaining, completed, failed) of every C-MOVE response."""
    ae = AE(ae_title="MOVER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    assert assoc.is_established
    out = []
    try:
        for rsp, _ in assoc.send_c_move(identifier, destination, StudyRootQueryRetrieveInformationModelMove):
            if "Status" not in rsp:
                continue
            out.append((int(rsp.Status), int(rsp.get("NumberOfRemainingSuboperations", -1) or 0),
                        int(rsp.get("NumberOfCompletedSuboperations", -1) or 0),
                        int(rsp.get("NumberOfFailedSuboperations", -1) or 0)))
    finally:
        assoc.release()
    return out


async def test_move_pending_counters(env: Env) -> None:
    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"
    q.SeriesInstanceUID = STUDY + ".1"
    responses = await in_thread(_move, env.server.dicom_port, q)
    assert [r[0] for r in responses] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert [r[1] for r in responses[:3]] == [2, 1, 0]
    assert responses[-1][2] == 3 and responses[-1][3] == 0


async def test_move_keys_accession_uid_list_and_guessed_level(env: Env) -> None:
    port = env.server.dicom_port
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.AccessionNumber = "ACC-MOVE"
    q.StudyInstanceUID = ""
    assert (await in_thread(_move, port, q))[-1][:3] == (0x0000, 0, 3)
    q = Dataset()
    q.QueryRetrieveLevel = "IMAGE"
    q.SOPInstanceUID = "\\".join(env.sops[:2])
    assert (await in_thread(_move, port, q))[-1][:3] == (0x0000, 0, 2)
    q = Dataset()  # no QueryRetrieveLevel: the deepest key present decides (SOPInstanceUID here)
    q.StudyInstanceUID = STUDY
    q.SOPInstanceUID = env.sops[0]
    assert (await in_thread(_move, port, q))[-1][:3] == (0x0000, 0, 1)


async def test_move_bad_identifier_is_a_failure(env: Env) -> None:
    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"  # no SeriesInstanceUID
    q.PatientID = "MOVEPAT"
    responses = await in_thread(_move, env.server.dicom_port, q)
    assert len(responses) == 1 and responses[0][0] & 0xF000 in (0xA000, 0xC000)  # a failure


async def test_move_not_allowed_by_default(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with storescp(tmp_path / "dest") as dest:
        s = settings.replace(DicomModalities={"dest": ["DEST", "127.0.0.1", dest.port]})
        async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
            result = await run_tool("movescu", "-S", "-aet", "STRANGER", "-aec", "ORTHANC", "-aem", "DEST",
                                    "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                                    "127.0.0.1", str(srv.dicom_port))
            assert "Peer aborted Association" in result.output, result.output


async def test_asynchronous_move_runs_as_a_job(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with storescp(tmp_path / "dest") as dest:
        s = settings.replace(**RETRIEVE_OPEN, SynchronousCMove=False,
                             DicomModalities={"dest": ["DEST", "127.0.0.1", dest.port]})
        async with orthanc_lite.serve(s, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            sops = await _populate(http)
            q = Dataset()
            q.QueryRetrieveLevel = "STUDY"
            q.StudyInstanceUID = STUDY
            responses = await in_thread(_move, srv.dicom_port, q)
            assert responses[-1][0] == 0x0000
            # the job runs in the background: wait for the tracked task, then check the destination
            tasks = list(srv.context._tasks)
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            assert _received_sops(dest) == sops


async def test_move_jpeg_to_a_peer_that_wants_uncompressed(settings: Settings, tmp_path: pathlib.Path) -> None:
    """The destination accepts only uncompressed syntaxes: the JPEG instance is decompressed on the way."""
    received: list[str] = []

    def handle_store(event: object) -> int:
        ds = event.dataset  # type: ignore[attr-defined]
        received.append(str(ds.file_meta.TransferSyntaxUID))
        return 0x0000

    peer = AE(ae_title="PLAIN")
    from pynetdicom import AllStoragePresentationContexts

    for cx in AllStoragePresentationContexts:
        peer.add_supported_context(cx.abstract_syntax, [ExplicitVRLittleEndian])
    server = peer.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(pevt.EVT_C_STORE, handle_store)])
    try:
        port = server.server_address[1]
        s = settings.replace(**RETRIEVE_OPEN, DicomModalities={"plain": ["PLAIN", "127.0.0.1", port]})
        async with orthanc_lite.serve(s, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            jpeg = TESTDATA / "TransferSyntaxes" / "1.2.840.10008.1.2.4.50.dcm"
            async with http.post("/instances", data=jpeg.read_bytes()) as r:
                assert r.status == 200
            ds = pydicom.dcmread(jpeg, stop_before_pixels=True)
            q = Dataset()
            q.QueryRetrieveLevel = "IMAGE"
            q.SOPInstanceUID = ds.SOPInstanceUID
            responses = await in_thread(_move, srv.dicom_port, q, "PLAIN")
            assert responses[-1][:3] == (0x0000, 0, 1), responses
            assert received == [ExplicitVRLittleEndian]
    finally:
        await in_thread(server.shutdown)


# -- C-GET ----------------------------------------------------------------------------------------


async def test_getscu_study(env: Env, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "got"
    out.mkdir()
    result = await run_tool("getscu", "-v", "-S", "-aet", "GETSCU", "-aec", "ORTHANC", "-od", out,
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY}",
                            "127.0.0.1", str(env.server.dicom_port))
    assert result.ok, result.output
    got = sorted(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in out.iterdir())
    assert got == env.sops


def _get(port: int, identifier: Dataset, syntaxes: list[str]) -> tuple[list[int], list[str]]:
    """C-GET proposing CT Image Storage with `syntaxes` only; (statuses, received syntaxes)."""
    received: list[str] = []

    def on_store(event: object) -> int:
        received.append(str(event.context.transfer_syntax))  # type: ignore[attr-defined]
        return 0x0000

    ae = AE(ae_title="GETTER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, syntaxes)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.6.1", syntaxes)  # Ultrasound Image Storage
    roles = [build_role(CTImageStorage, scp_role=True), build_role("1.2.840.10008.5.1.4.1.1.6.1", scp_role=True)]
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC", ext_neg=roles,
                         evt_handlers=[(pevt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    statuses = []
    try:
        for rsp, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
            if "Status" in rsp:
                statuses.append(int(rsp.Status))
    finally:
        assoc.release()
    return statuses, received


async def test_get_over_the_proposed_contexts_only(env: Env) -> None:
    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"
    q.SeriesInstanceUID = STUDY + ".1"
    statuses, received = await in_thread(_get, env.server.dicom_port, q, [ExplicitVRLittleEndian])
    assert statuses[-1] == 0x0000 and len(received) == 3
    assert statuses[:-1] == [0xFF00] * 3


async def test_get_transcodes_for_the_requester(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(**RETRIEVE_OPEN), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        jpeg = TESTDATA / "TransferSyntaxes" / "1.2.840.10008.1.2.4.50.dcm"
        async with http.post("/instances", data=jpeg.read_bytes()) as r:
            assert r.status == 200
        q = Dataset()
        q.QueryRetrieveLevel = "IMAGE"
        q.SOPInstanceUID = pydicom.dcmread(jpeg, stop_before_pixels=True).SOPInstanceUID
        statuses, received = await in_thread(_get, srv.dicom_port, q, [ExplicitVRLittleEndian])
        assert statuses[-1] == 0x0000, statuses
        assert received == [ExplicitVRLittleEndian]


__all__ = ["generate_uid", "io"]


async def test_move_and_get_without_match_fail(env: Env) -> None:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = "1.2.3.4.5.6.7.8.9"
    responses = await in_thread(_move, env.server.dicom_port, q)
    assert len(responses) == 1 and responses[0][0] & 0xF000 == 0xC000  # Orthanc: 0xC000 "unable to process"
    statuses, received = await in_thread(_get, env.server.dicom_port, q, [ExplicitVRLittleEndian])
    assert statuses[-1] == 0xC000 and received == []


async def test_move_with_a_missing_file_counts_a_failure(env: Env) -> None:
    """The file of one instance vanished behind the index's back: that sub-operation fails, the others go."""
    async with env.http.post("/tools/lookup", data=env.sops[0]) as r:
        iid = next(x["ID"] for x in await r.json() if x["Type"] == "Instance")
    attachments = await env.server.context.index.resource_attachments(iid, None)
    assert attachments is not None
    os.unlink(env.server.context.storage.path(attachments[1].uuid))
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = STUDY
    responses = await in_thread(_move, env.server.dicom_port, q)
    status, _remaining, completed, failed = responses[-1]
    assert (status, completed, failed) == (0xB000, 2, 1), responses
    assert _received_sops(env.dest) == env.sops[1:]
