"""The upload pipeline, in one straight line (as Orthanc's ServerContext::StoreAfterTranscoding):
parse + write the attachment (one worker-thread hop) -> one index transaction (group commit) -> notify.
If the index refuses, the file just written is removed, so storage and index always agree.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid as uuidlib

from ..dicom.parse import ParsedInstance, parse_instance
from ..index.writes import NewInstance
from ..model import MetadataType, Origin, ResourceLevel, StoreResult, StoreStatus
from ..storage.base import StoredFile
from .context import ServerContext, now_iso

logger = logging.getLogger(__name__)


async def store_bytes(ctx: ServerContext, data: bytes, origin: Origin) -> StoreResult:
    """Store a DICOM file held in memory (small uploads, no spooling).

    Parsing (cpu pool, holds the GIL) and writing the attachment (io pool, fsync releases it) run side by
    side; the index sees the instance only once both are done, and a parse failure removes the file.
    """
    compress = bool(ctx.settings.StorageCompression)
    parsing = asyncio.ensure_future(ctx.executors.run_cpu(parse_instance, data, ctx.default_encoding))
    writing = asyncio.ensure_future(ctx.executors.run_io(ctx.storage.create_from_bytes_sync, data,
                                                         str(uuidlib.uuid4()), compress))
    await asyncio.wait((parsing, writing))
    if parsing.exception() is not None or writing.exception() is not None:
        if writing.exception() is None:
            await ctx.storage.remove(writing.result().uuid)
        error = parsing.exception() or writing.exception()
        assert error is not None
        raise error
    return await _index(ctx, parsing.result(), writing.result(), origin)


async def store_file(ctx: ServerContext, path: str, origin: Origin, md5: str | None = None) -> StoreResult:
    """Store the DICOM file at `path`, which this function consumes (moved into storage or deleted)."""
    parsed, stored = await ctx.executors.run_io(_prepare_file, ctx, path, md5)
    return await _index(ctx, parsed, stored, origin)


def _prepare_file(ctx: ServerContext, path: str, md5: str | None) -> tuple[ParsedInstance, StoredFile]:
    try:
        parsed = parse_instance(path, ctx.default_encoding)
        stored = ctx.storage.create_from_file_sync(path, str(uuidlib.uuid4()), md5, bool(ctx.settings.StorageCompression))
    except BaseException:
        _unlink(path)
        raise
    return parsed, stored


async def _index(ctx: ServerContext, parsed: ParsedInstance, stored: StoredFile, origin: Origin) -> StoreResult:
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
        attachment=(stored.uuid, stored.compressed_size, stored.uncompressed_size, 2 if stored.compressed else 1,
                    stored.uncompressed_md5 if md5_kept else "", stored.compressed_md5 if md5_kept else ""),
        now=now,
        overwrite=settings.overwrite_mode,
        max_storage_bytes=int(settings.MaximumStorageSize) * 1024 * 1024,
        max_patients=int(settings.MaximumPatientCount),
        reject_when_full=settings.MaximumStorageMode == "Reject",
    )
    result_ids = dict(instance_id=parsed.instance_public_id, patient_id=parsed.patient_public_id,
                      study_id=parsed.study_public_id, series_id=parsed.series_public_id)
    try:
        outcome = await ctx.index.store(new)
    except BaseException:
        await ctx.storage.remove(stored.uuid)
        raise
    for old_uuid, _compressed in outcome.removed_uuids:
        await ctx.storage.remove(old_uuid)
    if outcome.already_stored:
        await ctx.storage.remove(stored.uuid)
        logger.info("Already stored: %s (%s)", parsed.instance_public_id, origin.kind)
        return StoreResult(StoreStatus.AlreadyStored, **result_ids)
    ctx.publish(outcome.changes, now)
    for level in (ResourceLevel.PATIENT, ResourceLevel.STUDY, ResourceLevel.SERIES):
        ctx.stability.touch(level, new.public_ids[level])
    logger.info("New instance stored: %s (%s)", parsed.instance_public_id, origin.kind)
    return StoreResult(StoreStatus.Success, **result_ids)


def _instance_metadata(parsed: ParsedInstance, origin: Origin, now: str) -> dict[int, str]:
    meta: dict[int, str] = {
        MetadataType.ReceptionDate: now,
        MetadataType.Origin: origin.kind,
        MetadataType.TransferSyntax: parsed.transfer_syntax,
        MetadataType.SopClassUid: parsed.sop_class_uid,
    }
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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
