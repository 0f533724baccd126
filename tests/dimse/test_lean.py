"""The lean C-STORE receive (dimse/lean.py) over a hand-driven association: every byte the SCU sends is ours to
shape (fragments, PDV packing, aborts, malformed PDUs), so the tests see exactly what the DUL thread gets.

The SCU speaks DICOM upper layer by hand on a blocking socket in a worker thread; the server runs in-process.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import struct
from collections.abc import Iterator

import aiohttp
import pydicom
import pytest
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ
from pynetdicom.dimse_primitives import C_ECHO, C_STORE

import orthanc_lite
from orthanc_lite.dimse import fastpath, lean
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import in_thread, requires_dcmtk, run_tool

CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def _item(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def _associate_rq(called: str, calling: str, contexts: list[tuple[int, str, str]]) -> bytes:
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + b"\0" * 32
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for cx_id, abstract, syntax in contexts:
        body += _item(0x20, bytes([cx_id, 0, 0, 0]) + _item(0x30, abstract.encode()) + _item(0x40, syntax.encode()))
    body += _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, b"1.2.3.4"))
    return struct.pack(">BBL", 1, 0, len(body)) + body


def _pdata(pdvs: list[tuple[int, int, bytes]]) -> bytes:
    """A P-DATA-TF PDU of (context ID, control header, fragment) PDVs."""
    body = b"".join(struct.pack(">LBB", len(f) + 2, cx, control) + f for cx, control, f in pdvs)
    return struct.pack(">BBL", 4, 0, len(body)) + body


class RawScu:
    """An association driven byte by byte."""

    def __init__(self, port: int, contexts: list[tuple[int, str, str]]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(_associate_rq("ORTHANC", "RAWSCU", contexts))
        kind, body = self.read_pdu()
        assert kind == 0x02, f"association not accepted (PDU type {kind:#x})"
        self.accepted = self._accepted_contexts(body)

    @staticmethod
    def _accepted_contexts(body: bytes) -> set[int]:
        accepted, pos = set(), 68
        while pos < len(body):
            kind, _, length = struct.unpack_from(">BBH", body, pos)
            if kind == 0x21 and body[pos + 6] == 0:
                accepted.add(body[pos + 4])
            pos += 4 + length
        return accepted

    def _recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def read_pdu(self) -> tuple[int, bytes]:
        kind, _, length = struct.unpack(">BBL", self._recv(6))
        return kind, self._recv(length)

    def read_status(self) -> int:
        """The Status of the next DIMSE response (one command PDV)."""
        kind, body = self.read_pdu()
        assert kind == 0x04, f"expected P-DATA-TF, got PDU type {kind:#x}"
        command = lean.decode_command(body[6:])
        assert command is not None
        return struct.unpack("<H", command[0x0900])[0]

    def release(self) -> None:
        self.sock.sendall(struct.pack(">BBLL", 5, 0, 4, 0))
        kind, _ = self.read_pdu()
        assert kind == 0x06
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def _store_command(sop_instance: str, message_id: int = 1) -> bytes:
    rq = C_STORE()
    rq.MessageID = message_id
    rq.AffectedSOPClassUID = CT
    rq.AffectedSOPInstanceUID = sop_instance
    rq.Priority = 2
    rq.DataSet = io.BytesIO(b"")
    message = C_STORE_RQ()
    message.primitive_to_message(rq)
    return _encode_command(message)


def _encode_command(message: object) -> bytes:
    from pynetdicom.dsutils import encode

    return encode(message.command_set, True, True)  # type: ignore[attr-defined]


def _echo_command(message_id: int) -> bytes:
    rq = C_ECHO()
    rq.MessageID = message_id
    rq.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(rq)
    return _encode_command(message)


def _instance(size: int = 8, **tags: object) -> tuple[str, bytes, bytes]:
    """(SOPInstanceUID, the Part 10 file, its data set as sent on the wire in Explicit VR Little Endian)."""
    raw = make_instance(size=size, **tags)
    ds = pydicom.dcmread(io.BytesIO(raw))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    out = pydicom.filebase.DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(out, ds)
    return str(ds.SOPInstanceUID), raw, out.getvalue()


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos:pos + size]


async def _stored_file(http: aiohttp.ClientSession, sop_instance: str) -> bytes | None:
    async with http.post("/tools/lookup", data=sop_instance) as resp:
        found = await resp.json()
    if not found:
        return None
    async with http.get(f"/instances/{found[0]['ID']}/file") as resp:
        assert resp.status == 200
        return await resp.read()


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- tests -----------------------------------------------------------------------------------------


async def test_fragmented_data_set_is_stored_byte_exact(server: orthanc_lite.Server,
                                                        http: aiohttp.ClientSession) -> None:
    """A data set cut into 7-byte PDVs, packed three per PDU over many PDUs (the command in a PDU of its own,
    then with the first fragments), is stored as pynetdicom's receive would write it, byte for byte."""
    uid_a, _, data_a = _instance(size=16)
    uid_b, _, data_b = _instance(size=16)

    def send() -> list[int]:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE)])
        statuses = []
        for uid, data, with_command in ((uid_a, data_a, False), (uid_b, data_b, True)):
            pieces = list(_chunks(data, 7))
            pdvs = [(1, 0x02 if i == len(pieces) - 1 else 0x00, p) for i, p in enumerate(pieces)]
            command = (1, 0x03, _store_command(uid))
            if with_command:  # command and the first data fragments in one PDU
                pdvs.insert(0, command)
            else:
                scu.sock.sendall(_pdata([command]))
            for pos in range(0, len(pdvs), 3):
                scu.sock.sendall(_pdata(pdvs[pos:pos + 3]))
            statuses.append(scu.read_status())
        scu.release()
        return statuses

    before = lean.served()
    assert await in_thread(send) == [0x0000, 0x0000]
    # both take the lean path; only the first could miss it, on a machine too loaded for the reactor to start
    # within lean.IDLE_PATIENCE
    assert before + 1 <= lean.served() <= before + 2
    for uid, data in ((uid_a, data_a), (uid_b, data_b)):
        expected = fastpath.file_meta_prefix(CT, uid, EXPLICIT_LE) + data
        assert await _stored_file(http, uid) == expected


