"""The lean C-STORE SCU data path: a stored DICOM file sent as it is, without pydicom or pynetdicom's DIMSE machinery.

pynetdicom costs ~2 ms of CPU per C-STORE (DUL state machine, PDU and primitive objects, three threads handing
each message over, the dataset encode); Orthanc's sender ~0.5 ms. When the file's transfer syntax is exactly
the one accepted for its SOP class, the data set is the file's bytes after its File Meta group: this module
encodes the C-STORE-RQ command set (byte-identical to pynetdicom's, tests/dimse/test_store_fast.py), writes
the P-DATA-TF PDUs fragmented to the peer's maximum PDU length, and reads the C-STORE-RSP back, on the
association's socket that the parked DUL thread lends (reactor.lend_socket). pynetdicom keeps negotiation,
release and abort, and every other case (another syntax, no DUL to park).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Final

from .fastpath import _implicit, _pad_uid
from .reactor import SocketLend

C_STORE_RQ: Final = 0x0001
C_STORE_RSP: Final = 0x8001
PRIORITY_MEDIUM: Final = 0  # as Orthanc (DIMSE_PRIORITY_MEDIUM); the slow path sends it too
DATASET_PRESENT: Final = 0x0001
NO_DATASET: Final = 0x0101
# Small PDUs are joined into one send() (a 1 KB instance is one syscall); bigger data goes out piece by piece.
JOIN_BELOW: Final = 256 * 1024
RECV_CHUNK: Final = 65536
CANCEL_POLL: Final = 0.2

_PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">BBIIBB")  # PDU type, reserved, PDU length, item length, context ID, control
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_LONG_VRS: Final = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"})


class PeerFailure(Exception):
    """The peer aborted, closed, answered something unexpected or too late: the association is unusable."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What the File Meta group of a DICOM file says, and where its data set starts."""

    dataset_offset: int
    sop_class: str
    sop_instance: str
    transfer_syntax: str


def scan_file_meta(data: bytes | memoryview) -> FileMeta | None:
    """Walk the File Meta group (Explicit VR Little Endian) after the preamble; None if the file has none or it
    lacks a needed UID."""
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        return None
    offset, end = 132, len(data)
    values: dict[int, str] = {}
    while offset + 8 <= end:
        group, element, vr, short_length = _EXPLICIT_SHORT.unpack_from(data, offset)
        if group != 2:
            break
        if vr in _LONG_VRS:
            if offset + 12 > end:
                return None
            (length,) = struct.unpack_from("<I", data, offset + 8)
            offset += 12
        else:
            length = short_length
            offset += 8
        if element in (0x02, 0x03, 0x10):
            values[element] = bytes(data[offset:offset + length]).rstrip(b"\0 ").decode("ascii", "replace")
        offset += length
    if offset > end or not all(values.get(e) for e in (0x02, 0x03, 0x10)):
        return None
    return FileMeta(offset, values[0x02], values[0x03], values[0x10])


def store_request_command(sop_class: str, sop_instance: str, message_id: int, priority: int = PRIORITY_MEDIUM,
                          originator_aet: str | None = None, originator_id: int | None = None) -> bytes:
    """The command set of a C-STORE-RQ with a data set, Implicit VR Little Endian (as pynetdicom encodes it)."""
    body = (_implicit(0x0002, _pad_uid(sop_class))
            + _implicit(0x0100, struct.pack("<H", C_STORE_RQ))
            + _implicit(0x0110, struct.pack("<H", message_id))
            + _implicit(0x0700, struct.pack("<H", priority))
            + _implicit(0x0800, struct.pack("<H", DATASET_PRESENT))
            + _implicit(0x1000, _pad_uid(sop_instance)))
    if originator_aet:
        aet = originator_aet.encode("ascii")
        body += _implicit(0x1030, aet + b" " * (len(aet) % 2))
    if originator_id is not None:
        body += _implicit(0x1031, struct.pack("<H", originator_id))
    return _implicit(0x0000, struct.pack("<I", len(body))) + body


def decode_response_command(command: bytes) -> dict[int, bytes]:
    """The elements of an Implicit VR Little Endian command set, by element number (group 0000)."""
    out: dict[int, bytes] = {}
    offset, end = 0, len(command)
    while offset + 8 <= end:
        group, element, length = _IMPLICIT_HEADER.unpack_from(command, offset)
        offset += 8
        if group != 0 or offset + length > end:
            raise PeerFailure("malformed DIMSE command set in the response")
        out[element] = command[offset:offset + length]
        offset += length
    return out


def pdata_pdus(context_id: int, payload: bytes | memoryview, max_pdu: int, command: bool) -> list[bytes | memoryview]:
    """The P-DATA-TF PDUs of one message part, one PDV each, fragments sized so that each PDU is at most
    `max_pdu` long (0: no limit), as pynetdicom fragments; headers and data as separate pieces."""
    view = memoryview(payload)
    size = len(view)
    step = max_pdu - 6 if max_pdu else max(size, 1)
    base = 0x01 if command else 0x00
    pieces: list[bytes | memoryview] = []
    start = 0
    while True:
        chunk = view[start:start + step]
        start += len(chunk)
        last = start >= size
        pieces.append(_PDV_HEADER.pack(0x04, 0, len(chunk) + 6, len(chunk) + 2, context_id, base | (2 if last else 0)))
        pieces.append(chunk)
        if last:
            return pieces


