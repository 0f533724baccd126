"""Query/retrieve state (Orthanc's QueryRetrieveHandler and its SharedArchive, QueryRetrieveSize entries),
the C-MOVE / C-GET retrieve work that DicomMoveScu / DicomGetScu jobs run, and the storage commitment
reports kept for GET /storage-commitment/{id} (StorageCommitmentReportsSize entries).

Everything here lives on the loop; the DIMSE exchanges go to the dimse pool (qr_scu.py).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..config import Modality
from ..dicom.query_map import (
    ACCESSION_NUMBER,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    SERIES_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_UID,
    DicomMap,
    level_of_map,
    map_from_json,
    map_to_json,
    move_keys,
)
from ..errors import ErrorCode, OrthancError
from ..model import Origin, ResourceLevel
from ..services.store import announce, store_file_blocking
from . import qr_scu
from .qr_scu import Progress, Remote

if TYPE_CHECKING:
    from ..services.context import ServerContext

logger = logging.getLogger(__name__)

QUERIES_KEY: Final = "qr_queries"
REPORTS_KEY: Final = "qr_commitment_reports"


def remote_for(ctx: ServerContext, modality: Modality, local_aet: str | None = None,
               timeout: int | None = None) -> Remote:
    """The association parameters: LocalAet from the call, else the modality's, else DicomAet; the timeout
    from the call, else the modality's, else DicomScuTimeout."""
    s = ctx.settings
    aet = local_aet or modality.LocalAet or s.DicomAet
    seconds = timeout if timeout is not None else (modality.Timeout or s.DicomScuTimeout)
    return Remote(aet, modality, float(seconds), int(s.MaximumPduLength), ctx.default_encoding)


# -- /queries ---------------------------------------------------------------------------------------


@dataclass
class QueryHandler:
    """One C-FIND and its answers (QueryRetrieveHandler)."""

    modality_name: str
    modality: Modality
    level: ResourceLevel
    query: DicomMap
    local_aet: str
    normalize: bool = True
    timeout: int | None = None
    answers: list[DicomMap] = field(default_factory=list)

    async def run(self, ctx: ServerContext) -> None:
        remote = remote_for(ctx, self.modality, self.local_aet, self.timeout)
        self.answers = await ctx.executors.run_dimse(qr_scu.find, remote, self.level, self.query, self.normalize)

    def answer(self, index: int) -> DicomMap:
        if not 0 <= index < len(self.answers):
            raise OrthancError(ErrorCode.ParameterOutOfRange)
        return self.answers[index]