async def test_store_echo_store_on_one_association_keeps_the_order(server: orthanc_lite.Server,
                                                                   http: aiohttp.ClientSession) -> None:
    """A C-ECHO between two C-STOREs takes pynetdicom's path; every answer comes back in request order."""
    uid_a, _, data_a = _instance()
    uid_b, _, data_b = _instance()

    def send() -> list[tuple[int, int]]:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE), (3, VERIFICATION, EXPLICIT_LE)])
        answers = []
        for message_id, uid, data in ((1, uid_a, data_a), (2, None, None), (3, uid_b, data_b)):
            if uid is None:
                scu.sock.sendall(_pdata([(3, 0x03, _echo_command(message_id))]))
            else:
                scu.sock.sendall(_pdata([(1, 0x03, _store_command(uid, message_id)), (1, 0x02, data)]))
            kind, body = scu.read_pdu()
            command = lean.decode_command(body[6:])
            assert kind == 0x04 and command is not None
            answers.append((struct.unpack("<H", command[0x0120])[0], struct.unpack("<H", command[0x0900])[0]))
        scu.release()
        return answers

    before = lean.served()
    assert await in_thread(send) == [(1, 0), (2, 0), (3, 0)]
    assert before + 1 <= lean.served() <= before + 2  # as above
    assert await _stored_file(http, uid_a) is not None
    assert await _stored_file(http, uid_b) is not None


async def test_command_split_over_two_pdus_is_still_stored(server: orthanc_lite.Server,
                                                           http: aiohttp.ClientSession) -> None:
    """A command set in two PDUs is left to pynetdicom (not the lean path): still stored, still answered."""
    uid, _, data = _instance()
    command = _store_command(uid)

    def send() -> int:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE)])
        scu.sock.sendall(_pdata([(1, 0x01, command[:20])]))
        scu.sock.sendall(_pdata([(1, 0x03, command[20:])]))
        scu.sock.sendall(_pdata([(1, 0x02, data)]))
        status = scu.read_status()
        scu.release()
        return status

    before = lean.served()
    assert await in_thread(send) == 0x0000
    assert lean.served() == before  # pynetdicom's path
    assert await _stored_file(http, uid) == fastpath.file_meta_prefix(CT, uid, EXPLICIT_LE) + data


