"""The lean C-STORE receive of our SCP: in the DUL thread, straight from the socket to the store line and back.

Through pynetdicom, each received instance crosses three threads and a lot of Python: the DUL thread decodes every
P-DATA-TF into PDU objects and primitives and runs the state machine, the association thread picks up the decoded
message, builds a C-STORE primitive, runs the service class and the event machinery, and its response goes back
through the DUL thread's queue and state machine. That machinery alone caps a no-op SCP at ~500 instances/s here.

For an association our SCP accepted (dimse/handlers.py enables it) and while it is in data transfer with nothing
else in flight, the DUL loop (dimse/reactor.py) hands each incoming PDU to `LeanReceiver.read_pdu`. A P-DATA-TF
whose first PDV is a whole C-STORE-RQ command set on an accepted storage context (and which the association may
send) starts a lean request: its data set PDVs go into a `fastpath.SpoolBuffer` (memory, then the incoming
folder), and once the last one is in, the store line runs in this thread (the instance is durable when it
returns) and the C-STORE-RSP bytes are written to the socket. The next PDU is only read after that, so responses
keep the order of the requests. Anything else (other PDU types, other messages, a command split over PDUs, a
malformed PDU, an association that is paused, releasing or has a message in flight through pynetdicom, trace
handlers bound) takes pynetdicom's own path exactly as before: the PDU bytes already read are decoded and queued
as pynetdicom's `_read_pdu_data` does. A transfer cut mid data set drops its spool.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pynetdicom import _config, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

from . import fastpath

logger = logging.getLogger(__name__)

P_DATA_TF: Final = 0x04
_PDU_TYPES: Final = frozenset(range(0x01, 0x08))
C_STORE_RQ: Final = 0x0001
NO_DATA_SET: Final = 0x0101
IDLE_PATIENCE: Final = 0.05  # seconds the lean path waits for the association loop to be idle (see _may_start)
HANDLER_FAILED: Final = 0xC211  # pynetdicom's status when the EVT_C_STORE handler raises
# Events whose handlers expect pynetdicom's own objects: when any is bound, the association keeps its path.
_OBSERVED: Final = (evt.EVT_DATA_RECV, evt.EVT_DATA_SENT, evt.EVT_PDU_RECV, evt.EVT_PDU_SENT, evt.EVT_DIMSE_RECV,
                    evt.EVT_DIMSE_SENT, evt.EVT_FSM_TRANSITION)


_served = 0  # instances answered on the lean path in this process (tests check that it was taken)
_served_lock = threading.Lock()


def served() -> int:
    """How many C-STORE requests the lean path answered so far in this process."""
    return _served


@dataclass(slots=True)
class LeanRequest:
    """A C-STORE-RQ being received (or just received) on the lean path."""

    context_id: int
    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    spool: fastpath.SpoolBuffer


StoreFn = Callable[[Any, LeanRequest], int]  # (association, request) -> DIMSE status, the instance durable
AllowFn = Callable[[Any], bool]  # may this association store?


def decode_command(raw: bytes | bytearray | memoryview) -> dict[int, bytes] | None:
    """Element -> value of a command set (group 0000, Implicit VR Little Endian); None if it is not well formed."""
    out: dict[int, bytes] = {}
    end = len(raw)
    pos = 0
    unpack = struct.unpack_from
    while pos < end:
        if end - pos < 8:
            return None
        group, element, length = unpack("<HHI", raw, pos)
        pos += 8
        if group != 0 or length > end - pos:
            return None
        out[element] = bytes(raw[pos:pos + length])
        pos += length
    return out


def _uid(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("ascii").rstrip("\0 ").strip() or None
    except UnicodeDecodeError:
        return None


def _us(value: bytes | None) -> int | None:
    return struct.unpack("<H", value)[0] if value is not None and len(value) == 2 else None


def split_pdvs(body: bytes | bytearray | memoryview) -> list[tuple[int, int, memoryview]] | None:
    """(context ID, message control header, fragment) of each PDV of a P-DATA-TF body (after the 6 byte header);
    None when the items do not tile the body exactly (pynetdicom then rejects the PDU as before)."""
    view = memoryview(body)
    out: list[tuple[int, int, memoryview]] = []
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < 6:
            return None
        length = struct.unpack_from(">I", view, pos)[0]
        if length < 2 or length > end - pos - 4:
            return None
        out.append((view[pos + 4], view[pos + 5], view[pos + 6:pos + 4 + length]))
        pos += 4 + length
    return out if out else None


def _recv_exact(sock: Any, size: int) -> bytearray | None:
    """Exactly `size` bytes, or None if the peer closed the connection first (errors propagate)."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:], size - got)
        if not count:
            return None
        got += count
    return buf


