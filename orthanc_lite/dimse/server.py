"""The DICOM server (SCP): a pynetdicom AE started with `start_server(block=False)` from app.py's cleanup_ctx.

Settings: DicomServerEnabled, DicomAet, DicomPort (0 = any free port, read back into ctx.dicom_port),
MaximumPduLength, DicomScpTimeout, DicomThreadsCount (associations served at once; later ones are accepted
and wait, as in Orthanc's worker pool). Everything pynetdicom does runs outside the loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from pynetdicom import AE, _config
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from ..config import Modality
from ..dicom.matching import SOP_CLASS_UID, IndexQuery, MatchKind, TagConstraint
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services.find import FindCursor, FindRequest
from . import fastpath, policy, reactor, scu, status, store_scu
from .bridge import Bridge
from .handlers import Handlers
from .policy import Snapshot
from .query import InstanceToSend

if TYPE_CHECKING:
    from aiohttp import web

    from ..services.context import ServerContext

logger = logging.getLogger(__name__)

SHUTDOWN_JOIN: Final = 10.0  # seconds to wait for each association thread at shutdown
EXTRA_ASSOCIATIONS: Final = 64  # accepted beyond DicomThreadsCount; they wait for a slot


def _configure_pynetdicom() -> None:
    """Process-wide pynetdicom switches: received datasets go to temp files (our SCP's spool in memory up to
    a threshold, dimse/fastpath.py), the event-driven reactors, and no per-message logging handlers unless
    --trace-dicom switched pynetdicom's logger on."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    reactor.install()
    fastpath.install()
    verbose = logging.getLogger("pynetdicom").isEnabledFor(logging.INFO)
    _config.LOG_HANDLER_LEVEL = "standard" if verbose else "none"
    # pynetdicom pretty-prints every identifier before asking the logger (a quarter of a C-FIND's CPU)
    _config.LOG_REQUEST_IDENTIFIERS = verbose
    _config.LOG_RESPONSE_IDENTIFIERS = verbose


