"""The lean C-STORE SCU path (dimse/store_fast.py, StoreSender): the command set it encodes is pynetdicom's to the
byte, what it sends is the stored data set (bit for bit where dcmtk storescp -B and real Orthanc rewrite nothing),
another accepted syntax falls back to pynetdicom, and a peer that aborts, closes or is cancelled ends cleanly."""

from __future__ import annotations

import asyncio
import io
import pathlib
import socket
import threading
import time
from typing import Any

import aiohttp
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.filereader import _read_file_meta_info, read_preamble
from pynetdicom import AE, DEFAULT_TRANSFER_SYNTAXES, evt
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import CTImageStorage

import orthanc_lite
from orthanc_lite.config.remotes import Modality
from orthanc_lite.dimse import reactor, store_fast, store_scu
from orthanc_lite.errors import ErrorCode, OrthancError
from tests.conftest import testdata
from tests.data.make_samples import make_series
from tests.dimse.dimse_helpers import free_port, requires_dcmtk, storescp
from tests.e2e.orthanc_peer import requires_orthanc, spawn_orthanc
from tests.jobs.test_store_scu import call, upload_all, wait_job

SYNTAX_FILES = sorted(testdata("TransferSyntaxes").glob("*.dcm"))
assert SYNTAX_FILES, "the shared test data are missing"
NO_META = testdata("TransferSyntaxes", "1.2.840.10008.1.2.dcm")  # a bare data set, no preamble nor File Meta
# Big Endian is proposed in a context of its own, which storescp and Orthanc refuse (the slow path fails the
# same way): left out of the byte-exact sets.
WITH_META = [p for p in SYNTAX_FILES if p != NO_META and p.name != "1.2.840.10008.1.2.2.dcm"]
# dcmtk's storescp +xa refuses JPEG Lossless process 14 (.57): pynetdicom sends it decompressed. And what its -B
# writes of a deflated data set does not read back the same (real Orthanc's copy does: see the Orthanc test).
FOR_STORESCP = [p for p in WITH_META if p.name not in ("1.2.840.10008.1.2.4.57.dcm", "1.2.840.10008.1.2.5.dcm")]


@pytest.fixture(autouse=True, scope="module")
def _reactor() -> None:
    reactor.install()  # as the server does at startup: the lean path needs its DUL loop


def endpoint(port: int, aet: str = "DEST", timeout: float | None = 10.0) -> store_scu.Endpoint:
    return store_scu.Endpoint("LITE", Modality(aet, "127.0.0.1", port), timeout)


def pairs_of(files: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for data in files:
        meta = store_fast.scan_file_meta(data)
        if meta is None:  # no File Meta: what pydicom makes of it
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
            out.append((str(ds.SOPClassUID), "1.2.840.10008.1.2"))
        else:
            out.append((meta.sop_class, meta.transfer_syntax))
    return out


def dataset_bytes(data: bytes) -> tuple[str, bytes]:
    """(SOPInstanceUID, the bytes after the File Meta group), the offset found by pydicom."""
    fp = io.BytesIO(data)
    read_preamble(fp, False)
    meta = _read_file_meta_info(fp)
    return str(meta.MediaStorageSOPInstanceUID), data[fp.tell():]


def send_all(port: int, files: list[bytes], aet: str = "DEST") -> int:
    """C-STORE every file over one association; how many took the lean path."""
    ep = endpoint(port, aet)
    assoc = store_scu.open_store(ep, pairs_of(files))
    try:
        with store_scu.StoreSender(assoc, ep) as sender:
            for data in files:
                sender.store(data)
            return sender.fast_count
    finally:
        store_scu.release(assoc)


# --- encoders ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sop_class", "sop_instance", "message_id", "originator"), [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", 1, None),
    ("1.2.840.10008.5.1.4.1.1.7", "1.2.3.45", 65535, None),
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.1", 7, ("MOVER", 12)),
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3", 7, ("ODDAET", 0)),
])
def test_command_set_is_pynetdicoms(sop_class: str, sop_instance: str, message_id: int,
                                    originator: tuple[str, int] | None) -> None:
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = sop_class
    primitive.AffectedSOPInstanceUID = sop_instance
    primitive.Priority = 0
    primitive.DataSet = io.BytesIO(b"\0")
    if originator:
        primitive.MoveOriginatorApplicationEntityTitle, primitive.MoveOriginatorMessageID = originator
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    expected = encode(message.command_set, True, True)
    ours = store_fast.store_request_command(sop_class, sop_instance, message_id,
                                            originator_aet=originator[0] if originator else None,
                                            originator_id=originator[1] if originator else None)
    assert ours == expected