class LeanReceiver:
    """The lean path of one association: at most one C-STORE-RQ being received at a time."""

    def __init__(self, assoc: Any, folder: str, store: StoreFn, allowed: AllowFn) -> None:
        self.assoc = assoc
        self.folder = folder
        self.store = store
        self.allowed = allowed
        self.current: LeanRequest | None = None
        self._observed: bool | None = None
        self._patient = True

    # -- reading ----------------------------------------------------------------------------------

    def read_pdu(self, dul: Any) -> None:
        """Read one PDU (the socket is readable): serve it on the lean path, or hand it to pynetdicom's FSM as
        DULServiceProvider._read_pdu_data would, with the same events on a short read or an unknown type."""
        try:
            header = _recv_exact(dul.socket.socket, 6)
            if header is None:
                self._to_fsm(dul, "Evt17")
                return
            pdu_type, _, length = struct.unpack(">BBL", header)
            if pdu_type not in _PDU_TYPES:
                logger.error("Unknown PDU type received '0x%02X'", pdu_type)
                self._to_fsm(dul, "Evt19")
                return
            body = _recv_exact(dul.socket.socket, length) if length else bytearray()
        except (OSError, TimeoutError) as exc:
            logger.error("Connection closed before the entire PDU was received: %s", exc)
            self._to_fsm(dul, "Evt17")
            return
        if body is None:
            logger.error("The received PDU is shorter than expected")
            self._to_fsm(dul, "Evt17")
            return
        if pdu_type == P_DATA_TF and self._take(dul, body):
            return
        self.drop()  # anything but the rest of the current request ends it
        header += body
        try:
            pdu, event = dul._decode_pdu(header)
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: an invalid PDU is Evt19
            logger.error("Unable to decode the received PDU data: %s", exc)
            dul.event_queue.put("Evt19")
            return
        dul.event_queue.put(event)
        dul._recv_pdu.put(pdu)

    def _to_fsm(self, dul: Any, event: str) -> None:
        self.drop()
        dul.event_queue.put(event)

    def _take(self, dul: Any, body: bytearray) -> bool:
        """Serve a P-DATA-TF on the lean path; False leaves it to pynetdicom."""
        pdvs = split_pdvs(body)
        if pdvs is None:
            return False
        starting = self.current is None
        data = pdvs[1:] if starting else pdvs
        # data set fragments only (after the command that starts a request), the last one last
        if any(control & 1 or (control & 2 and i < len(data) - 1) for i, (_, control, _) in enumerate(data)):
            self.drop()
            return False
        if starting:
            context_id, control, fragment = pdvs[0]
            if control & 3 != 3 or not self._may_start(dul):
                return False
            self.current = self._start(context_id, fragment)
            if self.current is None:
                return False
        request = self.current
        assert request is not None
        for _, control, fragment in data:
            request.spool.write(fragment)
        if data and data[-1][1] & 2:
            self.current = None
            self._complete(dul, request)
        return True

    def _may_start(self, dul: Any) -> bool:
        """Nothing of this association is in flight through pynetdicom, and it is in plain data transfer."""
        assoc = self.assoc
        if self._observed is None:
            self._observed = any(assoc.get_handlers(event) for event in _OBSERVED)
        if self._observed:
            return False
        if not assoc.is_established or assoc._sent_release or assoc.dimse.message is not None:
            return False
        if dul.event_queue.qsize() or dul.to_provider_queue.qsize() or dul._recv_pdu.qsize():
            return False
        # The association loop may still be starting (its thread slot) or finishing the previous request that
        # went pynetdicom's way (its answer is out: the peer sent this one): wait for it a little, once.
        idle: threading.Event = assoc._ol_idle
        if not idle.is_set() and self._patient:
            self._patient = idle.wait(IDLE_PATIENCE)
        messages = assoc.dimse.msg_queue
        with messages.mutex:  # the association loop clears `idle` under this lock when it takes a message
            if messages._qsize() or not idle.is_set():
                return False
        self._patient = True
        return True

    def _start(self, context_id: int, command_bytes: memoryview) -> LeanRequest | None:
        """A LeanRequest for a complete C-STORE-RQ command set we can serve here, else None."""
        command = decode_command(command_bytes)
        if command is None or _us(command.get(0x0100)) != C_STORE_RQ:
            return None
        data_set_type = _us(command.get(0x0800))
        message_id = _us(command.get(0x0110))
        sop_class = _uid(command.get(0x0002))
        sop_instance = _uid(command.get(0x1000))
        if (data_set_type is None or data_set_type == NO_DATA_SET or message_id is None or sop_class is None
                or sop_instance is None or _us(command.get(0x0700)) is None):
            return None
        assoc = self.assoc
        context = assoc._accepted_cx.get(context_id)
        if context is None or not self.allowed(assoc):
            return None  # pynetdicom aborts, as before
        service_uid = assoc.acceptor.accepted_common_extended.get(sop_class, (sop_class,))[0]
        if not _config.UNRESTRICTED_STORAGE_SERVICE and uid_to_service_class(service_uid) is not StorageServiceClass:
            return None
        prefix = fastpath.file_meta_prefix(sop_class, sop_instance, str(context.transfer_syntax[0]))
        return LeanRequest(context_id, message_id, sop_class, sop_instance,
                           fastpath.SpoolBuffer(prefix, self.folder))

    # -- storing and answering ----------------------------------------------------------------------

    def _complete(self, dul: Any, request: LeanRequest) -> None:
        """Store the received instance (durable on return), then answer as pynetdicom's Storage SCP would."""
        global _served
        request.spool.finish()
        with _served_lock:
            _served += 1
        try:
            status = self.store(self.assoc, request)
        except Exception:  # noqa: BLE001 - as pynetdicom's attempt(): a failed handler is 0xC211
            logger.exception("Exception in the lean C-STORE handler")
            status = HANDLER_FAILED
        if not self.assoc.is_established:  # aborted meanwhile (shutdown): no answer, as pynetdicom
            return
        command = fastpath.store_response_command(request.sop_class_uid, request.message_id, status,
                                                  request.sop_instance_uid)
        max_pdu = self.assoc.dimse.maximum_pdu_size
        if max_pdu and len(command) + 12 > max_pdu:  # cannot happen with a legal maximum; pynetdicom fragments
            self._send_through_fsm(request, status)
            return
        pdu = struct.pack(">BBLLBB", P_DATA_TF, 0, len(command) + 6, len(command) + 2, request.context_id, 3)
        try:
            dul.socket.socket.sendall(pdu + command)
        except OSError:
            dul.event_queue.put("Evt17")  # as AssociationSocket.send

    def _send_through_fsm(self, request: LeanRequest, status: int) -> None:
        rsp = C_STORE()
        rsp.MessageIDBeingRespondedTo = request.message_id
        rsp.AffectedSOPClassUID = request.sop_class_uid
        rsp.AffectedSOPInstanceUID = request.sop_instance_uid
        rsp.Status = status
        self.assoc.dimse.send_msg(rsp, request.context_id)

    def drop(self) -> None:
        """The request being received will not complete (cut, aborted, protocol error): remove its spool."""
        request, self.current = self.current, None
        if request is not None:
            logger.info("Dropped a partially received dataset (%s)", request.sop_instance_uid)
            request.spool.discard()


def enable(assoc: Any, folder: str, store: StoreFn, allowed: AllowFn) -> None:
    """Give an association our SCP accepted the lean C-STORE path (dimse/reactor.py's DUL loop uses it)."""
    assoc._ol_idle = threading.Event()  # set by dimse/reactor.py's association loop while it waits for messages
    assoc._ol_lean = LeanReceiver(assoc, folder, store, allowed)


def receiver(assoc: Any) -> LeanReceiver | None:
    return getattr(assoc, "_ol_lean", None)