class DicomServer:
    """One per ServerContext: `await start()`, `await stop()` (idempotent)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        timeout = float(settings.DicomScpTimeout) or None
        self.bridge = Bridge(asyncio.get_running_loop(), timeout=max(timeout or 0.0, 60.0))
        self.gate = threading.BoundedSemaphore(max(1, int(settings.DicomThreadsCount)))
        self.ae: AE | None = None
        self.server: ThreadedAssociationServer | None = None
        self.port: int = 0
        self._stopped = False

    async def start(self) -> None:
        settings = self.ctx.settings
        _configure_pynetdicom()
        ae = AE(ae_title=settings.DicomAet)
        timeout = float(settings.DicomScpTimeout) or None
        ae.acse_timeout = timeout or 30
        ae.dimse_timeout = timeout
        ae.network_timeout = timeout
        ae.maximum_pdu_size = int(settings.MaximumPduLength)
        ae.maximum_associations = int(settings.DicomThreadsCount) + EXTRA_ASSOCIATIONS
        # A placeholder: each association gets its own contexts in Handlers.on_requested.
        placeholder = PresentationContext()
        placeholder.abstract_syntax = policy.VERIFICATION
        placeholder.transfer_syntax = list(policy.GENERIC_SYNTAXES)
        ae.supported_contexts = [placeholder]
        handlers: Any = Handlers(self).bindings()
        try:
            server = await self.ctx.executors.run_dimse(
                lambda: ae.start_server(("", int(settings.DicomPort)), block=False, evt_handlers=handlers))
        except OSError as exc:
            raise OrthancError(ErrorCode.DicomPortInUse, f"(port = {settings.DicomPort}) {exc}") from exc
        assert server is not None
        try:
            # Accepted sockets inherit TCP_NODELAY on Linux; EVT_CONN_OPEN sets it again on each one.
            if server.socket is not None:
                server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.ae = ae
        self.server = server
        self.port = int(server.server_address[1])
        self.ctx.dicom_port = self.port
        logger.warning("DICOM server listening with AET %s on port: %d", settings.DicomAet, self.port)

    async def stop(self) -> None:
        """Refuse new bridge calls, abort the associations and join their threads (off the loop)."""
        if self._stopped:
            return
        self._stopped = True
        self.bridge.close()
        if self.ae is not None:
            await self.ctx.executors.run_dimse(self._shutdown_sync)
        logger.warning("DICOM server stopped")

    def _shutdown_sync(self) -> None:
        assert self.ae is not None
        associations = list(self.ae.active_associations)
        # socketserver's accept loop only notices a shutdown request when its 0.5 s select() returns:
        # a loopback connection, made once the request is flagged, wakes it at once.
        waker = threading.Thread(target=_wake_acceptors, args=(list(self.ae._servers),), daemon=True)
        waker.start()
        self.ae.shutdown()  # aborts every association of this AE, closes the listening socket
        waker.join(1.0)
        for assoc in associations:
            assoc.join(SHUTDOWN_JOIN)
            if assoc.is_alive():
                logger.error("An association thread did not stop: %s", assoc.name)

    # -- called on the loop through the bridge ----------------------------------------------------

    async def snapshot(self, calling_aet: str, called_aet: str, remote_ip: str) -> Snapshot:
        ctx = self.ctx
        return policy.make_snapshot(ctx.settings, ctx.registry.modalities, list(ctx.accepted_transfer_syntaxes),
                                    bool(ctx.unknown_sop_class_accepted), calling_aet, called_aet, remote_ip)

    async def modality_for_aet(self, aet: str) -> Modality | None:
        """GetModalityUsingAet: the first DicomModalities entry with this AET (C-MOVE destination)."""
        found = policy.modalities_with_aet(self.ctx.registry.modalities, aet,
                                           bool(self.ctx.settings.StrictAetComparison))
        return found[0] if found else None

    def _local_aet(self, modality: Modality) -> str:
        return modality.LocalAet or self.ctx.settings.DicomAet

    def _scu_timeout(self, modality: Modality) -> float | None:
        return float(modality.Timeout or self.ctx.settings.DicomScuTimeout) or None

    async def start_background_move(self, modality: Modality, instances: list[InstanceToSend],
                                    originator_aet: str, originator_id: int) -> None:
        """SynchronousCMove = false: the sub-operations run as a tracked background job."""
        ctx = self.ctx

        async def job() -> None:
            endpoint = store_scu.Endpoint(self._local_aet(modality), modality, self._scu_timeout(modality),
                                          int(ctx.settings.MaximumPduLength))
            completed, failed = await ctx.executors.run_dimse(
                store_scu.store_instances, endpoint, instances, ctx.storage, originator_aet, originator_id)
            logger.warning("C-MOVE job to %s finished: %d sent, %d failed", modality.AET, completed, failed)

        ctx.track(job())

    async def start_storage_commitment(self, requester_aet: str, transaction_uid: str,
                                       refs: list[tuple[str, str]]) -> None:
        """StorageCommitmentScpJob: check each (class, instance), then report to the requesting modality."""
        modality = await self.modality_for_aet(requester_aet)
        if modality is None:
            raise OrthancError(ErrorCode.InexistentItem, f"Unknown modality for storage commitment: {requester_aet}")
        ctx = self.ctx

        async def job() -> None:
            classes = await _stored_sop_classes(ctx, [inst for _, inst in refs])
            success: list[tuple[str, str]] = []
            failed: list[tuple[str, str, int]] = []
            for sop_class, sop_instance in refs:
                stored = classes.get(sop_instance)
                if stored is None:
                    failed.append((sop_class, sop_instance, status.COMMITMENT_NO_SUCH_OBJECT))
                elif stored != sop_class:
                    failed.append((sop_class, sop_instance, status.COMMITMENT_CLASS_INSTANCE_CONFLICT))
                else:
                    success.append((sop_class, sop_instance))
            await ctx.executors.run_dimse(
                scu.send_commitment_report, self._local_aet(modality), modality, transaction_uid, success, failed,
                self._scu_timeout(modality), int(ctx.settings.MaximumPduLength))
            logger.warning("Storage commitment %s: %d committed, %d failed, reported to %s",
                           transaction_uid, len(success), len(failed), modality.AET)

        ctx.track(job())


async def _stored_sop_classes(ctx: ServerContext, sop_instances: list[str]) -> dict[str, str]:
    """SOPInstanceUID -> SOPClassUID of the stored instances among `sop_instances` (batched)."""
    out: dict[str, str] = {}
    for start in range(0, len(sop_instances), 500):
        chunk = tuple(dict.fromkeys(sop_instances[start:start + 500]))
        constraint = TagConstraint(0x00080018, MatchKind.LIST, chunk, True, "UI")
        request = FindRequest(IndexQuery(level=ResourceLevel.INSTANCE, constraints=(constraint,)),
                              requested_tags=(0x00080018, SOP_CLASS_UID), storage_access="Never")
        async for batch in FindCursor(ctx, request):
            for answer in batch:
                uid = answer.value(0x00080018)
                if uid is not None:
                    out[uid] = answer.value(SOP_CLASS_UID) or ""
    return out


DICOM_SERVER_KEY: Final = "dicom_server"


async def dicom_server_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry (after the context's own): start the DICOM server if DicomServerEnabled."""
    from ..app_keys import CONTEXT

    ctx = app[CONTEXT]
    server: DicomServer | None = None
    if ctx.settings.DicomServerEnabled:
        server = DicomServer(ctx)
        await server.start()
        ctx.extra[DICOM_SERVER_KEY] = server
    try:
        yield
    finally:
        if server is not None:
            await server.stop()
            ctx.extra.pop(DICOM_SERVER_KEY, None)


__all__ = ["DicomServer", "dicom_server_context"]


def _wake_acceptors(servers: list[Any]) -> None:
    deadline = time.monotonic() + 1.0
    for server in servers:
        while not getattr(server, "_BaseServer__shutdown_request", True) and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            port = server.server_address[1]
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except (OSError, IndexError, TypeError):
            pass  # already closed, or bound elsewhere: the 0.5 s poll ends it anyway