@pytest.mark.parametrize("path", SYNTAX_FILES, ids=lambda p: p.name)
def test_file_meta_scan_agrees_with_pydicom(path: pathlib.Path) -> None:
    data = path.read_bytes()
    meta = store_fast.scan_file_meta(data)
    if path == NO_META:
        assert meta is None
        return
    assert meta is not None
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert meta.transfer_syntax == ds.file_meta.TransferSyntaxUID
    assert meta.sop_class == ds.file_meta.MediaStorageSOPClassUID
    assert meta.sop_instance == ds.file_meta.MediaStorageSOPInstanceUID
    assert data[meta.dataset_offset:] == dataset_bytes(data)[1]


def test_file_meta_scan_refuses_files_without_meta() -> None:
    assert store_fast.scan_file_meta(b"\0" * 200) is None
    assert store_fast.scan_file_meta(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x001.2\0") is None


def test_fragments_fit_the_peer_maximum() -> None:
    pieces = store_fast.pdata_pdus(3, b"x" * 100, 46, command=False)  # 40 bytes of data per PDU
    headers = pieces[0::2]
    assert [len(p) for p in pieces[1::2]] == [40, 40, 20]
    assert [h[-1] for h in headers] == [0x00, 0x00, 0x02] and all(h[-2] == 3 for h in headers)
    assert all(int.from_bytes(h[2:6], "big") <= 46 for h in headers)


# --- against dcmtk storescp ---------------------------------------------------------------------------------

@requires_dcmtk
async def test_lean_path_is_byte_exact_to_storescp(tmp_path: pathlib.Path) -> None:
    files = [p.read_bytes() for p in FOR_STORESCP] + make_series(3)
    async with storescp(tmp_path / "in", options=("+xa", "-B")) as scp:
        fast = await asyncio.to_thread(send_all, scp.port, files)
        received = [p.read_bytes() for p in scp.files()]
    assert fast == len(files)
    # storescp writes sequences and group lengths its own way: the same elements, then
    assert sorted(map(elements, received)) == sorted(map(elements, files))
    # and bit for bit where it had nothing to rewrite (our samples, explicit VR little endian)
    assert {dataset_bytes(d)[1] for d in files[-3:]} <= {dataset_bytes(d)[1] for d in received}


@requires_dcmtk
async def test_rest_store_is_byte_exact_to_storescp(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                    tmp_path: pathlib.Path) -> None:
    """POST /modalities/{id}/store of files in many syntaxes (one whose File Meta names another SOP instance than
    its data set: the command carries the data set's, as Orthanc's)."""
    files = [p.read_bytes() for p in FOR_STORESCP]
    await upload_all(http, files)
    async with storescp(tmp_path / "in", options=("+xa", "-B")) as scp:
        await call(http, "PUT", "/modalities/dest", ["DEST", "127.0.0.1", scp.port])
        status, answer = await call(http, "GET", "/instances")
        status, answer = await call(http, "POST", "/modalities/dest/store", answer)
        assert status == 200 and answer["FailedInstancesCount"] == 0, answer
        received = {p.name.split(".", 1)[1]: elements(p.read_bytes()) for p in scp.files()}
    sent = {str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID): elements(data)
            for data in files}
    assert received == sent