@pytest.mark.parametrize("spilled", [False, True], ids=["in-memory", "spilled"])
async def test_abort_mid_data_set_leaves_nothing(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                 spilled: bool) -> None:
    """An A-ABORT after part of the data set (in memory, or past the spill threshold) stores nothing and removes
    the spool file."""
    uid, _, data = _instance(size=1500 if spilled else 16)  # 1500x1500x2 bytes > IN_MEMORY_BYTES
    assert (len(data) > fastpath.IN_MEMORY_BYTES) == spilled
    incoming = server.context.storage.incoming_dir()

    def send() -> None:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE)])
        scu.sock.sendall(_pdata([(1, 0x03, _store_command(uid))]))
        for piece in list(_chunks(data, 16000))[:-1]:
            scu.sock.sendall(_pdata([(1, 0x00, piece)]))
        scu.sock.sendall(struct.pack(">BBLBBBB", 7, 0, 4, 0, 0, 0, 0))  # A-ABORT
        scu.close()

    await in_thread(send)
    await _until(lambda: os.listdir(incoming) == [])
    assert await _stored_file(http, uid) is None
    async with http.get("/instances") as resp:
        assert await resp.json() == []


async def test_malformed_pdu_is_rejected_with_an_abort(server: orthanc_lite.Server,
                                                       http: aiohttp.ClientSession) -> None:
    """A P-DATA-TF whose PDV length runs past the PDU, mid data set: the server aborts, as pynetdicom does, and
    nothing is stored."""
    uid, _, data = _instance()

    def send() -> int:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE)])
        scu.sock.sendall(_pdata([(1, 0x03, _store_command(uid)), (1, 0x00, data[:100])]))
        bad = struct.pack(">BBL", 4, 0, 10) + struct.pack(">LBB", 999, 1, 0x02) + b"xxxx"
        scu.sock.sendall(bad)
        kind, _ = scu.read_pdu()
        scu.close()
        return kind

    assert await in_thread(send) == 0x07  # A-ABORT
    await _until(lambda: os.listdir(server.context.storage.incoming_dir()) == [])
    assert await _stored_file(http, uid) is None


async def test_unknown_pdu_type_is_rejected_with_an_abort(server: orthanc_lite.Server) -> None:
    def send() -> int:
        scu = RawScu(server.dicom_port, [(1, CT, EXPLICIT_LE)])
        scu.sock.sendall(struct.pack(">BBL", 0x42, 0, 2) + b"zz")
        kind, _ = scu.read_pdu()
        scu.close()
        return kind

    assert await in_thread(send) == 0x07


@requires_dcmtk
async def test_four_parallel_storescu_associations(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                   tmp_path: os.PathLike[str]) -> None:
    """dcmtk storescu over 4 associations at once: every instance stored, byte-exact behind our File Meta."""
    sent: dict[str, bytes] = {}
    folders = []
    for n in range(4):
        folder = os.path.join(str(tmp_path), f"part{n}")
        os.makedirs(folder)
        folders.append(folder)
        for i in range(10):
            uid, raw, data = _instance(patient_id=f"LEAN{n}", instance_number=i + 1)
            with open(os.path.join(folder, f"{i}.dcm"), "wb") as f:
                f.write(raw)
            sent[uid] = data
    before = lean.served()
    results = await asyncio.gather(*(run_tool("storescu", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port),
                                              "+sd", folder) for folder in folders))
    assert all(r.ok for r in results), [r.output for r in results if not r.ok]
    # the first request of an association may arrive before its reactor took its thread slot: pynetdicom's path
    assert before + 36 <= lean.served() <= before + 40
    async with http.get("/instances") as resp:
        assert len(await resp.json()) == 40
    for uid, data in list(sent.items())[::7]:
        assert await _stored_file(http, uid) == fastpath.file_meta_prefix(CT, uid, EXPLICIT_LE) + data