class QueryArchive:
    """The kept queries, least recently used dropped beyond QueryRetrieveSize (Orthanc's SharedArchive)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._items: collections.OrderedDict[str, QueryHandler] = collections.OrderedDict()

    def add(self, handler: QueryHandler) -> str:
        while len(self._items) >= self.size:
            self._items.popitem(last=False)
        query_id = str(uuid.uuid4())
        self._items[query_id] = handler
        return query_id

    def get(self, query_id: str) -> QueryHandler:
        handler = self._items.get(query_id)
        if handler is None:
            raise OrthancError(ErrorCode.UnknownResource, f"Unknown query: {query_id}")
        self._items.move_to_end(query_id)
        return handler

    def remove(self, query_id: str) -> None:
        self._items.pop(query_id, None)

    def ids(self) -> list[str]:
        return sorted(self._items)


def archive(ctx: ServerContext) -> QueryArchive:
    found = ctx.extra.get(QUERIES_KEY)
    if found is None:
        found = ctx.extra[QUERIES_KEY] = QueryArchive(int(ctx.settings.QueryRetrieveSize))
    return found  # type: ignore[no-any-return]


# -- C-MOVE / C-GET retrieve work -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrieveCommand:
    """One resource to retrieve: a /move or /get "Resources" item (sent as given), or a query answer
    (only the identifiers of its level are sent, as DicomControlUserConnection::Move)."""

    fields: DicomMap
    from_answer: bool = False

    def keys(self, level: ResourceLevel) -> DicomMap:
        if self.from_answer:
            try:
                return move_keys(level, self.fields)
            except KeyError as exc:
                raise OrthancError(ErrorCode.InexistentTag, f"The answer lacks {exc.args[0]}") from None
        return {t: v for t, v in self.fields.items() if t not in (QUERY_RETRIEVE_LEVEL, SOP_CLASSES_IN_STUDY)}

    def query_item(self) -> DicomMap:
        """AddToQuery / AddFindAnswer: an answer shows its identifiers only; never SpecificCharacterSet."""
        if self.from_answer:
            wanted = (QUERY_RETRIEVE_LEVEL, PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID, ACCESSION_NUMBER)
            return {t: self.fields[t] for t in wanted if t in self.fields}
        return {t: v for t, v in self.fields.items() if t != SPECIFIC_CHARACTER_SET}

    def sop_classes(self) -> list[str]:
        """The storage classes a C-GET proposes: SOPClassesInStudy when known, else the common ones."""
        listed = [c for c in (self.fields.get(SOP_CLASSES_IN_STUDY) or "").split("\\") if c]
        return listed or list(qr_scu.COMMON_STORAGE_CLASSES)


@dataclass
class RetrieveWork:
    """The state of a DicomMoveScu / DicomGetScu job (DicomRetrieveScuBaseJob): one command per resource,
    each one C-MOVE (to target_aet) or C-GET (stored here, origin DicomProtocol)."""

    method: str  # "C-MOVE" or "C-GET"
    remote: Remote
    commands: list[RetrieveCommand]
    target_aet: str = ""
    query_format: str = "short"
    permissive: bool = False  # SetOfCommandsJob "Permissive": a failed resource is logged and skipped
    position: int = 0
    progress: Progress = field(default_factory=Progress)
    received: list[str] = field(default_factory=list)

    @property
    def job_type(self) -> str:
        return "DicomMoveScu" if self.method == "C-MOVE" else "DicomGetScu"

    def fraction(self) -> float:
        if not self.commands:
            return 1.0
        done = self.position / len(self.commands)
        return min(1.0, done + self.progress.fraction() / len(self.commands))

    def content(self) -> dict[str, Any]:
        """GetPublicContent: Description, LocalAet, RemoteAet, Query (the resources, without their
        SpecificCharacterSet) and TargetAet for C-MOVE."""
        out: dict[str, Any] = {
            "Description": "REST API",
            "LocalAet": self.remote.local_aet,
            "RemoteAet": self.remote.modality.AET,
            "Query": [map_to_json(c.query_item(), self.query_format) for c in self.commands],
        }
        if self.method == "C-MOVE":
            out["TargetAet"] = self.target_aet
        return out

    def reset(self) -> None:
        self.position = 0
        self.progress = Progress()
        self.received = []

    def done(self) -> bool:
        return self.position >= len(self.commands)

    async def run_next(self, ctx: ServerContext) -> None:
        """Run the next command (one association); OrthancError fails the job."""
        command = self.commands[self.position]
        level = level_of_map(command.fields)
        keys = command.keys(level)
        self.progress = Progress()
        handle = qr_scu.Handle()
        try:
            if self.method == "C-MOVE":
                await ctx.executors.run_dimse(qr_scu.move, self.remote, self.target_aet, level, keys, self.progress,
                                              handle)
            else:
                await self._get(ctx, level, keys, command.sop_classes(), handle)
        except asyncio.CancelledError:
            # The job was cancelled or paused: abort the association (stops the remote's sub-operations and
            # frees the dimse thread); aborting waits for pynetdicom's threads, so not on the loop.
            ctx.executors.dimse.submit(handle.abort)
            raise
        except OrthancError as exc:
            if not self.permissive:
                raise
            logger.warning("Ignoring an error in a permissive job: %s", exc.details or exc.code.description)
        self.position += 1

    async def run_all(self, ctx: ServerContext) -> None:
        while not self.done():
            await self.run_next(ctx)

    async def _get(self, ctx: ServerContext, level: ResourceLevel, keys: DicomMap, classes: list[str],
                   handle: qr_scu.Handle) -> None:
        loop = asyncio.get_running_loop()
        lock = threading.Lock()

        def on_instance(path: str, remote_aet: str, remote_ip: str, called_aet: str) -> int:
            origin = Origin("DicomProtocol", remote_ip=remote_ip, remote_aet=remote_aet, called_aet=called_aet)
            try:
                stored = store_file_blocking(ctx, path, origin)
            except OrthancError as exc:
                logger.error("C-GET SCU: cannot store an instance from %s: %s", remote_aet, exc)
                return 0xA700
            except Exception:  # noqa: BLE001 - the store failed unexpectedly: a failed sub-operation (logged)
                logger.exception("C-GET SCU: cannot store an instance from %s", remote_aet)
                return 0xC000
            loop.call_soon_threadsafe(announce, ctx, stored)
            if stored.result.instance_id is not None:
                with lock:
                    self.received.append(stored.result.instance_id)
            return 0x0000

        await ctx.executors.run_dimse(qr_scu.get, self.remote, level, keys, classes, ctx.storage.incoming_dir(),
                                      on_instance, self.progress, handle)

    def serialize(self) -> dict[str, Any]:
        return {
            "Method": self.method,
            "LocalAet": self.remote.local_aet,
            "Remote": self.remote.modality.to_json(),
            "Timeout": self.remote.timeout,
            "TargetAet": self.target_aet,
            "QueryFormat": self.query_format,
            "Permissive": self.permissive,
            "Position": self.position,
            "Commands": [{"Fields": map_to_json(c.fields, "short"), "FromAnswer": c.from_answer}
                         for c in self.commands],
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any], ctx_defaults: tuple[int, str] = (16384, "Latin1")) -> RetrieveWork:
        modality = Modality.from_json(data["Remote"])
        remote = Remote(str(data["LocalAet"]), modality, float(data.get("Timeout", 0)), *ctx_defaults)
        work = cls(str(data["Method"]), remote, [RetrieveCommand(map_from_json(c["Fields"]), bool(c.get("FromAnswer")))
                                            for c in data.get("Commands", [])],
                   str(data.get("TargetAet", "")), str(data.get("QueryFormat", "short")))
        work.position = int(data.get("Position", 0))
        work.permissive = bool(data.get("Permissive", False))
        return work


# -- storage commitment reports -------------------------------------------------------------------


@dataclass
class CommitmentReport:
    """StorageCommitmentReports::Report: Pending until the remote's N-EVENT-REPORT arrives."""

    remote_aet: str
    complete: bool = False
    success: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.complete:
            return "Pending"
        return "Failure" if self.failures else "Success"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"RemoteAET": self.remote_aet, "Status": self.status}
        if self.complete:
            out["Success"] = [{"SOPClassUID": c, "SOPInstanceUID": i} for c, i in self.success]
            out["Failures"] = [{"SOPClassUID": c, "SOPInstanceUID": i, "FailureReason": r,
                                "Description": FAILURE_REASONS.get(r, "Unknown")} for c, i, r in self.failures]
        return out


