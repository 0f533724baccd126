"""The upload pipeline, in one straight line (as Orthanc's ServerContext::StoreAfterTranscoding):
one worker-thread hop parses, writes and fsyncs the attachment and runs the index transaction (group commit
with the other ingests), then the loop announces the changes. If the index refuses, the file just written is
removed, so storage and index always agree. One hop, because every loop <-> thread handoff costs a
wake-up and a GIL handover on the critical path of each instance.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass
from typing import Callable, Final

from ..dicom.parse import ParsedInstance, parse_instance
from ..dicom.transcode import transcode_file
from ..errors import OrthancError
from ..index.writes import NewInstance
from ..model import ChangeType, MetadataType, Origin, ResourceLevel, StoreResult, StoreStatus
from ..storage.base import StoredFile, unlink_quietly
from .context import ServerContext, now_iso

logger = logging.getLogger(__name__)


async def store_bytes(ctx: ServerContext, data: bytes, origin: Origin) -> StoreResult:
    """Store a DICOM file held in memory (small uploads, no spooling): one worker hop, then notify."""
    return announce(ctx, await ctx.executors.run_ingest(store_bytes_blocking, ctx, data, origin))


async def store_file(ctx: ServerContext, path: str, origin: Origin, md5: str | None = None) -> StoreResult:
    """Store the DICOM file at `path`, which this function consumes (moved into storage or deleted)."""
    return announce(ctx, await ctx.executors.run_ingest(store_file_blocking, ctx, path, origin, md5))


def store_bytes_blocking(ctx: ServerContext, data: bytes, origin: Origin,
                         extra_metadata: tuple[tuple[int, int, str], ...] = ()) -> StoredInstance:
    """`store_bytes` up to the commit, for a thread that may block (a worker, a DICOM association); the caller
    then runs `announce()` on the loop. `extra_metadata` = (level, type, value) rows to set on the instance or
    its parents (ModifiedFrom, AnonymizedFrom)."""
    with ctx.executors.cpu_turn:
        parsed = parse_instance(data, ctx.default_encoding)
    return store_parsed_blocking(ctx, data, parsed, origin, extra_metadata=extra_metadata,
                                 ingest_transcoding=bool(ctx.settings.IngestTranscoding))


def store_parsed_blocking(ctx: ServerContext, source: bytes | str, parsed: ParsedInstance, origin: Origin,
                          md5: str | None = None,
                          extra_metadata: tuple[tuple[int, int, str], ...] = (),
                          ingest_transcoding: bool = False) -> StoredInstance:
    """The rest of `store_bytes_blocking` / `store_file_blocking` for a caller that already parsed the file
    (STOW-RS reads the UIDs first; a modification just wrote the dataset): no second parse. A file path is
    consumed. `extra_metadata` as for store_bytes_blocking; `ingest_transcoding` applies IngestTranscoding to
    bytes (a modification without its own Transcode, as Orthanc's ResourceModificationJob)."""
    compress = bool(ctx.settings.StorageCompression)
    if isinstance(source, bytes) and ingest_transcoding:
        transcoded = _ingest_transcoding(ctx, parsed, source)
        if transcoded is not None:
            parsed, source = transcoded
    if isinstance(source, bytes):
        stored, make_durable = ctx.storage.write_bytes(source, str(uuidlib.uuid4()), compress)
    else:
        try:
            stored, make_durable = ctx.storage.adopt_file(source, str(uuidlib.uuid4()), md5, compress)
        except BaseException:
            unlink_quietly(source)
            raise
    _make_durable_or_drop(ctx, stored, make_durable)
    return _index_sync(ctx, parsed, stored, origin, extra_metadata)


def store_file_blocking(ctx: ServerContext, path: str, origin: Origin, md5: str | None = None) -> StoredInstance:
    """`store_file` up to the commit, for a thread that may block (a worker, a DICOM association): files and
    the index's group commit are thread-safe. The caller then runs `announce()` on the loop."""
    try:
        with ctx.executors.cpu_turn:
            parsed = parse_instance(path, ctx.default_encoding)
        transcoded = _ingest_transcoding(ctx, parsed, path)
        if transcoded is not None:
            parsed, data = transcoded
            with open(path, "wb") as f:  # the spooled file is ours: it now holds the converted instance
                f.write(data)
            md5 = None
    except BaseException:
        unlink_quietly(path)
        raise
    return store_parsed_blocking(ctx, path, parsed, origin, md5)


def _make_durable_or_drop(ctx: ServerContext, stored: StoredFile, make_durable: Callable[[], None]) -> None:
    """The attachment's fsync, in this thread, before any index statement: it releases the GIL, so the other
    ingests parse and commit meanwhile. Handing it to another thread to overlap it with this ingest's own parse
    and statements cost more than it saved (a thread wake-up and a GIL handover each way, on a 0.3 ms fsync)."""
    try:
        make_durable()
    except BaseException:
        ctx.storage.remove_sync(stored.uuid)
        raise


_UNCOMPRESSED: Final = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})


