"""The DIMSE event handlers: association acceptance, C-ECHO, C-STORE, C-FIND (+ worklists), C-MOVE, C-GET,
storage commitment (N-ACTION, then an N-EVENT-REPORT on a new association).

They run in pynetdicom's association threads: they may block (file reads, parsing), but they reach the
loop's objects (index, storage writes, registry, tasks) only through `Bridge.call`. Every handler catches
and logs its own failures and answers a DIMSE status (dimse/status.py) instead of letting pynetdicom abort.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from ..errors import ErrorCode, OrthancError
from ..model import Origin
from ..services.store import announce, store_bytes_blocking, store_file_blocking
from . import fastpath, lean, policy, queries, query, scu, status
from .bridge import BridgeError
from .policy import Request, Snapshot
from .sockets import set_nodelay
from .worklists import WorklistSettings, find_worklists

if TYPE_CHECKING:
    from ..config import Modality
    from ..services.context import ServerContext
    from .bridge import Bridge
    from .query import InstanceToSend

logger = logging.getLogger(__name__)

# Yielded instead of a dataset that cannot be read: pynetdicom counts any non-Dataset as a failed
# sub-operation (an empty Dataset would be skipped without being counted).
UNREADABLE = "unreadable instance"


@dataclass
class _AssocState:
    snapshot: Snapshot


def _state(event: Event) -> _AssocState | None:
    return getattr(event.assoc, "_ol_state", None)


class HandlerHost(Protocol):
    """What the handlers need of the DICOM server that runs them (dimse/server.py's DicomServer)."""

    ctx: ServerContext
    bridge: Bridge
    gate: threading.BoundedSemaphore

    async def snapshot(self, calling_aet: str, called_aet: str, remote_ip: str) -> Snapshot: ...

    async def modality_for_aet(self, aet: str) -> Modality | None: ...

    async def start_background_move(self, modality: Modality, instances: list[InstanceToSend],
                                    originator_aet: str, originator_id: int) -> None: ...

    async def start_storage_commitment(self, requester_aet: str, transaction_uid: str,
                                       refs: list[tuple[str, str]]) -> None: ...


class Handlers:
    """Binds the handlers to one DicomServer (its context, bridge and thread gate)."""

    def __init__(self, server: HandlerHost) -> None:
        self.server = server
        self.ctx = server.ctx
        self.bridge = server.bridge
        self.settings = server.ctx.settings

    def bindings(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_CONN_OPEN, set_nodelay),
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ABORTED, self.on_aborted),
            (evt.EVT_CONN_CLOSE, self.on_aborted),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_C_MOVE, self.on_move),
            (evt.EVT_C_GET, self.on_get),
            (evt.EVT_N_ACTION, self.on_n_action),
            (evt.EVT_N_EVENT_REPORT, self.on_n_event_report),
        ]

    # -- association ------------------------------------------------------------------------------

    def on_requested(self, event: Event) -> None:
        """Accept or reject the A-ASSOCIATE-RQ (CommandDispatcher.cpp::AcceptAssociation), and set the
        presentation contexts this association may use."""
        assoc: Any = event.assoc
        rq: Any = assoc.requestor.primitive
        calling = str(rq.calling_ae_title).strip()
        called = str(rq.called_ae_title).strip()
        remote_ip = str(assoc.requestor.address)
        logger.info("Association Received from AET %s on IP %s", calling, remote_ip)
        try:
            snap = self.bridge.call(self.server.snapshot, calling, called, remote_ip)
        except (BridgeError, OrthancError) as exc:
            logger.warning("Rejecting an association from %s while the server is not available: %s", calling, exc)
            self._reject(assoc, 0x02, 0x03, 0x01)  # transient, presentation related: temporary congestion
            return
        if not snap.called_aet_ok():
            logger.warning("Rejected association, because of a bad called AET in the request (%s)", called)
            self._reject(assoc, 0x01, 0x01, 0x07)
            return
        if not snap.connection_allowed():
            logger.warning("Rejected association for remote AET %s on IP %s", calling, remote_ip)
            self._reject(assoc, 0x01, 0x01, 0x03)
            return
        roles = {str(uid): (item.scu_role, item.scp_role) for uid, item in assoc.requestor.role_selection.items()}
        assoc.acceptor.supported_contexts = policy.build_contexts(
            snap, rq.presentation_context_definition_list, roles)
        assoc._ol_state = _AssocState(snap)
        fastpath.mark(assoc, self.ctx.storage.incoming_dir())
        lean.enable(assoc, self.ctx.storage.incoming_dir(), self.store_lean, self.may_store)
        assoc._ol_gate = self.server.gate  # the reactor holds a DicomThreadsCount slot while it runs

    @staticmethod
    def _reject(assoc: Any, result: int, source: int, diagnostic: int) -> None:
        # As pynetdicom's own ACSE rejection: send, notify, then wait for the DUL to finish.
        assoc.acse.send_reject(result, source, diagnostic)
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    def on_aborted(self, event: Event) -> None:
        """A transfer cut mid-dataset leaves a spooled or pynetdicom's temporary file behind: remove it."""
        message = getattr(event.assoc.dimse, "message", None)
        spool = getattr(message, "data_set", None) if message is not None else None
        if isinstance(spool, fastpath.SpoolBuffer):
            spool.discard()
            return
        handle = getattr(message, "_data_set_file", None) if message is not None else None
        if handle is None:
            return
        try:
            handle.close()
            os.unlink(handle.name)
            logger.info("Removed a partially received dataset from %s", event.assoc.requestor.ae_title)
        except OSError:
            pass

    def _allowed(self, event: Event, request: Request) -> bool:
        """IsAllowedRequest; a refused command aborts the association, as Orthanc does (DIMSE_ILLEGALASSOCIATION)."""
        state = _state(event)
        if state is not None and state.snapshot.request_allowed(request):
            return True
        snap = state.snapshot if state is not None else None
        logger.warning('Rejected %s request from remote DICOM modality with AET "%s" and hostname "%s"',
                       request.value, snap.calling_aet if snap else "?", snap.remote_ip if snap else "?")
        event.assoc.abort()
        return False

    # -- C-ECHO -------------------------------------------------------------------------------------

    def on_echo(self, event: Event) -> int:
        if not self._allowed(event, Request.ECHO):
            return status.CANNOT_UNDERSTAND
        return status.SUCCESS

    # -- C-STORE ------------------------------------------------------------------------------------

    def on_store(self, event: Event) -> int:
        """The received dataset (in memory, or a spooled file) goes through the same store service as
        POST /instances."""
        spool = getattr(event.request, "DataSet", None)  # a C-STORE request's data set
        if not isinstance(spool, fastpath.SpoolBuffer):
            spool = None
        if not self._allowed(event, Request.STORE):
            if spool is not None:
                spool.discard()
            return status.CANNOT_UNDERSTAND
        snap = _state(event).snapshot  # type: ignore[union-attr]
        if spool is not None:
            return self._store_spool(snap, spool)
        try:
            path = self._take_dataset_file(event)
        except OSError as exc:
            logger.error("Cannot move a received dataset into the storage area: %s", exc)
            return status.OUT_OF_RESOURCES
        return self._store(snap, None, path)

    @staticmethod
    def may_store(assoc: Any) -> bool:
        """Whether this association may send C-STORE (the lean path leaves a refusal to on_store's abort)."""
        state: _AssocState | None = getattr(assoc, "_ol_state", None)
        return state is not None and state.snapshot.request_allowed(Request.STORE)

    def store_lean(self, assoc: Any, request: lean.LeanRequest) -> int:
        """A C-STORE received on the lean path (dimse/lean.py, in the DUL thread): as on_store, once allowed."""
        return self._store_spool(assoc._ol_state.snapshot, request.spool)

    def _store_spool(self, snap: Snapshot, spool: fastpath.SpoolBuffer) -> int:
        if spool.path is None:
            return self._store(snap, spool.getvalue(), None)
        return self._store(snap, None, spool.path)

    def _store(self, snap: Snapshot, data: bytes | None, path: str | None) -> int:
        """Store the instance (durable on return), announce it on the loop, and give the DIMSE status."""
        origin = Origin("DicomProtocol", remote_ip=snap.remote_ip, remote_aet=snap.calling_aet,
                        called_aet=snap.called_aet)
        try:
            # The store (files + the index's group commit) is thread-safe and runs in this association thread;
            # only the announcement of the changes touches loop objects and crosses the bridge. Two loop
            # round trips per instance were most of a C-STORE's latency. A file is consumed either way.
            if data is not None:
                stored = store_bytes_blocking(self.ctx, data, origin)
            else:
                assert path is not None
                stored = store_file_blocking(self.ctx, path, origin)
        except OrthancError as exc:
            logger.error("C-STORE from %s failed: %s", snap.calling_aet, exc)
            return status.store_error_status(exc)
        except Exception as exc:  # the store service failed unexpectedly (logged, answered as a failure)
            logger.exception("C-STORE from %s failed", snap.calling_aet)
            return status.store_error_status(exc)
        try:
            self.bridge.call_soon_batched(announce, self.ctx, stored)
        except BridgeError:  # shutting down: the instance is committed, only its notifications are lost
            logger.info("C-STORE during shutdown: changes of %s not announced", stored.result.instance_id)
        return status.store_status(stored.result)

    def _take_dataset_file(self, event: Event) -> str:
        """Move pynetdicom's temporary file (STORE_RECV_CHUNKED_DATASET) into the storage's incoming folder."""
        source = str(event.dataset_path)
        target = os.path.join(self.ctx.storage.incoming_dir(), f"dimse-{uuid.uuid4().hex}.dcm")
        try:
            os.replace(source, target)
        except OSError:  # another filesystem: copy (pynetdicom deletes its own file afterwards)
            shutil.copyfile(source, target)
        return target

    # -- C-FIND -------------------------------------------------------------------------------------

    def on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        sop_class = str(event.request.AffectedSOPClassUID)
        worklist = sop_class == policy.WORKLIST_FIND
        if not self._allowed(event, Request.FIND_WORKLIST if worklist else Request.FIND):
            return
        snap = _state(event).snapshot  # type: ignore[union-attr]
        try:
            identifier = query.prepare_identifier(event.identifier, self.ctx.default_encoding)
        except Exception:  # undecodable identifier (logged)
            logger.exception("C-FIND: cannot decode the identifier")
            yield status.CANNOT_UNDERSTAND, None
            return
        if worklist:
            yield from self._find_worklists(event, identifier, snap)
        else:
            yield from self._find(event, identifier)

    def _find(self, event: Event, identifier: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        try:
            parsed = query.parse_find(identifier, bool(self.settings.CaseSensitivePN))
        except OrthancError as exc:
            logger.error("C-FIND request handler has failed: %s", exc)
            yield status.CANNOT_UNDERSTAND, None
            return
        logger.info("DICOM C-Find request at level: %s", parsed.level.type_name)
        encoding = self.ctx.default_encoding
        retrieve_aet = self.settings.DicomAet
        complete = True
        stream: query.FindStream | None = None
        try:
            stream = query.FindStream(self.ctx, parsed)
            while True:
                answers, complete, finished = self.bridge.call(stream.next_chunk)
                for answer in answers:
                    if event.is_cancelled:
                        yield status.CANCEL, None
                        return
                    yield status.PENDING, query.answer_dataset(parsed, answer, retrieve_aet, encoding)
                if finished:
                    break
        except (OrthancError, BridgeError) as exc:
            logger.error("C-FIND request handler has failed: %s", exc)
            yield status.CANNOT_UNDERSTAND, None
            return
        except Exception:
            logger.exception("C-FIND request handler has failed")
            yield status.CANNOT_UNDERSTAND, None
            return
        finally:
            if stream is not None and not stream.finished:
                try:
                    self.bridge.call(stream.close)
                except (BridgeError, OrthancError):
                    logger.debug("Cannot close an abandoned C-FIND cursor", exc_info=True)
        if not complete:
            logger.warning("Too many results for an incoming C-FIND query")
            yield status.CANCEL, None

    def _find_worklists(self, event: Event, identifier: Dataset,
                        snap: Snapshot) -> Iterator[tuple[int, Dataset | None]]:
        config = self.settings.Worklists
        settings = WorklistSettings(
            folder=str(config.get("Database") or ""),
            case_sensitive_pn=bool(self.settings.CaseSensitivePN),
            filter_issuer_aet=bool(config.get("FilterIssuerAet", False)),
            limit=int(str(config.get("LimitAnswers", 0) or 0)),
            default_encoding=self.ctx.default_encoding,
        )
        try:
            answers, complete = find_worklists(settings, identifier, snap.calling_aet)
        except Exception as exc:  # noqa: BLE001 - bad query (e.g. a wildcard on a date): Orthanc answers 0xC000 (logged)
            logger.error("C-FIND worklist handler has failed: %s", exc)
            yield status.CANNOT_UNDERSTAND, None
            return
        for answer in answers:
            if event.is_cancelled:
                yield status.CANCEL, None
                return
            yield status.PENDING, answer
        if not complete:
            yield status.CANCEL, None

    # -- C-MOVE -------------------------------------------------------------------------------------

    def on_move(self, event: Event) -> Iterator[Any]:
        """pynetdicom's protocol: yield the destination, then the number of sub-operations, then
        (Pending, dataset) per instance; pynetdicom sends the C-STOREs and the pending counters."""
        if not self._allowed(event, Request.MOVE):
            return
        snap = _state(event).snapshot  # type: ignore[union-attr]
        destination_aet = str(event.move_destination).strip()
        try:
            modality = self.bridge.call(self.server.modality_for_aet, destination_aet)
        except (BridgeError, OrthancError) as exc:
            logger.error("C-MOVE request handler has failed: %s", exc)
            raise
        if modality is None:
            logger.error('C-MOVE: unknown destination AET "%s" (not in DicomModalities)', destination_aet)
            yield None, None  # pynetdicom answers 0xA801 (Move Destination unknown); Orthanc answers 0xC000
            return
        try:
            instances = self._instances_to_retrieve(event, "C-MOVE")
        except Exception as exc:
            # Before the first yield pynetdicom can only answer an exception, with 0xC514 (a "unable to
            # process" failure; Orthanc answers 0xC000 there).
            logger.error("C-MOVE request handler has failed: %s", exc)
            raise
        logger.info('C-MOVE from %s: %d instance(s) to "%s"', snap.calling_aet, len(instances), destination_aet)
        if not self.settings.SynchronousCMove:
            # Orthanc's AsynchronousMove: the sub-operations run as a background job, the answer comes at once.
            self.bridge.call(self.server.start_background_move, modality, instances, snap.calling_aet,
                             int(event.request.MessageID or 0))
            yield modality.Host, modality.Port
            yield 0
            return
        holder: dict[str, Any] = {}
        yield modality.Host, modality.Port, scu.store_association_kwargs(
            int(self.settings.MaximumPduLength), instances, holder)
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield status.CANCEL, None
                return
            dataset = self._load_for_sending(instance, holder.get("assoc"), as_requestor=True)
            if dataset is None:
                yield status.PENDING, UNREADABLE
                continue
            yield status.PENDING, dataset

    # -- C-GET --------------------------------------------------------------------------------------

    def on_get(self, event: Event) -> Iterator[Any]:
        """C-STORE sub-operations on this association, over the storage contexts the requester proposed."""
        if not self._allowed(event, Request.GET):
            return
        try:
            instances = self._instances_to_retrieve(event, "C-GET")
        except Exception as exc:  # noqa: BLE001 - bad identifier, no match, server going down (logged)
            logger.error("C-GET request handler has failed: %s", exc)
            yield 1
            yield status.CANNOT_UNDERSTAND, None  # 0xC000, as Orthanc
            return
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield status.CANCEL, None
                return
            dataset = self._load_for_sending(instance, event.assoc, as_requestor=False)
            yield status.PENDING, dataset if dataset is not None else UNREADABLE

    def _instances_to_retrieve(self, event: Event, command: str) -> list[query.InstanceToSend]:
        """The stored instances a C-MOVE / C-GET identifier names; OrthancError when it names none."""
        identifier = query.prepare_identifier(event.identifier, self.ctx.default_encoding)
        retrieve = query.parse_retrieve(identifier)
        instances = self.bridge.call(query.lookup_instances, self.ctx, retrieve)
        if not instances:
            raise OrthancError(ErrorCode.BadRequest, f"{command} request matching no resource stored in Orthanc")
        return instances  # type: ignore[no-any-return]

    def _load_for_sending(self, instance: query.InstanceToSend, assoc: Any, as_requestor: bool) -> Dataset | None:
        """Read a stored instance; decompress it when the peer accepted only uncompressed syntaxes for its
        SOP class (Orthanc transcodes when the context requires it)."""
        try:
            dataset = pydicom.dcmread(io.BytesIO(instance.read_sync(self.ctx.storage)), force=True)
        except Exception:  # missing or damaged file: a failed sub-operation (logged)
            logger.exception("Cannot read instance %s for a C-MOVE/C-GET", instance.public_id)
            return None
        if assoc is not None:
            scu.adapt_to_contexts(dataset, assoc, as_requestor)
        return dataset

    # -- storage commitment -------------------------------------------------------------------------

    def on_n_action(self, event: Event) -> tuple[int, Dataset | None]:
        """Storage commitment request: answer at once, then report on a new association (as a job)."""
        request: Any = event.request
        if str(request.RequestedSOPClassUID) != policy.STORAGE_COMMITMENT:
            return status.NO_SUCH_SOP_CLASS, None
        if not self._allowed(event, Request.N_ACTION):
            return status.PROCESSING_FAILURE, None
        snap = _state(event).snapshot  # type: ignore[union-attr]
        try:
            info = event.action_information
            transaction = str(info.TransactionUID)
            refs = [(str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID))
                    for item in info.ReferencedSOPSequence]
        except Exception as exc:  # noqa: BLE001 - malformed request (logged)
            logger.error("Storage commitment: bad N-ACTION request: %s", exc)
            return status.PROCESSING_FAILURE, None
        try:
            self.bridge.call(self.server.start_storage_commitment, snap.calling_aet, transaction, refs)
        except (BridgeError, OrthancError) as exc:
            logger.error("Storage commitment: cannot start the report: %s", exc)
            return status.PROCESSING_FAILURE, None
        return status.SUCCESS, None

    def on_n_event_report(self, event: Event) -> tuple[int, Dataset | None]:
        """The report answering one of our storage commitment requests: fills GET /storage-commitment/{uid}."""
        if not self._allowed(event, Request.N_EVENT_REPORT):
            return status.PROCESSING_FAILURE, None
        remote_aet = str(event.assoc.requestor.ae_title).strip()
        try:
            info: Any = event.event_information
            transaction = str(info.TransactionUID)
            success = [(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID))
                       for i in info.get("ReferencedSOPSequence", [])]
            failures = [(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID),
                         int(i.get("FailureReason", status.PROCESSING_FAILURE)))
                        for i in info.get("FailedSOPSequence", [])]
        except Exception as exc:  # noqa: BLE001 - malformed report (logged)
            logger.error("Storage commitment: bad N-EVENT-REPORT from %s: %s", remote_aet, exc)
            return status.PROCESSING_FAILURE, None
        if not queries.reports(self.ctx).complete(transaction, remote_aet, success, failures):
            logger.warning("Storage commitment report from %s for an unknown transaction: %s", remote_aet,
                           transaction)
        else:
            logger.info("Storage commitment report from %s: %d success, %d failures", remote_aet, len(success),
                        len(failures))
        return status.SUCCESS, None


__all__ = ["Handlers", "set_nodelay"]