# EnumerationToString(StorageCommitmentFailureReason): the texts of PS3.4 Table J.3-2 (checked against 1.10.1)
FAILURE_REASONS: Final[dict[int, str]] = {
    0x0110: "A general failure in processing the operation was encountered",
    0x0112: "One or more of the elements in the Referenced SOP Instance Sequence was not available",
    0x0213: "The SCP does not currently have enough resources to store the requested SOP Instance(s)",
    0x0122: "Storage Commitment has been requested for a SOP Instance with a SOP Class that is not supported by "
            "the SCP",
    0x0119: "The SOP Class of an element in the Referenced SOP Instance Sequence did not correspond to the SOP "
            "class registered for this SOP Instance at the SCP",
    0x0131: "The Transaction UID of the Storage Commitment Request is already in use",
}


class CommitmentReports:
    """Thread-safe (the N-EVENT-REPORT arrives in an association thread), least recently used dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[str, CommitmentReport] = collections.OrderedDict()

    def store(self, transaction_uid: str, report: CommitmentReport) -> None:
        with self._lock:
            self._items.pop(transaction_uid, None)
            while self.size and len(self._items) >= self.size:
                self._items.popitem(last=False)
            self._items[transaction_uid] = report

    def get(self, transaction_uid: str) -> CommitmentReport | None:
        with self._lock:
            report = self._items.get(transaction_uid)
            if report is not None:
                self._items.move_to_end(transaction_uid)
            return report

    def complete(self, transaction_uid: str, remote_aet: str, success: list[tuple[str, str]],
                 failures: list[tuple[str, str, int]]) -> bool:
        """Fill a pending report from an N-EVENT-REPORT; False when the transaction is unknown."""
        with self._lock:
            report = self._items.get(transaction_uid)
            if report is None:
                return False
            report.success, report.failures, report.complete = list(success), list(failures), True
            return True


def reports(ctx: ServerContext) -> CommitmentReports:
    """The context's reports (also reached from association threads: setdefault keeps a single instance)."""
    found = ctx.extra.get(REPORTS_KEY)
    if found is None:
        found = ctx.extra.setdefault(REPORTS_KEY, CommitmentReports(int(ctx.settings.StorageCommitmentReportsSize)))
    return found  # type: ignore[no-any-return]


async def request_storage_commitment(ctx: ServerContext, modality: Modality, refs: list[tuple[str, str]],
                                     timeout: int | None = None, local_aet: str | None = None) -> str:
    """Storage commitment SCU: a Pending report first (the answer may come before the N-ACTION returns),
    then the N-ACTION; returns the transaction UID (GET /storage-commitment/{uid}). The store job calls
    this after its C-STOREs when "StorageCommitment" is true."""
    from pydicom.uid import generate_uid

    transaction_uid = generate_uid(prefix="2.25.")
    if not refs:
        logger.warning("Issuing an outgoing storage commitment request that is empty: %s", transaction_uid)
    reports(ctx).store(transaction_uid, CommitmentReport(modality.AET))
    remote = remote_for(ctx, modality, local_aet, timeout)
    await ctx.executors.run_dimse(qr_scu.request_commitment, remote, transaction_uid, refs)
    return transaction_uid


async def commit_sent_instances(ctx: ServerContext, modality: Modality, instance_ids: list[str],
                                timeout: int | None = None, local_aet: str | None = None) -> str:
    """"StorageCommitment": true on /modalities/{id}/store: after the C-STOREs, ask the modality to commit the
    sent instances (by their Orthanc IDs); returns the transaction UID (GET /storage-commitment/{uid})."""
    from ..services.commitment import sop_refs_of

    refs = await sop_refs_of(ctx, instance_ids)
    return await request_storage_commitment(ctx, modality, refs, timeout, local_aet)