def _ingest_transcoding(ctx: ServerContext, parsed: ParsedInstance,
                        source: bytes | str) -> tuple[ParsedInstance, bytes] | None:
    """IngestTranscoding (ServerContext::TranscodeAndStore): convert a received instance before it is stored,
    as IngestTranscodingOfCompressed / IngestTranscodingOfUncompressed allow. When the conversion fails the
    original is stored, as Orthanc does. A lossy target gives a new SOPInstanceUID, hence new IDs."""
    settings = ctx.settings
    target = settings.IngestTranscoding
    if not target or parsed.transfer_syntax == target:
        return None
    allowed = settings.IngestTranscodingOfUncompressed if parsed.transfer_syntax in _UNCOMPRESSED \
        else settings.IngestTranscodingOfCompressed
    if not allowed:
        return None
    try:
        data = transcode_file(source, target, int(settings.DicomLossyTranscodingQuality))
        return parse_instance(data, ctx.default_encoding), data
    except OrthancError as exc:
        logger.warning("Cannot transcode instance %s to %s, storing it as received: %s",
                       parsed.instance_public_id, target, exc.details or exc.code.description)
        return None


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """What a blocking store hands back to the loop: the answer, and the committed changes to announce."""

    result: StoreResult
    origin: Origin
    public_ids: tuple[str, str, str, str]
    changes: list[tuple[int, ChangeType, ResourceLevel, str]]
    now: str


def _index_sync(ctx: ServerContext, parsed: ParsedInstance, stored: StoredFile, origin: Origin,
                extra_metadata: tuple[tuple[int, int, str], ...] = ()) -> StoredInstance:
    """Worker thread: one index transaction (group commit); the storage follows the index's decision. The file
    is already durable, so no committed row ever points at a file that a power cut could lose."""
    settings = ctx.settings
    now = now_iso()
    md5_kept = bool(settings.StoreMD5ForAttachments)
    new = NewInstance(
        public_ids=(parsed.patient_public_id, parsed.study_public_id, parsed.series_public_id, parsed.instance_public_id),
        tags=(parsed.tags[ResourceLevel.PATIENT], parsed.tags[ResourceLevel.STUDY],
              parsed.tags[ResourceLevel.SERIES], parsed.tags[ResourceLevel.INSTANCE]),
        instance_metadata=_instance_metadata(parsed, origin, now),
        series_expected=parsed.expected_instances,
        index_in_series=parsed.index_in_series,
        series_metadata=_series_metadata(parsed, origin),
        attachment=(stored.uuid, stored.compressed_size, stored.uncompressed_size, 2 if stored.compressed else 1,
                    stored.uncompressed_md5 if md5_kept else "", stored.compressed_md5 if md5_kept else ""),
        now=now,
        overwrite=settings.overwrite_mode,
        max_storage_bytes=int(settings.MaximumStorageSize) * 1024 * 1024,
        max_patients=int(settings.MaximumPatientCount),
        reject_when_full=settings.MaximumStorageMode == "Reject",
        parent_metadata=extra_metadata,
    )
    result_ids = dict(instance_id=parsed.instance_public_id, patient_id=parsed.patient_public_id,
                      study_id=parsed.study_public_id, series_id=parsed.series_public_id)
    try:
        outcome = ctx.index.store_sync(new)
    except BaseException:
        ctx.storage.remove_sync(stored.uuid)
        raise
    for old_uuid, _compressed in outcome.removed_uuids:
        ctx.storage.remove_sync(old_uuid)
    if outcome.already_stored:
        ctx.storage.remove_sync(stored.uuid)
        return StoredInstance(StoreResult(StoreStatus.AlreadyStored, **result_ids), origin, new.public_ids, [], now)
    return StoredInstance(StoreResult(StoreStatus.Success, **result_ids), origin, new.public_ids, outcome.changes, now)


def announce(ctx: ServerContext, stored: StoredInstance) -> StoreResult:
    """On the loop, after the commit: publish the changes and restart the stability timers."""
    result = stored.result
    if result.status is StoreStatus.AlreadyStored:
        logger.info("Already stored: %s (%s)", result.instance_id, stored.origin.kind)
        return result
    ctx.publish(stored.changes, stored.now)
    for level in (ResourceLevel.PATIENT, ResourceLevel.STUDY, ResourceLevel.SERIES):
        ctx.stability.touch(level, stored.public_ids[level])
    logger.info("New instance stored: %s (%s)", result.instance_id, stored.origin.kind)
    return result


def _instance_metadata(parsed: ParsedInstance, origin: Origin, now: str) -> dict[int, str]:
    meta: dict[int, str] = {
        MetadataType.ReceptionDate: now,
        MetadataType.Origin: origin.kind,
        MetadataType.TransferSyntax: parsed.transfer_syntax,
    }
    if parsed.sop_class_uid is not None:
        meta[MetadataType.SopClassUid] = parsed.sop_class_uid
    if origin.remote_aet is not None:
        meta[MetadataType.RemoteAET] = origin.remote_aet
    if origin.called_aet is not None:
        meta[MetadataType.CalledAET] = origin.called_aet
    if origin.remote_ip is not None:
        meta[MetadataType.RemoteIP] = origin.remote_ip
    if origin.http_username is not None:
        meta[MetadataType.HttpUsername] = origin.http_username
    if parsed.pixel_data_offset is not None:
        meta[MetadataType.PixelDataOffset] = str(parsed.pixel_data_offset)
    if parsed.pixel_data_vr is not None:
        meta[MetadataType.PixelDataVR] = parsed.pixel_data_vr
    return {int(k): v for k, v in meta.items()}


def _series_metadata(parsed: ParsedInstance, origin: Origin) -> dict[int, str]:
    """Written when the series is created: RemoteAET ("" over REST, since Orthanc 1.9.0) and the main sequences."""
    meta = {int(MetadataType.RemoteAET): origin.remote_aet or ""}
    if parsed.main_sequences is not None:
        meta[int(MetadataType.MainDicomSequences)] = parsed.main_sequences
    return meta