@requires_dcmtk
async def test_other_accepted_syntax_falls_back(tmp_path: pathlib.Path) -> None:
    """storescp +xi accepts Implicit VR Little Endian only: the explicit file goes through pynetdicom (converted),
    and so does a file without File Meta; the implicit one through the lean path, on the same association."""
    explicit = testdata("TransferSyntaxes", "1.2.840.10008.1.2.1.dcm").read_bytes()
    implicit = pydicom.dcmread(io.BytesIO(explicit))
    implicit.SOPInstanceUID = implicit.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    implicit.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    buffer = io.BytesIO()
    implicit.save_as(buffer, implicit_vr=True, little_endian=True)
    files = [explicit, buffer.getvalue(), explicit]
    async with storescp(tmp_path / "in", options=("+xi",)) as scp:
        fast = await asyncio.to_thread(send_all, scp.port, files)
        received = [pydicom.dcmread(p) for p in scp.files()]
    assert fast == 1 and len(received) == 2
    assert {str(ds.file_meta.TransferSyntaxUID) for ds in received} == {"1.2.840.10008.1.2"}
    original = pydicom.dcmread(io.BytesIO(explicit))
    converted = next(ds for ds in received if ds.SOPInstanceUID == original.SOPInstanceUID)
    assert converted.PixelData == original.PixelData and converted.PatientName == original.PatientName


# --- peers that misbehave -----------------------------------------------------------------------------------

class MisbehavingScp:
    """A pynetdicom CT storage SCP that aborts, drops the connection or stalls at its `at`-th C-STORE."""

    def __init__(self, behaviour: str, at: int, syntaxes: list[str] | None = None) -> None:
        self.behaviour, self.at = behaviour, at
        self.port = free_port()
        self.count = 0
        self.stalled = threading.Event()
        self.aborted = threading.Event()
        self.go_on = threading.Event()
        self.ae = AE(ae_title="ODD")
        self.ae.add_supported_context(CTImageStorage, syntaxes or [ExplicitVRLittleEndian])

    def on_store(self, event: Any) -> int:
        self.count += 1
        if self.count == self.at:
            if self.behaviour == "abort":
                event.assoc.abort()
            elif self.behaviour == "close":
                event.assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)
            else:
                self.stalled.set()
                self.go_on.wait(10)
        return 0x0000

    def __enter__(self) -> MisbehavingScp:
        handlers = [(evt.EVT_C_STORE, self.on_store), (evt.EVT_ABORTED, lambda e: self.aborted.set()),
                    (evt.EVT_CONN_CLOSE, lambda e: self.aborted.set())]
        self.server = self.ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_on.set()
        self.server.shutdown()


@pytest.fixture
def ct_files() -> list[bytes]:
    return make_series(4)


def test_pynetdicom_peer_takes_the_stored_syntax(ct_files: list[bytes]) -> None:
    """A pynetdicom SCP (orthanc_lite's own) with its default syntaxes, Implicit VR first: the stored syntax is
    proposed alone, as Orthanc does, so it is accepted and the files go the lean way."""
    with MisbehavingScp("none", at=0, syntaxes=DEFAULT_TRANSFER_SYNTAXES) as scp:
        assert send_all(scp.port, ct_files, "ODD") == len(ct_files)
        assert scp.count == len(ct_files)


@pytest.mark.parametrize("behaviour", ["abort", "close"])
def test_peer_gone_mid_set_fails_cleanly(behaviour: str, ct_files: list[bytes]) -> None:
    with MisbehavingScp(behaviour, at=2) as scp:
        ep = endpoint(scp.port, "ODD")
        assoc = store_scu.open_store(ep, pairs_of(ct_files))
        with store_scu.StoreSender(assoc, ep) as sender:
            sender.store(ct_files[0])
            with pytest.raises(OrthancError) as failure:
                sender.store(ct_files[1])
            assert sender.fast_count == 1
        assert failure.value.code == ErrorCode.NetworkProtocol and "C-STORE" in str(failure.value.details)
        assert not assoc.is_established
        deadline = time.monotonic() + 5
        while assoc.dul.is_alive() and time.monotonic() < deadline:  # pynetdicom's threads end too
            time.sleep(0.01)
        assert not assoc.dul.is_alive()
        store_scu.release(assoc)  # a no-op now, and no error


