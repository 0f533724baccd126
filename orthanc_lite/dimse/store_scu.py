"""C-ECHO and C-STORE SCU towards a remote modality (REST /modalities/{id}/echo|store|store-straight).

Blocking: run in the dimse pool. One association per job, never shared between threads; `abort()` is the one
call made from another thread (the loop, on cancel), and it does not block. Failures raise OrthancError
NetworkProtocol with Orthanc's wording ("DicomAssociation - ..." / "C-STORE SCU to AET ...").
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pydicom
from pynetdicom import AE, evt
from pynetdicom.association import Association

from ..config import Modality
from ..errors import ErrorCode, OrthancError
from . import policy, reactor, store_fast
from .scu import adapt_to_contexts, storage_contexts
from .sockets import set_nodelay

if TYPE_CHECKING:
    from ..storage.filesystem import FilesystemStorage
    from .query import InstanceToSend

logger = logging.getLogger(__name__)

# Statuses Orthanc's DicomStoreUserConnection takes as a success (warnings included).
STORE_SUCCESS: Final = frozenset({0x0000, 0xB000, 0xB006, 0xB007})
WAKE_FOR_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who calls whom, and how long to wait (None: no limit, as Orthanc's timeout 0)."""

    local_aet: str
    modality: Modality
    timeout: float | None
    max_pdu: int = 16384

    @property
    def remote_aet(self) -> str:
        return self.modality.AET


def _fail(endpoint: Endpoint, command: str, info: str) -> OrthancError:
    return OrthancError(ErrorCode.NetworkProtocol, f'DicomAssociation - {command} to AET "{endpoint.remote_aet}": {info}')


def associate(endpoint: Endpoint, contexts: list[Any], holder: dict[str, Any] | None = None,
              storage: bool = False) -> Association:
    """Open an association, or raise NetworkProtocol (refused, rejected, aborted, timed out). `holder` gets
    the association as soon as the TCP connection is up, so that a cancel can abort the negotiation. With
    `storage`, a peer that accepted none of the contexts gives Orthanc's C-STORE error (NoPresentationContext)."""
    ae = AE(ae_title=endpoint.local_aet)
    timeout = endpoint.timeout
    ae.acse_timeout = timeout if timeout else 60
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    modality = endpoint.modality

    connected = False

    def on_connect(event: Any) -> None:
        nonlocal connected
        connected = True
        set_nodelay(event)
        if holder is not None:
            holder["assoc"] = event.assoc

    began = time.monotonic()
    assoc = ae.associate(modality.Host, int(modality.Port), contexts=contexts, ae_title=modality.AET,
                         max_pdu=endpoint.max_pdu, evt_handlers=[(evt.EVT_CONN_OPEN, on_connect)])
    if assoc.is_established:
        return assoc
    if storage and assoc.is_aborted and assoc.rejected_contexts and not assoc.accepted_contexts:
        # pynetdicom aborts when the peer took no context; DCMTK (so Orthanc) opens the association and then
        # fails the first C-STORE with this error.
        raise no_context_error(str(assoc.rejected_contexts[0].abstract_syntax))
    if not connected:  # DCMTK's wording, as Orthanc reports it
        timed_out = timeout is not None and time.monotonic() - began >= timeout
        why = "Operation timed out" if timed_out else "Connection refused"
        info = f"Failed to establish association (TCP Initialization Error: {why})"
    elif assoc.is_rejected:
        info = "Association Rejected"
    elif assoc.is_aborted:
        info = "Association Aborted (no answer, or the peer aborted)"
    else:
        info = "Failed to establish association"
    raise _fail(endpoint, "connecting", info)


def no_context_error(sop_class: str) -> OrthancError:
    """Orthanc's DicomStoreUserConnection error when the peer accepted no context for the SOP class."""
    return OrthancError(ErrorCode.NoPresentationContext,
                        f"Cannot C-Store an instance of SOPClassUID {sop_class}, the destination has not accepted "
                        "any TransferSyntax for this SOPClassUID")


def echo(endpoint: Endpoint) -> bool:
    """C-ECHO: True if the remote answered Success. A failed association raises NetworkProtocol."""
    cx = policy.context(policy.VERIFICATION, policy.GENERIC_SYNTAXES)
    cx.context_id = 1
    assoc = associate(endpoint, [cx])
    try:
        rsp = assoc.send_c_echo()
        return bool(rsp is not None and "Status" in rsp and int(rsp.Status) == 0)
    finally:
        release(assoc)


