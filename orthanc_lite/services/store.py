"""The upload pipeline, in one straight line (as Orthanc's ServerContext::StoreAfterTranscoding):
parse (cpu pool) -> write the attachment (io pool) -> one index transaction -> notify after commit.
If the index refuses, the file just written is removed, so storage and index always agree.
"""

from __future__ import annotations

import logging
import os
import uuid as uuidlib

from ..dicom.parse import ParsedInstance, parse_instance
from ..errors import OrthancError
from ..index.writes import NewInstance
from ..model import MetadataType, Origin, ResourceLevel, StoreResult, StoreStatus
from .context import ServerContext, now_iso

logger = logging.getLogger(__name__)


async def store_file(ctx: ServerContext, path: str, origin: Origin, md5: str | None = None) -> StoreResult:
    """Store the DICOM file at `path`, which this function consumes (moved into storage or deleted)."""
    try:
        parsed = await ctx.executors.run_cpu(parse_instance, path, ctx.default_encoding)
    except BaseException:
        await ctx.executors.run_io(_unlink, path)
        raise
    return await store_parsed(ctx, path, parsed, origin, md5)


async def store_parsed(ctx: ServerContext, path: str, parsed: ParsedInstance, origin: Origin,
                       md5: str | None = None) -> StoreResult:
    settings = ctx.settings
    overwrite = settings.overwrite_mode
    result_ids = dict(instance_id=parsed.instance_public_id, patient_id=parsed.patient_public_id,
                      study_id=parsed.study_public_id, series_id=parsed.series_public_id)
    if overwrite == "Never" and await ctx.index.find_internal(parsed.instance_public_id) is not None:
        await ctx.executors.run_io(_unlink, path)
        logger.info("Already stored: %s (%s)", parsed.instance_public_id, origin.kind)
        return StoreResult(StoreStatus.AlreadyStored, **result_ids)

    file_uuid = str(uuidlib.uuid4())
    try:
        stored = await ctx.storage.create_from_file(path, file_uuid, md5, bool(settings.StorageCompression))
    except BaseException:
        await ctx.executors.run_io(_unlink, path)
        raise
    now = now_iso()
    new = NewInstance(
        public_ids=(parsed.patient_public_id, parsed.study_public_id, parsed.series_public_id, parsed.instance_public_id),
        tags=(parsed.tags[ResourceLevel.PATIENT], parsed.tags[ResourceLevel.STUDY],
              parsed.tags[ResourceLevel.SERIES], parsed.tags[ResourceLevel.INSTANCE]),
        instance_metadata=_instance_metadata(parsed, origin, now),
        series_expected=parsed.expected_instances,
        index_in_series=parsed.index_in_series,
        attachment=(stored.uuid, stored.compressed_size, stored.uncompressed_size, 2 if stored.compressed else 1,
                    stored.uncompressed_md5 if settings.StoreMD5ForAttachments else "",
                    stored.compressed_md5 if settings.StoreMD5ForAttachments else ""),
        now=now,
        overwrite=overwrite,
        max_storage_bytes=int(settings.MaximumStorageSize) * 1024 * 1024,
        max_patients=int(settings.MaximumPatientCount),
        reject_when_full=settings.MaximumStorageMode == "Reject",
    )
    try:
        outcome = await ctx.index.store(new)
    except BaseException:
        await ctx.storage.remove(file_uuid)
        raise
    for old_uuid, _compressed in outcome.removed_uuids:
        await ctx.storage.remove(old_uuid)
    if outcome.already_stored:
        await ctx.storage.remove(file_uuid)
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


__all__ = ["store_file", "store_parsed", "OrthancError"]