def test_cancel_ends_a_waiting_store_within_a_second(ct_files: list[bytes]) -> None:
    with MisbehavingScp("stall", at=2) as scp:
        ep = endpoint(scp.port, "ODD", timeout=None)  # no DIMSE timeout: only the cancel can end the wait
        assoc = store_scu.open_store(ep, pairs_of(ct_files))
        outcome: dict[str, Any] = {}

        def run() -> None:
            with store_scu.StoreSender(assoc, ep) as sender:
                try:
                    for data in ct_files:
                        sender.store(data)
                except OrthancError as exc:
                    outcome["error"] = exc
                outcome["fast"] = sender.fast_count

        thread = threading.Thread(target=run)
        thread.start()
        assert scp.stalled.wait(10)
        begin = time.monotonic()
        store_scu.abort(assoc)  # as the job's cancel does, from another thread
        thread.join(5)
        assert time.monotonic() - begin < 1.0
        assert outcome["fast"] == 1 and outcome["error"].code == ErrorCode.NetworkProtocol
        scp.go_on.set()
        assert scp.aborted.wait(5)  # the peer saw the association end
        assert scp.count == 2  # nothing sent after the cancel


@requires_dcmtk
async def test_permissive_job_goes_on_after_a_peer_abort(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                          ct_files: list[bytes]) -> None:
    stored = await upload_all(http, ct_files)
    with MisbehavingScp("abort", at=2) as scp:
        await call(http, "PUT", "/modalities/odd", ["ODD", "127.0.0.1", scp.port])
        status, answer = await call(http, "POST", "/modalities/odd/store",
                                    {"Resources": [stored[0]["ParentSeries"]], "Permissive": True})
        assert status == 200, answer
        assert answer["InstancesCount"] == 4 and answer["FailedInstancesCount"] == 1
        status, error = await call(http, "POST", "/modalities/odd/store", {"Resources": [stored[0]["ParentSeries"]]})
        # the same SCP counts on: its 2nd C-STORE is past, so this time all go through
        assert status == 200 and error["FailedInstancesCount"] == 0


# --- against real Orthanc ---------------------------------------------------------------------------------------

@pytest.mark.orthanc
@requires_orthanc
async def test_lean_path_is_byte_exact_to_orthanc(tmp_path: pathlib.Path) -> None:
    files = [p.read_bytes() for p in WITH_META] + make_series(2)
    orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", {"DicomAet": "ORTHANC"})
    try:
        fast = await asyncio.to_thread(send_all, orthanc.dicom_port, files, "ORTHANC")
        received: list[bytes] = []
        async with aiohttp.ClientSession(base_url=orthanc.url) as http:
            async with http.get("/instances") as resp:
                ids = await resp.json()
            for public_id in ids:
                async with http.get(f"/instances/{public_id}/file") as resp:
                    received.append(await resp.read())
    finally:
        await asyncio.to_thread(orthanc.stop)
    assert fast == len(files)
    # Orthanc writes what it received through DCMTK (group lengths dropped): the same elements, then
    assert sorted(map(elements, received)) == sorted(map(elements, files))
    # and bit for bit where there was nothing to drop (our samples)
    assert {dataset_bytes(d)[1] for d in files[-2:]} <= {dataset_bytes(d)[1] for d in received}


def elements(data: bytes) -> str:
    """A data set's elements, group lengths left out, as comparable text."""
    ds = pydicom.dcmread(io.BytesIO(data))
    return repr(sorted((str(e.tag), e.VR, repr(e.value)) for e in ds.iterall() if e.tag.element != 0))


@requires_dcmtk
async def test_pause_mid_step_keeps_what_was_sent(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                  ct_files: list[bytes]) -> None:
    """A step sends several instances: paused while the 3rd waits for its answer, the job resumes with the 3rd
    (the 1st and 2nd are not sent again)."""
    stored = await upload_all(http, ct_files)
    with MisbehavingScp("stall", at=3) as scp:
        await call(http, "PUT", "/modalities/odd", ["ODD", "127.0.0.1", scp.port])
        status, answer = await call(http, "POST", "/modalities/odd/store",
                                    {"Resources": [stored[0]["ParentSeries"]], "Asynchronous": True})
        assert status == 200
        assert await asyncio.to_thread(scp.stalled.wait, 10)
        assert (await call(http, "POST", f"/jobs/{answer['ID']}/pause"))[0] == 200
        scp.go_on.set()
        assert (await call(http, "POST", f"/jobs/{answer['ID']}/resume"))[0] == 200
        info = await wait_job(http, answer["ID"])
        assert info["State"] == "Success" and info["Content"]["FailedInstancesCount"] == 0
        assert scp.count == 5  # 1, 2, 3 (interrupted), 3 again, 4