def open_store(endpoint: Endpoint, pairs: Iterable[tuple[str, str]], holder: dict[str, Any] | None = None) -> Association:
    """One association for a whole set: per SOP class, its stored syntaxes first, the uncompressed ones after."""
    return associate(endpoint, storage_contexts(pairs), holder, storage=True)


def store(assoc: Association, endpoint: Endpoint, data: bytes, originator_aet: str | None = None,
          originator_id: int | None = None, message_id: int = 1) -> tuple[str, str]:
    """C-STORE one DICOM file; (SOPClassUID, SOPInstanceUID). Decompressed when the peer only took an
    uncompressed syntax. Raises NetworkProtocol on a failure status, a lost association or no context."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        sop_class, sop_instance = str(dataset.SOPClassUID), str(dataset.SOPInstanceUID)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad files
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot parse the DICOM file to send: {exc}") from None
    if not assoc.is_established:
        raise _fail(endpoint, "C-STORE", "The association is not open anymore")
    adapt_to_contexts(dataset, assoc, as_requestor=True)
    try:
        rsp = assoc.send_c_store(dataset, msg_id=message_id, priority=store_fast.PRIORITY_MEDIUM,
                                 originator_aet=originator_aet or None, originator_id=originator_id)
    except ValueError:  # no accepted presentation context fits
        raise no_context_error(sop_class) from None
    except (RuntimeError, OSError) as exc:
        raise _fail(endpoint, "C-STORE", f"{exc}") from None
    if rsp is None or "Status" not in rsp:
        raise _fail(endpoint, "C-STORE", "DIMSE No data available (timeout or association lost)")
    _check_status(endpoint, int(rsp.Status))
    return sop_class, sop_instance


def _check_status(endpoint: Endpoint, status: int) -> None:
    """Raise Orthanc's NetworkProtocol error for a C-STORE-RSP status that is not a success (nor a warning)."""
    if status not in STORE_SUCCESS:
        raise OrthancError(ErrorCode.NetworkProtocol,
                           f'C-STORE SCU to AET "{endpoint.remote_aet}" has failed with DIMSE status 0x{status:04X}')


class StoreSender:
    """The C-STOREs of one association from one dimse thread, as a context manager: a file whose transfer syntax
    is the one accepted for its SOP class goes out as it is on the lent socket (store_fast); any other through
    `store()`. On exit the socket goes back to pynetdicom (release, abort)."""

    def __init__(self, assoc: Association, endpoint: Endpoint, originator_aet: str | None = None,
                 originator_id: int | None = None) -> None:
        self.assoc = assoc
        self.endpoint = endpoint
        self.originator_aet = originator_aet or None
        self.originator_id = originator_id
        self.fast_count = 0  # C-STOREs that took the lean path (tests check it)
        self._lending: Any = None  # the lend_socket context manager while the socket is ours
        self._storer: store_fast.FastStorer | None = None
        self._can_lend = True
        self._message_id = 0

    def __enter__(self) -> StoreSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self._give_back()

    def store(self, data: bytes, sop_class: str = "", sop_instance: str = "") -> tuple[str, str]:
        """C-STORE one DICOM file; (SOPClassUID, SOPInstanceUID). The UIDs of its data set, when the index knows
        them, win over its File Meta's. Raises as `store()`."""
        meta = store_fast.scan_file_meta(data)
        if meta is not None:
            sop_class, sop_instance = sop_class or meta.sop_class, sop_instance or meta.sop_instance
        context_id = (store_fast.exact_context(self.assoc, sop_class, meta.transfer_syntax)
                      if meta is not None and self.assoc.is_established else None)
        storer = self._borrow() if context_id is not None else None
        self._message_id = self._message_id % 0xFFFF + 1  # one per request on the association, as DCMTK's
        if meta is None or context_id is None or storer is None:
            self._give_back()
            return store(self.assoc, self.endpoint, data, self.originator_aet, self.originator_id, self._message_id)
        command = store_fast.store_request_command(sop_class, sop_instance, self._message_id,
                                                   originator_aet=self.originator_aet,
                                                   originator_id=self.originator_id)
        try:
            status = storer.store(context_id, command, memoryview(data)[meta.dataset_offset:], self._message_id)
        except store_fast.PeerFailure as exc:
            self._drop(storer)
            raise _fail(self.endpoint, "C-STORE", str(exc)) from None
        self.fast_count += 1
        _check_status(self.endpoint, status)
        return sop_class, sop_instance

    def _borrow(self) -> store_fast.FastStorer | None:
        if self._storer is not None or not self._can_lend:
            return self._storer
        lending = reactor.lend_socket(self.assoc, self.endpoint.timeout)
        lend = lending.__enter__()
        if lend is None:
            lending.__exit__(None, None, None)
            self._can_lend = False
            return None
        self._lending = lending
        self._storer = store_fast.FastStorer(lend, int(self.assoc.acceptor.maximum_length or 0), self.endpoint.timeout)
        return self._storer

    def _give_back(self) -> None:
        lending, self._lending, self._storer = self._lending, None, None
        if lending is not None:
            lending.__exit__(None, None, None)

    def _drop(self, storer: store_fast.FastStorer) -> None:
        """The lean path failed mid-exchange: the association is unusable. Abort it (the A-ABORT goes out only
        if no request was cut in the middle; else the connection is just closed)."""
        if storer.mid_message or storer.has_unread:
            storer.lend.cancel()
            try:
                storer.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._give_back()
        self._can_lend = False
        abort(self.assoc)
        self.assoc.is_established = False
        self.assoc.is_aborted = True