class FastStorer:
    """C-STOREs on a lent socket (non-blocking). `timeout` bounds every wait (None: none); a cancel of the lend
    ends a wait within CANCEL_POLL."""

    def __init__(self, lend: SocketLend, max_pdu: int, timeout: float | None) -> None:
        self.lend = lend
        self.sock: socket.socket = lend.socket
        self.max_pdu = max_pdu
        self.timeout = timeout
        self.mid_message = False  # part of a request written: the stream is no place for another PDU
        self._buffer = bytearray()

    # -- the exchange ---------------------------------------------------------------------------------
    def store(self, context_id: int, command: bytes, dataset: bytes | memoryview, message_id: int) -> int:
        """Send one C-STORE-RQ and return the Status of its C-STORE-RSP."""
        pieces = pdata_pdus(context_id, command, self.max_pdu, True)
        pieces += pdata_pdus(context_id, dataset, self.max_pdu, False)
        self.mid_message = True
        if len(dataset) < JOIN_BELOW:
            self._send(b"".join(pieces))
        else:
            for piece in pieces:
                self._send(piece)
        self.mid_message = False
        elements = self._read_response()
        field = elements.get(0x0100)
        if field is None or struct.unpack("<H", field[:2])[0] != C_STORE_RSP:
            raise PeerFailure("the peer answered a C-STORE with another DIMSE message")
        answered = elements.get(0x0120)
        if answered is None or struct.unpack("<H", answered[:2])[0] != message_id:
            raise PeerFailure("the peer answered another message ID")
        status = elements.get(0x0900)
        if status is None or len(status) < 2:
            raise PeerFailure("C-STORE response without a status")
        return int(struct.unpack("<H", status[:2])[0])

    def _read_response(self) -> dict[int, bytes]:
        """Read P-DATA-TF PDUs up to the last command fragment (and any data set that follows it); the elements
        of the response's command set."""
        command = bytearray()
        command_done = False
        while True:
            pdu_type, _, length = _PDU_HEADER.unpack(self._read_exactly(6))
            body = self._read_exactly(length)
            if pdu_type == 0x07:
                raise PeerFailure("Association Aborted by the peer")
            if pdu_type != 0x04:
                raise PeerFailure(f"unexpected PDU of type 0x{pdu_type:02X} while waiting for a C-STORE response")
            offset = 0
            while offset + 6 <= len(body):
                (item_length,) = struct.unpack_from(">I", body, offset)
                control = body[offset + 5]
                fragment = body[offset + 6:offset + 4 + item_length]
                offset += 4 + item_length
                if control & 1:
                    command += fragment
                    if control & 2:
                        command_done = True
                        elements = decode_response_command(bytes(command))
                        dataset_type = elements.get(0x0800, b"\x01\x01")
                        if struct.unpack("<H", dataset_type[:2])[0] == NO_DATASET:
                            return elements  # decoded once (the usual answer)
                elif command_done and control & 2:  # the end of a data set the response carried: ignored
                    return decode_response_command(bytes(command))

    # -- the socket -----------------------------------------------------------------------------------
    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _wait(self, deadline: float | None, readable: bool) -> None:
        if self.lend.cancelled:
            raise PeerFailure("cancelled")
        remaining = CANCEL_POLL if deadline is None else min(CANCEL_POLL, deadline - time.monotonic())
        if remaining <= 0:
            raise PeerFailure("DIMSE timeout: no answer from the peer")
        try:
            if readable:
                select.select([self.sock], [], [self.sock], remaining)
            else:
                select.select([], [self.sock], [self.sock], remaining)
        except (OSError, ValueError) as exc:
            raise PeerFailure(f"connection lost ({exc})") from None

    def _send(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        deadline = self._deadline()
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                self._wait(deadline, readable=False)
                continue
            except OSError as exc:
                raise PeerFailure(f"connection lost ({exc})") from None
            view = view[sent:]

    def _read_exactly(self, count: int) -> bytes:
        deadline = self._deadline()
        buffer = self._buffer
        while len(buffer) < count:
            try:
                chunk = self.sock.recv(max(RECV_CHUNK, count - len(buffer)))
            except (BlockingIOError, InterruptedError):
                self._wait(deadline, readable=True)
                continue
            except OSError as exc:
                raise PeerFailure(f"connection lost ({exc})") from None
            if not chunk:
                raise PeerFailure("cancelled" if self.lend.cancelled else "the peer closed the connection")
            buffer += chunk
        out = bytes(buffer[:count])
        del buffer[:count]
        return out

    @property
    def has_unread(self) -> bool:
        """Bytes read past the last response (a peer that talks out of turn)."""
        return bool(self._buffer)


def exact_context(assoc: Any, sop_class: str, transfer_syntax: str) -> int | None:
    """The ID of an accepted context for (SOP class, transfer syntax) exactly, SCU role; None if there is none."""
    for cx in assoc.accepted_contexts:
        if cx.abstract_syntax == sop_class and cx.transfer_syntax and cx.transfer_syntax[0] == transfer_syntax:
            if getattr(cx, "as_scu", True) is False:
                continue
            return int(cx.context_id)
    return None