def store_once(endpoint: Endpoint, data: bytes) -> tuple[str, str]:
    """store-straight: one file over its own association."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        pair = (str(dataset.SOPClassUID), str(dataset.file_meta.TransferSyntaxUID))
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad files
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot parse the DICOM file to send: {exc}") from None
    assoc = open_store(endpoint, [pair])
    try:
        with StoreSender(assoc, endpoint) as sender:
            return sender.store(data)
    finally:
        release(assoc)


def store_instances(endpoint: Endpoint, instances: Sequence[InstanceToSend], storage: FilesystemStorage,
                    originator_aet: str | None = None, originator_id: int | None = None) -> tuple[int, int]:
    """C-STORE every instance over one association (the asynchronous C-MOVE job); (completed, failed)."""
    if not instances:
        return 0, 0
    try:
        assoc = open_store(endpoint, [(i.sop_class, i.transfer_syntax) for i in instances])
    except OrthancError as exc:
        logger.error("C-MOVE job: cannot associate with %s: %s", endpoint.remote_aet, exc.details)
        return 0, len(instances)
    completed = failed = 0
    try:
        with StoreSender(assoc, endpoint, originator_aet, originator_id) as sender:
            for instance in instances:
                try:
                    sender.store(instance.read_sync(storage), instance.sop_class)
                    completed += 1
                except Exception as exc:  # noqa: BLE001 - one failed sub-operation does not stop the job (logged)
                    logger.error("C-MOVE job: cannot send instance %s: %s", instance.public_id, exc)
                    failed += 1
                if not assoc.is_established:
                    failed += len(instances) - completed - failed
                    break
    finally:
        release(assoc)
    return completed, failed


def release(assoc: Association) -> None:
    """Release politely (blocking, bounded by the ACSE timeout); abort if that fails."""
    try:
        if assoc.is_established:
            assoc.release()
    except Exception:  # noqa: BLE001 - a peer gone mid-release: nothing left to do but drop it
        logger.debug("Release failed, aborting", exc_info=True)
        abort(assoc)


def abort(assoc: Association, waiting: threading.Event | None = None) -> None:
    """A-ABORT without waiting: safe from the loop thread. `waiting` is set while a thread waits in a DIMSE call
    on this association: it is woken up (see _wake)."""
    lend = getattr(getattr(assoc, "dul", None), "_ol_lend", None)
    if lend is not None:  # a StoreSender has the socket: wake it (the A-ABORT goes out when it gives it back)
        lend.cancel()
    try:
        assoc.abort(block=False)  # no-op once released or aborted; also valid while negotiating
    except Exception:  # noqa: BLE001 - already gone
        logger.debug("Abort failed", exc_info=True)
    assoc.dimse.msg_queue.put((None, None))
    if waiting is not None and waiting.is_set():
        threading.Thread(target=_wake, args=(assoc, waiting), name="scu-wake", daemon=True).start()


def _wake(assoc: Association, waiting: threading.Event) -> None:
    """A local abort does not wake a thread waiting for a DIMSE response (only a peer's abort does, and with no
    DIMSE timeout it would wait forever). pynetdicom's "association gone" marker (None, None) does, but the
    association's reactor, restarted by the abort, may take it first: hand it over until the waiter is gone."""
    deadline = time.monotonic() + WAKE_FOR_S
    while waiting.is_set() and time.monotonic() < deadline:
        assoc.dimse.msg_queue.put((None, None))
        time.sleep(0.02)
